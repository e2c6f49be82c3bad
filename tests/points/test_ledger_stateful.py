"""A hypothesis state machine over the points services: random days of purchases, returns,
redemptions, voids, adjustments, expiry runs, coupon use and replayed requests for one to three
members, with the ledger's invariants checked after every step.

Each example runs inside a savepoint that is rolled back at teardown (the test itself sits in
pytest-django's transaction), so it works the same on SQLite and PostgreSQL and needs no
flush between examples. On PostgreSQL the sum-to-zero trigger is made IMMEDIATE for the
example, so it checks every posting instead of waiting for a commit that never comes.

A small shadow model (lots, debt, lifetime earned, redemptions, coupons, stock) predicts what
each call should do; the invariants are checked against the database on their own terms, so
they hold even where the shadow is silent.

More examples for a soak:
`LEDGER_STATEFUL_EXAMPLES=2000 uv run pytest tests/points/test_ledger_stateful.py`.
"""

from __future__ import annotations

import calendar
import datetime
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from core.config import config_changed
from members.models import AuditEntry
from points.ledger import (
    IdempotencyConflict,
    InsufficientPoints,
    PointsError,
    PointsInDebt,
    expiry_for,
)
from points.models import (
    Account,
    Coupon,
    EarningPolicy,
    Entry,
    LedgerTransaction,
    Lot,
    LotMovement,
    Purchase,
    Redemption,
    Return,
    Reward,
)
from points.services import (
    AdjustmentNotAllowed,
    CouponExpired,
    CouponNotFound,
    CouponUsed,
    CouponVoid,
    InvalidPurchase,
    LimitReached,
    OutOfStock,
    ReturnExceedsPurchase,
    coupon_use,
    points_adjust,
    points_expire,
    purchase_record,
    redemption_void,
    return_record,
    reward_redeem,
)
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import TierLevel

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
START = datetime.datetime(2026, 1, 5, 9, 30, tzinfo=SH)
HORIZON = START + datetime.timedelta(days=730)
STAFF_LIMIT = 500
STAFF_DAILY_LIMIT = 2000  # per member per business day, store staff's adjustments together
EXAMPLES = int(os.environ.get("LEDGER_STATEFUL_EXAMPLES", "80"))

# Rewards of the example: a limited one (stock and a per-member limit) and CNY10.
LIMITED = {"code": "MUG", "points_price": 300, "stock": 4, "per_member_limit": 2}
CNY10 = {"code": "CNY10", "points_price": 1000, "stock": None, "per_member_limit": None}

member_index = st.integers(0, 2)
pick = st.integers(0, 10_000)  # an index into a list of earlier things, taken modulo its length


# ---------------------------------------------------------------------------------------------
# The shadow model
# ---------------------------------------------------------------------------------------------


@dataclass
class ShadowLot:
    points: int
    remaining: int
    available_at: datetime.datetime
    expires_at: datetime.datetime
    order: int  # creation order, as the database's ids
    expired: int = 0  # taken by the expiry job


@dataclass
class ShadowMember:
    member: object
    lots: list[ShadowLot] = field(default_factory=list)
    debt: int = 0
    lifetime: int = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots) - self.debt

    def spendable(self, now: datetime.datetime) -> list[ShadowLot]:
        lots = [
            lot
            for lot in self.lots
            if lot.remaining > 0 and lot.available_at <= now < lot.expires_at
        ]
        return sorted(lots, key=lambda lot: (lot.expires_at, lot.order))


@dataclass
class ShadowPurchase:
    shadow: ShadowMember
    request: dict
    amount_cents: int
    earned: int
    lot: ShadowLot | None
    returned_cents: int = 0
    reversed: int = 0
    pk: int = 0


@dataclass
class ShadowRedemption:
    shadow: ShadowMember
    reward_code: str
    key: str
    taken: list[tuple[ShadowLot, int]]
    coupon_code: str
    valid_until: datetime.datetime
    pk: int
    void: bool = False
    used: bool = False


