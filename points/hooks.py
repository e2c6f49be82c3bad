"""Hooks that apps to the right of points (analytics, campaigns) plug into.

Points cannot import those apps, so they register a function here from
`AppConfig.ready()`. `purchase_posted` runs inside the transaction that records a live
purchase (POS API, staff form), after the ledger's rows are written: what a hook writes
commits or rolls back with the purchase, so it must be quick and must not raise for
anything short of a real error. Imports post in batches and are caught up by the nightly
jobs instead. (The mechanism is core's `Hook`.)
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from core.hooks import Hook

posted = Hook("purchase_posted")


def purchase_posted_hook_register(fn: Callable[..., None]) -> None:
    """Run `fn(member_id=..., occurred_at=...)` for every live purchase recorded."""
    posted.register(fn)


def purchase_posted(*, member_id: int, occurred_at: datetime.datetime) -> None:
    posted.call(member_id=member_id, occurred_at=occurred_at)
