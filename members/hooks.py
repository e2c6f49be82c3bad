"""Hooks that apps to the right of members (points, tiers, campaigns) plug into.

Members cannot import those apps, so they register a function here from
`AppConfig.ready()`. The member services call the hooks inside their own
`transaction.atomic()`: whatever a hook writes (a sign-up bonus, say) commits or rolls back
with the change that triggered it. A hook that raises aborts that change, so hooks must only
refuse what really is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Member

MemberHook = Callable[..., None]  # called as fn(member=member)

_enrolled: list[MemberHook] = []
_profile_changed: list[MemberHook] = []


def member_enrolled_hook_register(fn: MemberHook) -> None:
    """Run `fn(member=...)` after a new member is saved (every channel, CSV import too)."""
    if fn not in _enrolled:
        _enrolled.append(fn)


def member_profile_changed_hook_register(fn: MemberHook) -> None:
    """Run `fn(member=...)` after a member's profile fields change (or a login adds e-mail)."""
    if fn not in _profile_changed:
        _profile_changed.append(fn)


def member_enrolled(*, member: Member) -> None:
    for fn in _enrolled:
        fn(member=member)


def member_profile_changed(*, member: Member) -> None:
    for fn in _profile_changed:
        fn(member=member)