def month_end(when: datetime.datetime) -> datetime.datetime:
    local = when.astimezone(SH)
    last = calendar.monthrange(local.year, local.month)[1]
    return datetime.datetime(local.year, local.month, last, tzinfo=SH) + datetime.timedelta(days=1)


def yuan(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


COUNTED = (
    LedgerTransaction,
    Entry,
    Lot,
    LotMovement,
    Purchase,
    Return,
    Redemption,
    Coupon,
    AuditEntry,
)
# One round trip for all the row counts: it runs around every refused or replayed call.
COUNTS_SQL = "SELECT " + ", ".join(
    f"(SELECT COUNT(*) FROM {model._meta.db_table})" for model in COUNTED
)


def snapshot() -> tuple:
    """Everything a refused or replayed request must leave exactly as it was."""
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL)
        counts = cursor.fetchone()
    return (
        tuple(counts),
        tuple(
            Account.objects.order_by("pk").values_list("pk", "balance", "debt", "lifetime_earned")
        ),
        tuple(Lot.objects.order_by("pk").values_list("pk", "remaining")),
        tuple(Reward.objects.order_by("pk").values_list("pk", "stock")),
        tuple(Coupon.objects.order_by("pk").values_list("pk", "status", "redemption__status")),
        tuple(Purchase.objects.order_by("pk").values_list("pk", "returned_amount")),
    )


