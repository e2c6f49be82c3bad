"""The limits that protect the ledger from a purchase or a return typed wrong.

A live purchase (the POS API, the staff form) is at most `POINTS_PURCHASE_MAX_AMOUNT` yuan
and dated no more than `POINTS_PURCHASE_MAX_DAYS_BACK` days back and
`POINTS_PURCHASE_MAX_MINUTES_AHEAD` minutes ahead of the server's clock (a till's clock may
run a little fast; more is a typo, or a clock gone wrong). A return is never dated before
its purchase. `services.purchase_record` and `services.return_record` apply these under
every path (the PostgreSQL fast path included, before it writes); the staff form calls
the same checks so their messages show beside the other fields at once; the API and the
form only translate the errors.

The cap also bounds every points figure: the largest points one purchase can earn is the cap
× the largest category rate or base rate the admin can enter (9,999.99, `max_digits=6`) × the
largest tier multiplier (99.99) × the largest promotion multiplier (99.99): 200,000 × 9,999.99
× 99.99 × 99.99 ≈ 2.0 × 10^13 points, past the 2^31 of an integer column after a single
purchase. So every points column is a 64-bit integer (up to 9.2 × 10^18: some 460,000 such
purchases on one account). Campaign promotions (none registered yet) must keep the
promotion multiplier (the product, when the policy stacks them) within 99.99 for that figure
to stay the largest.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from .ledger import BUSINESS_TZ, PointsError


class AmountOverLimit(PointsError):
    code = "amount_over_limit"

    def __init__(self, *, limit: Decimal) -> None:
        self.limit = limit
        super().__init__(f"a purchase is at most ¥{limit}")


class OccurredAtOutOfRange(PointsError):
    code = "occurred_at_out_of_range"

    def __init__(self, *, earliest: datetime.datetime, latest: datetime.datetime) -> None:
        self.earliest = earliest
        self.latest = latest
        super().__init__(
            f"a purchase must be dated between {earliest.isoformat()} and {latest.isoformat()}"
        )


class ReturnBeforePurchase(PointsError):
    code = "return_before_purchase"

    def __init__(self, *, purchased_at: datetime.datetime) -> None:
        self.purchased_at = purchased_at
        super().__init__(f"the purchase was made at {purchased_at.isoformat()}, after the return")


class ReturnDatedAhead(PointsError):
    code = "occurred_at_out_of_range"

    def __init__(self, *, latest: datetime.datetime) -> None:
        self.latest = latest
        super().__init__(f"a return must be dated at the latest {latest.isoformat()}")


def purchase_amount_limit() -> Decimal:
    return Decimal(settings.POINTS_PURCHASE_MAX_AMOUNT)


def purchase_time_bounds(*, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The earliest and latest business time a purchase recorded at `now` may carry."""
    return (
        now - datetime.timedelta(days=settings.POINTS_PURCHASE_MAX_DAYS_BACK),
        now + datetime.timedelta(minutes=settings.POINTS_PURCHASE_MAX_MINUTES_AHEAD),
    )


def purchase_amount_check(*, amount: Decimal) -> None:
    limit = purchase_amount_limit()
    if amount > limit:
        raise AmountOverLimit(limit=limit)


def purchase_time_check(*, occurred_at: datetime.datetime, now: datetime.datetime) -> None:
    earliest, latest = purchase_time_bounds(now=now)
    if not earliest <= occurred_at <= latest:
        raise OccurredAtOutOfRange(earliest=earliest, latest=latest)


def purchase_limits_check(
    *, amount: Decimal, occurred_at: datetime.datetime, now: datetime.datetime
) -> None:
    """Refuse a live purchase over the cap or dated outside the window around `now`."""
    purchase_amount_check(amount=amount)
    purchase_time_check(occurred_at=occurred_at, now=now)


def return_time_check(
    *, occurred_at: datetime.datetime, purchased_at: datetime.datetime, now: datetime.datetime
) -> None:
    """A return happens after its purchase (at the same instant at the earliest), and no
    further ahead of the server's clock than a purchase may be."""
    if occurred_at < purchased_at:
        raise ReturnBeforePurchase(purchased_at=purchased_at)
    _earliest, latest = purchase_time_bounds(now=now)
    if occurred_at > latest:
        raise ReturnDatedAhead(latest=latest)


def _minute(value: datetime.datetime) -> str:
    return value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def limit_message(
    error: AmountOverLimit | OccurredAtOutOfRange | ReturnBeforePurchase | ReturnDatedAhead,
) -> str:
    """The refusal as the API's `detail` and the staff form's error show it, translated."""
    if isinstance(error, AmountOverLimit):
        return _("A purchase can be at most ¥%(limit)s.") % {"limit": f"{error.limit:,.2f}"}
    if isinstance(error, OccurredAtOutOfRange):
        return _(
            "The time of purchase must be between %(earliest)s and %(latest)s (Asia/Shanghai time)."
        ) % {"earliest": _minute(error.earliest), "latest": _minute(error.latest)}
    if isinstance(error, ReturnDatedAhead):
        return _("A return cannot be dated later than %(latest)s (Asia/Shanghai time).") % {
            "latest": _minute(error.latest)
        }
    return _("A return cannot be dated before its purchase (%(purchased_at)s).") % {
        "purchased_at": _minute(error.purchased_at)
    }
