"""core's hooks: what an app offers, apps to its right fill."""

from __future__ import annotations

import pytest

from core.hooks import Hook


def test_a_hook_calls_its_functions_in_order_with_the_arguments_given():
    hook = Hook("member_enrolled")
    calls = []
    hook.register(lambda *, member: calls.append(("points", member)))
    hook.register(lambda *, member: calls.append(("tiers", member)))

    hook.call(member="8000")

    assert calls == [("points", "8000"), ("tiers", "8000")]


def test_a_function_registered_twice_runs_once():
    hook = Hook("member_profile_changed")
    calls = []

    def note(*, member):
        calls.append(member)

    hook.register(note)
    hook.register(note)  # a second AppConfig.ready()
    hook.call(member="8000")

    assert calls == ["8000"]


def test_a_function_that_raises_stops_the_change_that_called_the_hook():
    hook = Hook("member_enrolled")

    def refuse(*, member):
        raise ValueError("refused")

    hook.register(refuse)
    with pytest.raises(ValueError, match="refused"):
        hook.call(member="8000")
