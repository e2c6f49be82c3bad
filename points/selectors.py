"""Reads for points: balances, expiring points, history, rewards, coupons."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import JobRun
from members.models import Member, Store
from members.selectors import MemberSummaryReads, member_read_for_summary

from .ledger import BUSINESS_TZ, Balance, balance_of, pending_points_expression
from .models import (
    Account,
    Category,
    CategoryRate,
    Coupon,
    LedgerTransaction,
    Lot,
    PointsAdjustment,
    Purchase,
    Redemption,
    Reward,
)


def account_get(*, member: Member) -> Account | None:
    """The member's account; none read when it was read with the member (`summary_reads`)."""
    if member_read_for_summary(member):
        return member.points_account if hasattr(member, "points_account") else None
    return Account.objects.filter(member=member).first()


# The annotation `summary_reads` puts on a member: their pending points when it was read.
PENDING_NOW = "points_pending_now"


def points_balance(*, member: Member, at: datetime.datetime | None = None) -> Balance:
    """The member's balance at `at` (now): without a query when the member was read for a
    summary (`summary_reads`), in one otherwise (two without the account)."""
    pending = None
    if at is None and member_read_for_summary(member):
        pending = getattr(member, PENDING_NOW) or 0  # read with the member (SUM of none: NULL)
    return balance_of(account=account_get(member=member), at=at or timezone.now(), pending=pending)


def summary_reads() -> MemberSummaryReads:
    """What the member summary shows of points, read with the member (members.selectors):
    the account and the points pending now."""
    return MemberSummaryReads(
        select_related=("points_account",),
        annotations=lambda at: {
            PENDING_NOW: pending_points_expression(at=at, account=OuterRef("points_account"))
        },
    )


def adjustment_staff_day_used(*, member: Member, at: datetime.datetime) -> int:
    """Points (absolute) of the member's posted store-staff adjustments on `at`'s business
    day (Asia/Shanghai), whoever of the store staff made them."""
    day = timezone.localtime(at, BUSINESS_TZ).date()
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=BUSINESS_TZ)
    rows = PointsAdjustment.objects.filter(
        member=member,
        authority=PointsAdjustment.Authority.STAFF,
        status=PointsAdjustment.Status.POSTED,
        requested_at__gte=start,
        requested_at__lt=start + datetime.timedelta(days=1),
    ).values_list("points", flat=True)
    return sum(abs(points) for points in rows)


def adjustment_list_pending() -> QuerySet[PointsAdjustment]:
    """Adjustments waiting for a second administrator, oldest first."""
    return (
        PointsAdjustment.objects.filter(status=PointsAdjustment.Status.PENDING)
        .select_related("member", "requested_by")
        .order_by("requested_at", "id")
    )


def adjustment_list_decided(*, limit: int) -> list[PointsAdjustment]:
    """The latest approved or rejected requests above the manager limit."""
    return list(
        PointsAdjustment.objects.filter(
            authority=PointsAdjustment.Authority.ADMINISTRATOR, decided_at__isnull=False
        )
        .select_related("member", "requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:limit]
    )


def adjustment_get(*, adjustment_id: int) -> PointsAdjustment | None:
    return (
        PointsAdjustment.objects.select_related("member", "requested_by")
        .filter(pk=adjustment_id)
        .first()
    )


@dataclass(frozen=True)
class ExpiringPoints:
    date: datetime.date  # the last day the points can be used, Asia/Shanghai
    points: int


def points_expiring(*, member: Member, at: datetime.datetime | None = None) -> list[ExpiringPoints]:
    """Every future expiry date with the points that expire then, soonest first."""
    at = at or timezone.now()
    if member_read_for_summary(member):  # the account was read with the member: no join
        account = account_get(member=member)
        if account is None:
            return []
        lots = Lot.objects.open().filter(account=account)
    else:
        lots = Lot.objects.open().filter(account__member=member)
    rows = (
        lots.filter(expires_at__gt=at)
        .values("expires_at")
        .annotate(points=Sum("remaining"))
        .order_by("expires_at")
    )
    result: dict[datetime.date, int] = {}
    for row in rows:
        # Stored as the first instant after expiry; the member sees the last valid day.
        day = row["expires_at"].astimezone(BUSINESS_TZ).date() - datetime.timedelta(days=1)
        result[day] = result.get(day, 0) + row["points"]
    return [ExpiringPoints(date=day, points=points) for day, points in result.items()]


def points_expiring_soon(
    *, member: Member, within_days: int = 30, at: datetime.datetime | None = None
) -> ExpiringPoints | None:
    at = at or timezone.now()
    upcoming = points_expiring(member=member, at=at)
    if upcoming and upcoming[0].date <= (at + datetime.timedelta(days=within_days)).date():
        return upcoming[0]
    return None


def ledger_history(*, member: Member, kind: str = "") -> QuerySet[LedgerTransaction]:
    txns = LedgerTransaction.objects.filter(member=member).order_by("-occurred_at", "-id")
    if kind:
        txns = txns.filter(kind=kind)
    return txns


def member_lots(*, member: Member) -> QuerySet[Lot]:
    return Lot.objects.filter(account__member=member).order_by("expires_at", "id")


def purchase_list(*, member: Member) -> QuerySet[Purchase]:
    return (
        Purchase.objects.filter(member=member)
        .select_related("store")
        .order_by("-occurred_at", "-id")
    )


def reward_list_available(*, at: datetime.datetime | None = None) -> QuerySet[Reward]:
    at = at or timezone.now()
    return (
        Reward.objects.filter(is_active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=at))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=at))
        .prefetch_related("tier_prices")
        .order_by("points_price", "code")
    )


