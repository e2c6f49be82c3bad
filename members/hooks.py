"""Hooks that apps to the right of members (points, tiers, campaigns) plug into.

Members cannot import those apps, so they register a function here from
`AppConfig.ready()`. The member services call the hooks inside their own
`transaction.atomic()`: whatever a hook writes (a sign-up bonus, say) commits or rolls back
with the change that triggered it. A hook that raises aborts that change, so hooks must only
refuse what really is an error. (The mechanism is core's `Hook`; what members offers is here.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.hooks import Hook

if TYPE_CHECKING:
    from .models import Member

MemberHook = Callable[..., None]  # called as fn(member=member)

enrolled = Hook("member_enrolled")
profile_changed = Hook("member_profile_changed")
# Not in a member service's transaction: called by `messaging` after each service message
# went out or failed, so the campaigns' outbox lists it on the member's page.
message_sent = Hook("member_message_sent")


def member_enrolled_hook_register(fn: MemberHook) -> None:
    """Run `fn(member=...)` after a new member is saved (every channel, CSV import too)."""
    enrolled.register(fn)


def member_profile_changed_hook_register(fn: MemberHook) -> None:
    """Run `fn(member=...)` after a member's profile fields change (or a login adds e-mail)."""
    profile_changed.register(fn)


def member_enrolled(*, member: Member) -> None:
    enrolled.call(member=member)


def member_profile_changed(*, member: Member) -> None:
    profile_changed.call(member=member)


def member_message_sent_hook_register(fn: MemberHook) -> None:
    """Run `fn(member=..., channel=..., subject=..., text=..., error=...)` after a service
    message to the member was sent (`error` empty) or failed (`error` says why)."""
    message_sent.register(fn)


def member_message_sent(
    *, member: Member, channel: str, subject: str, text: str, error: str = ""
) -> None:
    message_sent.call(member=member, channel=channel, subject=subject, text=text, error=error)