class LedgerMachine(RuleBasedStateMachine):
    # Set by the test before the machine runs: made once, outside the per-example savepoint.
    store = None
    staff = None  # may adjust up to 500 points
    manager = None  # has points.adjust_unlimited

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = START
        self.counter = 0
        self.lot_order = 0
        self.members: list[ShadowMember] = []
        self.purchases: list[ShadowPurchase] = []
        self.returns: list[dict] = []
        self.redemptions: list[ShadowRedemption] = []
        self.adjustments: list[dict] = []
        # Points (absolute) store staff adjusted per (member, business day).
        self.staff_day: dict[tuple[int, datetime.date], int] = {}
        self.expired_up_to: datetime.datetime | None = None
        self.policy = EarningPolicy.objects.create()
        self.rewards = {}
        self.stock = {}
        for spec in (LIMITED, CNY10):
            self.rewards[spec["code"]] = Reward.objects.create(
                kind=Reward.Kind.GIFT, name_zh=spec["code"], name_en=spec["code"], **spec
            )
            self.stock[spec["code"]] = spec["stock"]

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # -- helpers -------------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def member_at(self, index: int) -> ShadowMember:
        return self.members[index % len(self.members)]

    def new_lot(self, shadow: ShadowMember, points, *, available_at, expires_at) -> ShadowLot:
        self.lot_order += 1
        lot = ShadowLot(points, points, available_at, expires_at, self.lot_order)
        shadow.lots.append(lot)
        return lot

    def credit(self, shadow: ShadowMember, points: int, *, available_at, expires_at, earned: bool):
        to_debt = min(shadow.debt, points)
        shadow.debt -= to_debt
        if earned:
            shadow.lifetime += points
        if points - to_debt:
            return self.new_lot(
                shadow, points - to_debt, available_at=available_at, expires_at=expires_at
            )
        return None

    def debit(self, shadow: ShadowMember, points: int) -> list[tuple[ShadowLot, int]]:
        taken, left = [], points
        for lot in shadow.spendable(self.now):
            part = min(lot.remaining, left)
            lot.remaining -= part
            taken.append((lot, part))
            left -= part
            if not left:
                break
        assert left == 0
        return taken

    def spend_refusal(self, shadow: ShadowMember, points: int) -> type[PointsError] | None:
        if shadow.debt:
            return PointsInDebt
        if sum(lot.remaining for lot in shadow.spendable(self.now)) < points:
            return InsufficientPoints
        return None

    def refused(self, error: type[Exception], call) -> None:
        """The call is refused with `error` and writes nothing."""
        event(f"refused: {error.__name__}")
        before = snapshot()
        with pytest.raises(error):
            call()
        assert snapshot() == before, f"refused with {error.__name__} but wrote something"

    def replayed(self, call):
        """The call is a retry: it returns the first result and writes nothing."""
        event("replayed")
        before = snapshot()
        result = call()
        assert snapshot() == before, "a replay wrote something"
        return result

    # -- rules ---------------------------------------------------------------------------------

    @initialize(opening=st.lists(st.integers(0, 3000_00), min_size=1, max_size=3))
    def enrol(self, opening: list[int]) -> None:
        """One to three members, most with a first purchase so there is something to spend."""
        for index, cents in enumerate(opening):
            self.members.append(ShadowMember(member=MemberFactory(birthday=None)))
            if cents:
                self.purchase_paying_with_points(index, cents, 0, 0, 0, 0)

    @rule(days=st.one_of(st.integers(0, 20), st.integers(60, 400)), hours=st.integers(0, 23))
    def advance_clock(self, days: int, hours: int) -> None:
        self.now = min(self.now + datetime.timedelta(days=days, hours=hours), HORIZON)

    @rule(
        index=member_index,
        cents=st.one_of(st.integers(1, 300_00), st.integers(100_00, 3000_00)),
        pending_days=st.sampled_from([0, 7]),
        backdated_hours=st.sampled_from([0, 0, 0, 5, 30]),
    )
    def purchase(self, index, cents, pending_days, backdated_hours):
        self.purchase_paying_with_points(index, cents, 0, 0, pending_days, backdated_hours)

    @rule(
        index=member_index,
        cents=st.integers(1, 1000_00),
        hundreds=st.integers(1, 30),
        odd_points=st.sampled_from([0, 0, 0, 0, 0, 0, 0, 50]),
        pending_days=st.sampled_from([0, 7]),
        backdated_hours=st.sampled_from([0, 0, 0, 5, 30]),
    )
    def purchase_paying_with_points(
        self, index, cents, hundreds, odd_points, pending_days, backdated_hours
    ):
        shadow = self.member_at(index)
        EarningPolicy.objects.filter(pk=self.policy.pk).update(pending_days=pending_days)
        config_changed()
        points_to_use = hundreds * 100 + odd_points
        occurred_at = self.now - datetime.timedelta(hours=backdated_hours)
        request = {
            "member": shadow.member,
            "store": self.store,
            "receipt_no": self.next_id("R"),
            "occurred_at": occurred_at,
            "amount": yuan(cents),
            "points_to_use": points_to_use,
        }

        def call():
            return purchase_record(**request, now=self.now)

        if odd_points or points_to_use > cents:  # 100 points pay ¥1 = 100 cents
            self.refused(InvalidPurchase, call)
            return
        refusal = self.spend_refusal(shadow, points_to_use) if points_to_use else None
        if refusal:
            self.refused(refusal, call)
            return
        result = call()
        assert result.created
        event("purchased")
        purchase = result.purchase
        if points_to_use:
            taken = self.debit(shadow, points_to_use)
            assert purchase.payment_transaction.member_amount == -points_to_use
            assert sum(part for _, part in taken) == points_to_use
        earned = (cents - points_to_use) // 100  # 1 point per ¥1 paid with money, rounded down
        assert purchase.points_earned == earned
        lot = None
        if earned:
            lot = self.credit(
                shadow,
                earned,
                available_at=occurred_at + datetime.timedelta(days=pending_days),
                expires_at=expiry_for(occurred_at),
                earned=True,
            )
        self.purchases.append(ShadowPurchase(shadow, request, cents, earned, lot, pk=purchase.pk))

    @precondition(lambda self: self.purchases)
    @rule(
        which=pick,
        how=st.sampled_from(["full", "part", "part", "too_much"]),
        cents=st.integers(1, 3000_00),
    )
    def return_goods(self, which, how, cents):
        purchase = self.purchases[which % len(self.purchases)]
        left = purchase.amount_cents - purchase.returned_cents
        if how == "full":
            cents = left
        elif how == "part":
            cents = min(cents, left)
        else:
            cents = left + min(cents, 500)
        request = {
            "store": self.store,
            "receipt_no": self.next_id("X"),
            "original_receipt_no": purchase.request["receipt_no"],
            "amount": yuan(cents),
            "occurred_at": self.now,
            "now": self.now,
        }
        if cents == 0:
            self.refused(InvalidPurchase, lambda: return_record(**request))
            return
        if cents > left:
            self.refused(ReturnExceedsPurchase, lambda: return_record(**request))
            return
        result = return_record(**request)
        assert result.created
        returned_after = purchase.returned_cents + cents
        reversed_after = math.floor(
            Fraction(purchase.earned) * returned_after / purchase.amount_cents
        )
        points = reversed_after - purchase.reversed
        if points > 0:
            # What expired of the purchase's points is not reversed a second time.
            expired = purchase.lot.expired if purchase.lot is not None else 0
            points = max(0, min(points, purchase.earned - expired - purchase.reversed))
        assert result.purchase_return.points_reversed == points
        purchase.returned_cents = returned_after
        purchase.reversed += points
        if points:
            shadow = purchase.shadow
            shadow.lifetime -= points
            left_to_take = points
            # From the purchase's own lot first, then the member's other open lots (soonest
            # expiring first, pending and not yet swept ones included); the rest is debt.
            own = [purchase.lot] if purchase.lot is not None else []
            others = sorted(
                (lot for lot in shadow.lots if lot is not purchase.lot),
                key=lambda lot: (lot.expires_at, lot.order),
            )
            for lot in own + others:
                part = min(lot.remaining, left_to_take)
                lot.remaining -= part
                left_to_take -= part
            shadow.debt += left_to_take
            if left_to_take:
                event("return left debt")
        self.returns.append(request)

    @rule(index=member_index, code=st.sampled_from([LIMITED["code"], CNY10["code"]]))
    def redeem(self, index, code):
        shadow = self.member_at(index)
        reward = self.rewards[code]
        key = self.next_id("K")

        def call():
            return reward_redeem(
                member=shadow.member, reward=reward, idempotency_key=key, now=self.now
            )

        active = sum(
            1
            for r in self.redemptions
            if r.shadow is shadow and r.reward_code == code and not r.void
        )
        refusal = None
        if reward.per_member_limit is not None and active >= reward.per_member_limit:
            refusal = LimitReached
        else:
            refusal = self.spend_refusal(shadow, reward.points_price)
        if refusal is None and self.stock[code] is not None and self.stock[code] == 0:
            refusal = OutOfStock
        if refusal:
            self.refused(refusal, call)
            return
        balance_before = shadow.balance
        result = call()
        assert result.created
        event("redeemed")
        assert result.redemption.points_spent == reward.points_price
        taken = self.debit(shadow, reward.points_price)
        assert shadow.balance == balance_before - reward.points_price >= 0
        assert Account.objects.get(member=shadow.member).balance >= 0
        if self.stock[code] is not None:
            self.stock[code] -= 1
        self.redemptions.append(
            ShadowRedemption(
                shadow,
                code,
                key,
                taken,
                result.coupon.code,
                result.coupon.valid_until,
                pk=result.redemption.pk,
            )
        )

    @precondition(lambda self: self.redemptions)
    @rule(which=pick)
    def void(self, which):
        shadow_redemption = self.redemptions[which % len(self.redemptions)]
        redemption = Redemption.objects.get(pk=shadow_redemption.pk)

        def call():
            return redemption_void(
                redemption=redemption, actor=self.staff, reason="changed mind", now=self.now
            )

        if shadow_redemption.void:
            assert self.replayed(call).status == Redemption.Status.VOID
            return
        if shadow_redemption.used:
            self.refused(CouponUsed, call)
            return
        if shadow_redemption.valid_until <= self.now:
            # A coupon left to expire was the member's to use: no refund.
            self.refused(CouponExpired, call)
            return
        assert call().status == Redemption.Status.VOID
        shadow_redemption.void = True
        shadow = shadow_redemption.shadow
        points = sum(part for _, part in shadow_redemption.taken)
        to_debt = min(shadow.debt, points)
        shadow.debt -= to_debt
        left, expired_share = points - to_debt, 0
        for lot, part in sorted(
            shadow_redemption.taken, key=lambda item: (item[0].expires_at, item[0].order)
        ):
            back = min(part, left)
            left -= back
            if lot.expires_at > self.now:
                lot.remaining += back
            else:
                expired_share += back
        event("voided")
        if expired_share:
            event("void after the lot expired")
            self.new_lot(
                shadow, expired_share, available_at=self.now, expires_at=month_end(self.now)
            )
        if self.stock[shadow_redemption.reward_code] is not None:
            self.stock[shadow_redemption.reward_code] += 1

    @precondition(lambda self: self.redemptions)
    @rule(which=pick, unknown=st.sampled_from([False] * 9 + [True]))
    def use_coupon(self, which, unknown):
        shadow_redemption = self.redemptions[which % len(self.redemptions)]
        code = "UNKNOWN2345CODE9" if unknown else shadow_redemption.coupon_code

        def call():
            return coupon_use(code=code, store=self.store, receipt_no="C1", now=self.now)

        if unknown:
            self.refused(CouponNotFound, call)
        elif shadow_redemption.used:
            self.refused(CouponUsed, call)
        elif shadow_redemption.void:
            self.refused(CouponVoid, call)
        elif shadow_redemption.valid_until <= self.now:
            self.refused(CouponExpired, call)
        else:
            event("coupon used")
            assert call().status == Coupon.Status.USED
            shadow_redemption.used = True

    @rule(
        index=member_index,
        points=st.one_of(st.integers(-STAFF_LIMIT, STAFF_LIMIT), st.integers(-3000, 3000)),
        manager=st.booleans(),
    )
    def adjust(self, index, points, manager):
        shadow = self.member_at(index)
        request = {
            "member": shadow.member,
            "points": points,
            "reason": "stocktake correction",
            "actor": self.manager if manager else self.staff,
            "idempotency_key": self.next_id("A"),
        }

        def call():
            return points_adjust(**request, now=self.now)

        day = (shadow.member.pk, self.now.astimezone(SH).date())
        used = self.staff_day.get(day, 0)
        if points == 0 or (
            not manager and (abs(points) > STAFF_LIMIT or used + abs(points) > STAFF_DAILY_LIMIT)
        ):
            self.refused(AdjustmentNotAllowed, call)
            return
        refusal = self.spend_refusal(shadow, -points) if points < 0 else None
        if refusal:
            self.refused(refusal, call)
            return
        txn = call()
        assert txn.member_amount == points
        if not manager:
            self.staff_day[day] = used + abs(points)
        if points > 0:
            self.credit(
                shadow,
                points,
                available_at=self.now,
                expires_at=expiry_for(self.now),
                earned=False,
            )
        else:
            self.debit(shadow, -points)
        self.adjustments.append({**request, "pk": txn.pk})

    @rule(days=st.one_of(st.just(0), st.integers(1, 31), st.integers(300, 400)))
    def expire(self, days):
        """The nightly expiry job, run `days` from now (the clock moves on to then)."""
        self.now = min(self.now + datetime.timedelta(days=days), HORIZON)
        due = [
            lot
            for shadow in self.members
            for lot in shadow.lots
            if lot.remaining > 0 and lot.expires_at <= self.now
        ]
        event(f"expired lots: {min(len(due), 2)}")
        assert points_expire(at=self.now) == len(due)
        for lot in due:
            lot.expired += lot.remaining
            lot.remaining = 0
        self.expired_up_to = self.now

    @precondition(lambda self: self.purchases or self.redemptions or self.adjustments)
    @rule(
        kind=st.sampled_from(["purchase", "return", "redemption", "adjustment"]),
        which=pick,
        same=st.booleans(),
    )
    def replay(self, kind, which, same):
        """A till, app or form sends an earlier request again, or reuses its key for another."""
        earlier = {
            "purchase": self.purchases,
            "return": self.returns,
            "redemption": self.redemptions,
            "adjustment": self.adjustments,
        }[kind]
        if earlier:
            getattr(self, f"replay_{kind}")(earlier[which % len(earlier)], same)

    def replay_purchase(self, purchase, same):
        if same:
            result = self.replayed(lambda: purchase_record(**purchase.request, now=self.now))
            assert not result.created and result.purchase.pk == purchase.pk
        else:
            changed = {**purchase.request, "amount": purchase.request["amount"] + 1}
            self.refused(IdempotencyConflict, lambda: purchase_record(**changed, now=self.now))

    def replay_return(self, request, same):
        if same:
            result = self.replayed(lambda: return_record(**request))
            assert not result.created
        else:
            changed = {**request, "amount": request["amount"] + Decimal("0.01")}
            self.refused(IdempotencyConflict, lambda: return_record(**changed))

    def replay_redemption(self, earlier, same):
        code = earlier.reward_code
        if not same:
            code = CNY10["code"] if code == LIMITED["code"] else LIMITED["code"]

        def call():
            return reward_redeem(
                member=earlier.shadow.member,
                reward=self.rewards[code],
                idempotency_key=earlier.key,
                now=self.now,
            )

        if same:
            result = self.replayed(call)
            assert not result.created and result.redemption.pk == earlier.pk
            assert result.coupon.code == earlier.coupon_code
        else:
            self.refused(IdempotencyConflict, call)

    def replay_adjustment(self, earlier, same):
        request = {k: v for k, v in earlier.items() if k != "pk"}
        if same:
            txn = self.replayed(lambda: points_adjust(**request, now=self.now))
            assert txn.pk == earlier["pk"]
        else:
            points = request["points"]
            # Another amount within the same limit, so only the key can refuse it.
            other = points - (1 if points > 0 else -1) if abs(points) > 1 else 2 * points
            changed = {**request, "points": other}
            self.refused(IdempotencyConflict, lambda: points_adjust(**changed, now=self.now))

    # -- invariants ----------------------------------------------------------------------------
    # One pass over the whole (small) database per step, a handful of queries.

    @invariant()
    def ledger_guards_pass_now(self):
        # The example never commits: the guards' commit-time check (every transaction has
        # entries, and they sum to zero) is made to run after every step instead. Set to
        # IMMEDIATE it runs what is pending at once; DEFERRED again, it waits for the next
        # step, as at a real commit (a transaction and its entries come in two statements).
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS points_entry_unbalanced_check IMMEDIATE")
                cursor.execute("SET CONSTRAINTS points_entry_unbalanced_check DEFERRED")

    @invariant()
    def ledger_reconciles(self):
        accounts = list(Account.objects.annotate(posted=Sum("entries__amount")).order_by("pk"))
        lots_of: dict[int, list[Lot]] = {}
        for lot in Lot.objects.annotate(moved=Sum("movements__amount")).order_by("pk"):
            lots_of.setdefault(lot.account_id, []).append(lot)
            assert 0 <= lot.remaining <= lot.points, lot
            # A lot's history explains what is left of it.
            assert lot.points + (lot.moved or 0) == lot.remaining, lot
            if self.expired_up_to is not None:
                assert not (lot.remaining > 0 and lot.expires_at <= self.expired_up_to), lot

        # Every member account: the cached balance is the sum of its entries.
        for account in accounts:
            if account.kind == Account.Kind.MEMBER:
                assert account.balance == (account.posted or 0), account
        # Every transaction's entries sum to zero, so the whole ledger does.
        unbalanced = (
            Entry.objects.values("transaction")
            .annotate(total=Sum("amount"), n=Count("id"))
            .filter(~Q(total=0) | Q(n__lt=2))
        )
        assert not unbalanced.exists()
        members_total = sum(a.balance for a in accounts if a.kind == Account.Kind.MEMBER)
        # System accounts keep no running balance: theirs is the sum of their entries.
        system_total = (
            Entry.objects.exclude(account__kind=Account.Kind.MEMBER).aggregate(s=Sum("amount"))["s"]
            or 0
        )
        assert system_total == -members_total
        # The member's side of each posting is what the transaction says the member moved.
        member_side = Entry.objects.filter(
            account__member=F("transaction__member"), amount=F("transaction__member_amount")
        ).values("transaction")
        assert not LedgerTransaction.objects.exclude(pk__in=member_side).exists()

        by_member = {a.member_id: a for a in accounts if a.kind == Account.Kind.MEMBER}
        for shadow in self.members:
            account = by_member.get(shadow.member.pk)
            if account is None:
                assert shadow.balance == shadow.debt == shadow.lifetime == 0
                continue
            lots = lots_of.get(account.pk, [])
            remaining = sum(lot.remaining for lot in lots)
            assert account.balance == remaining - account.debt
            assert account.debt >= 0
            assert account.balance >= 0 or account.debt > 0
            # Earnings and refunds pay debt first and a reversal empties every lot before it
            # makes debt, so a member never has both.
            assert account.debt == 0 or remaining == 0
            # The shadow agrees, lot by lot.
            assert (account.balance, account.debt, account.lifetime_earned) == (
                shadow.balance,
                shadow.debt,
                shadow.lifetime,
            )
            assert [
                (lot.points, lot.remaining, lot.available_at, lot.expires_at) for lot in lots
            ] == [
                (lot.points, lot.remaining, lot.available_at, lot.expires_at) for lot in shadow.lots
            ]

    @invariant()
    def rewards_and_coupons_agree(self):
        stock = dict(Reward.objects.values_list("code", "stock"))
        assert stock == self.stock
        redemptions = list(Redemption.objects.values_list("reward__code", "status"))
        for code, spec in ((LIMITED["code"], LIMITED), (CNY10["code"], CNY10)):
            if spec["stock"] is not None:
                active = sum(1 for c, s in redemptions if c == code and s == "active")
                assert 0 <= stock[code] == spec["stock"] - active
        coupons = list(Coupon.objects.values_list("source", "status", "redemption__status"))
        # One coupon per redemption; void coupons are exactly the voided redemptions.
        assert len(coupons) == len(redemptions) == len(self.redemptions)
        assert all(source == Coupon.Source.REDEMPTION for source, _, _ in coupons)
        for _, status, redemption_status in coupons:
            assert (status == Coupon.Status.VOID) == (redemption_status == Redemption.Status.VOID)
        assert sum(1 for r in self.redemptions if r.void) == sum(
            1 for _, s in redemptions if s == Redemption.Status.VOID
        )
        assert sum(1 for r in self.redemptions if r.used) == sum(
            1 for _, s, _ in coupons if s == Coupon.Status.USED
        )


def test_the_ledger_holds_its_invariants_through_random_days_of_business(db):
    # The model earns at ×1: no member reaches a tier with a multiplier here (tiers have
    # their own worked examples).
    TierLevel.objects.filter(rank__gt=1).update(qualify_spend=0, qualify_points=0)
    config_changed()
    LedgerMachine.store = StoreFactory(code="SH001")
    LedgerMachine.staff = UserFactory(is_staff=True)
    LedgerMachine.manager = UserFactory(is_staff=True)
    LedgerMachine.manager.user_permissions.add(
        Permission.objects.get(content_type__app_label="points", codename="adjust_unlimited")
    )
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
