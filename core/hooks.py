"""Hooks: a named list of functions that one app calls and apps to its right fill.

An app cannot import the apps to its right, so it offers a hook and they register a function
with it from `AppConfig.ready()`. Calling the hook calls every registered function, in the
order of registration, with the keyword arguments given; a function registered twice (a
second `ready()` in the tests, autoreload) runs once. The app that calls a hook says what
its functions may do — members' hooks, for instance, run inside the member service's
transaction (members/hooks.py).
"""

from __future__ import annotations

from collections.abc import Callable

HookFunction = Callable[..., None]


class Hook:
    def __init__(self, name: str) -> None:
        self.name = name
        self.functions: list[HookFunction] = []

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, {len(self.functions)} functions)"

    def register(self, fn: HookFunction) -> None:
        if fn not in self.functions:
            self.functions.append(fn)

    def call(self, **kwargs: object) -> None:
        for fn in self.functions:
            fn(**kwargs)