def reward_units_held(*, reward: Reward, member_ids: Collection[int]) -> dict[int, int]:
    """How many of `reward` each member holds against its per-member limit (members holding
    none are left out): active redemptions, and coupons of it given without one (campaigns,
    birthdays) that are not void. The one count the till, the portal and the campaigns use."""
    held: dict[int, int] = dict(
        Redemption.objects.filter(
            reward=reward, member_id__in=member_ids, status=Redemption.Status.ACTIVE
        )
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    given = (
        Coupon.objects.filter(reward=reward, member_id__in=member_ids, redemption__isnull=True)
        .exclude(status=Coupon.Status.VOID)
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    for member_id, n in given:
        held[member_id] = held.get(member_id, 0) + n
    return held


def reward_get(*, code: str) -> Reward | None:
    """A reward by its code, available or not (the service says why it cannot be redeemed)."""
    code = (code or "").strip()
    rewards = Reward.objects.prefetch_related("tier_prices")
    return rewards.filter(code=code).first() or rewards.filter(code__iexact=code).first()


def coupon_list(*, member: Member) -> QuerySet[Coupon]:
    return (
        Coupon.objects.filter(member=member).select_related("reward").order_by("-issued_at", "-id")
    )


def coupon_list_portal(*, member: Member) -> QuerySet[Coupon]:
    """The member's coupons for the till: a donation (given before donations had receipts)
    is not one."""
    return coupon_list(member=member).exclude(reward__kind=Reward.Kind.DONATION)


def donation_list(*, member: Member) -> QuerySet[Redemption]:
    return (
        Redemption.objects.filter(member=member, reward__kind=Reward.Kind.DONATION)
        .select_related("reward")
        .order_by("-created_at", "-id")
    )


def donation_get(*, member: Member, redemption_id: int) -> Redemption | None:
    """One of the member's donations (anyone else's is as unknown as a missing one)."""
    return donation_list(member=member).filter(pk=redemption_id).first()


def coupon_get(*, code: str) -> Coupon | None:
    code = (code or "").strip().upper().replace(" ", "").replace("-", "")
    return Coupon.objects.select_related("reward", "member").filter(code=code).first()


def category_rate_list() -> QuerySet[CategoryRate]:
    return CategoryRate.objects.order_by("category")


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("code")


def category_names() -> dict[str, str]:
    """Each category's name in the language of the request, by code (one query)."""
    return {category.code: category.name for category in category_list()}


def redemption_counts(*, member: Member) -> dict[int, int]:
    """Active redemptions per reward id, for the per-member limit (one query)."""
    rows = (
        Redemption.objects.filter(member=member, status=Redemption.Status.ACTIVE)
        .values("reward_id")
        .annotate(taken=Count("id"))
    )
    return {row["reward_id"]: row["taken"] for row in rows}


def reward_names(*, codes: set[str]) -> dict[str, Reward]:
    """Rewards by code, for naming what a history line spent its points on."""
    return (
        {reward.code: reward for reward in Reward.objects.filter(code__in=codes)} if codes else {}
    )


# What a member reads for each ledger transaction: never the staff's reason, an internal code
# or who posted it (staff read those on their own ledger page).
RULE_LABELS = {
    "signup": lambda: _("Sign-up bonus"),
    "profile": lambda: _("Completed-profile bonus"),
    "referral": lambda: _("Referral bonus"),
}


def ledger_member_label(*, txn: LedgerTransaction, reward_name: str | None = None) -> str:
    """The member-facing description of one ledger transaction, in the active language.

    `reward_name` is the reward's name in the member's language, for reward transactions.
    """
    Source = LedgerTransaction.Source
    ref = txn.source_ref
    if txn.source == Source.PURCHASE:
        return _("Purchase, receipt %(receipt)s") % {"receipt": ref}
    if txn.source == Source.PAYMENT:
        return _("Points used to pay, receipt %(receipt)s") % {"receipt": ref}
    if txn.source == Source.RETURN:
        return _("Return, receipt %(receipt)s") % {"receipt": ref}
    if txn.source == Source.REWARD:
        name = reward_name or ref
        if txn.kind == LedgerTransaction.Kind.REVERSE:
            return _("Refund of %(reward)s") % {"reward": name}
        return name
    if txn.source == Source.EXPIRY:
        return _("Points reached the end of their validity")
    if txn.source == Source.RULE:
        # The rule is the second part of the key `rule:<rule>:<subject>` (points/rules.py).
        rule = txn.idempotency_key.split(":")[1] if txn.idempotency_key.count(":") >= 2 else ""
        label = RULE_LABELS.get(rule)
        return label() if label is not None else _("Bonus points")
    if txn.source == Source.STAFF:
        return _("Points adjustment")
    if txn.source == Source.IMPORT:
        return _("Opening balance")
    if txn.source == Source.MERGE:
        return _("Points moved when accounts were merged")
    if txn.source == Source.CAMPAIGN:
        return _("Campaign bonus")
    return str(txn.get_kind_display())


# --- Back office (points/staff_views.py) ------------------------------------------------


def purchase_get_by_receipt(*, store: Store, receipt_no: str) -> Purchase | None:
    return (
        Purchase.objects.select_related("member", "store")
        .filter(store=store, receipt_no=receipt_no.strip())
        .first()
    )


def purchase_list_with_returns(
    *, member: Member, limit: int = 10, store_ids: Collection[int] | None = None
) -> list[Purchase]:
    """The member's latest purchases with their returns; only those at `store_ids` if given
    (a store staff member's stores, members.selectors.staff_store_ids)."""
    purchases = purchase_list(member=member)
    if store_ids is not None:
        purchases = purchases.filter(store_id__in=store_ids)
    return list(purchases.prefetch_related("returns")[:limit])


def ledger_history_for_staff(*, member: Member, kind: str = "") -> QuerySet[LedgerTransaction]:
    return ledger_history(member=member, kind=kind).select_related("actor")


def redemption_get(*, redemption_id: int) -> Redemption | None:
    return Redemption.objects.select_related("member", "reward").filter(pk=redemption_id).first()


def coupon_list_for_staff(*, member: Member, limit: int = 20) -> list[Coupon]:
    return list(coupon_list(member=member).select_related("redemption")[:limit])


@dataclass(frozen=True)
class ReconcileMismatch:
    account: int
    member_no: str | None
    balance: int
    entries: int
    lots: int
    debt: int

    @property
    def lots_less_debt(self) -> int:
        return self.lots - self.debt


@dataclass(frozen=True)
class LargePosting:
    """One posting the night's reconcile listed for the auditor, as the report shows it."""

    transaction: int | None
    member_no: str | None
    points: int
    recorded_at: datetime.datetime | None
    kind: str
    source: str
    reference: str
    reason: str


def _large_posting(row: dict[str, Any]) -> LargePosting:
    # The run's details are stored JSON: codes and ISO text, shown as labels and local times.
    kinds, sources = LedgerTransaction.Kind, LedgerTransaction.Source
    kind, source = row.get("kind") or "", row.get("source") or ""
    try:
        recorded_at = datetime.datetime.fromisoformat(row.get("recorded_at") or "")
    except (TypeError, ValueError):
        recorded_at = None
    return LargePosting(
        transaction=row.get("transaction"),
        member_no=row.get("member_no"),
        points=row.get("points") or 0,
        recorded_at=recorded_at,
        kind=str(kinds(kind).label) if kind in kinds.values else kind,
        source=str(sources(source).label) if source in sources.values else source,
        reference=row.get("reference") or "",
        reason=row.get("reason") or "",
    )


@dataclass(frozen=True)
class ReconcileRun:
    """One reconcile JobRun as the auditor's report shows it."""

    run: JobRun
    accounts_checked: int | None
    mismatches: list[ReconcileMismatch]
    unbalanced: list[dict[str, Any]]
    large_postings: list[LargePosting]
    large_postings_count: int
    large_postings_threshold: int | None

    @property
    def large_postings_day(self) -> datetime.date | None:
        """The business day whose postings were looked at (the day before the run's date)."""
        return self.run.business_date - datetime.timedelta(days=1)

    @property
    def failed(self) -> bool:
        return self.run.status == JobRun.Status.FAILED

    @property
    def error_summary(self) -> str:
        # The first line says what went wrong; the traceback is for the logs, not the page.
        return (self.run.error or "").strip().split("\n", 1)[0]


def reconcile_runs(*, limit: int = 20) -> list[ReconcileRun]:
    """The latest runs of the nightly reconcile job, newest first, mismatches with the
    member numbers of their accounts (one query for the runs, one for the members)."""
    runs = list(JobRun.objects.filter(job="reconcile").order_by("-started_at", "-id")[:limit])
    member_ids = {
        row.get("member")
        for run in runs
        for row in (run.details or {}).get("mismatches", [])
        if row.get("member")
    }
    numbers = (
        dict(Member.objects.filter(pk__in=member_ids).values_list("pk", "member_no"))
        if member_ids
        else {}
    )
    report = []
    for run in runs:
        details = run.details or {}
        mismatches = [
            ReconcileMismatch(
                account=row.get("account"),
                member_no=numbers.get(row.get("member")),
                balance=row.get("balance") or 0,
                entries=row.get("entries") or 0,
                lots=row.get("lots") or 0,
                debt=row.get("debt") or 0,
            )
            for row in details.get("mismatches", [])
        ]
        report.append(
            ReconcileRun(
                run=run,
                accounts_checked=details.get("accounts_checked"),
                mismatches=mismatches,
                unbalanced=details.get("unbalanced_transactions", []),
                large_postings=[_large_posting(row) for row in details.get("large_postings", [])],
                large_postings_count=details.get("large_postings_count", 0),
                large_postings_threshold=details.get("large_postings_threshold"),
            )
        )
    return report


def member_points_export(member: Member) -> dict:
    """The member's points data for "download my data": purchases, ledger, lots, coupons."""

    def iso(value):
        return value.isoformat() if value else None

    account = account_get(member=member)
    return {
        "points": {
            "balance": account.balance if account else 0,
            "debt": account.debt if account else 0,
            "lifetime_earned": account.lifetime_earned if account else 0,
        },
        "purchases": [
            {
                "store": purchase.store.code,
                "receipt_no": purchase.receipt_no,
                "occurred_at": iso(purchase.occurred_at),
                "amount": str(purchase.amount),
                "returned_amount": str(purchase.returned_amount),
                "points_earned": purchase.points_earned,
                "points_used": purchase.points_used,
            }
            for purchase in purchase_list(member=member)
        ],
        "points_history": [
            {
                "kind": txn.kind,
                "points": txn.member_amount,
                "occurred_at": iso(txn.occurred_at),
                "source": txn.source,
                "reference": txn.source_ref,
                "reason": txn.reason,
            }
            for txn in ledger_history(member=member)
        ],
        "points_lots": [
            {
                "points": lot.points,
                "remaining": lot.remaining,
                "earned_at": iso(lot.earned_at),
                "expires_at": iso(lot.expires_at),
            }
            for lot in member_lots(member=member)
        ],
        "coupons": [
            {
                "code": coupon.code,
                "reward": coupon.reward.code,
                "status": coupon.status,
                "issued_at": iso(coupon.issued_at),
                "valid_until": iso(coupon.valid_until),
                "used_at": iso(coupon.used_at),
            }
            for coupon in coupon_list(member=member)
        ],
    }
