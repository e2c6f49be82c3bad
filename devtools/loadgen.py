"""A realistic synthetic data set, built fast: `manage.py loadgen --members N --purchases M`.

Stores; members (valid unique member numbers, unique +86 mobile numbers and referral codes,
Chinese names, birthdays) with their points accounts; purchases over the last 14 months,
each with its EARN ledger transaction, two entries and a lot (expiring at the end of the
12th month after it, Asia/Shanghai); one tier `QualifyingActivity` per purchase; and for
members whose last 12 months qualify for Silver or above, their `MemberTier` and one
`TierHistory` row (reason import). Lots earned more than 12 months ago are past their
expiry and still open, as they would be before the nightly expiry job has run.

Points are earned as the posting plan (`points.posting.plan`) decides for a purchase without
lines by a member still at the base level: the base rate, times the birthday multiplier in
the birthday month. The Python path plans every purchase with `purchase_plan`; the SQL path
is given the plan's points per cent for each month, with and without a birthday, and only
multiplies. Balance = Σ entries =
Σ open lots, and the nightly reconcile passes on the result.

The shape: how many purchases a member makes comes from a fixed, skewed curve over a
scrambled rank (the busiest member about 160 in 14 months, the quietest about 5), amounts
are log-normal around ¥200 with a per-member price level, so roughly a quarter of the
members are Silver or above and a few hundred in a million are Diamond. Member numbers,
phones and referral codes are bijective scrambles of the member's ordinal, so they are
unique by construction, and a later `--append` run continues the ordinals.

On PostgreSQL the data is made by the database itself (`SqlLoad`): one INSERT … SELECT
statement per chunk of members writes the members and everything that belongs to them, in
one transaction per chunk, two chunks at a time on two connections. Elsewhere (SQLite, the
tests and the demo) the same data is built in Python and written with bulk_create.
"""

from __future__ import annotations

import datetime
import itertools
import math
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone

from core.bulk import InsertLayout
from core.jobs import on_connections
from members.models import Member, Store
from members.numbers import DAMM_TABLE, damm_check_digit
from members.services import REFERRAL_ALPHABET, store_ensure
from points.earning import earning_rules
from points.ledger import BUSINESS_TZ, expiry_for, system_account
from points.models import Account, Entry, LedgerTransaction, Lot, Purchase
from points.posting import (
    EarningRules,
    MemberFacts,
    birthday_month_of,
    promotion_multiplier,
    purchase_plan,
)
from tiers.models import MemberTier, QualifyingActivity, TierHistory, TierLevel
from tiers.selectors import (
    Figures,
    add_months,
    business_date,
    months_before,
    qualified_level,
    tier_levels,
    tier_policy_get,
    validity_end,
)

from .benchmarks.members import GIVEN_FEMALE, GIVEN_MALE, MOBILE_PREFIXES, SURNAMES

STORES = (
    ("SH001", "上海南京路店", "上海"),
    ("SH002", "上海徐家汇店", "上海"),
    ("SH003", "上海陆家嘴店", "上海"),
    ("BJ001", "北京王府井店", "北京"),
    ("BJ002", "北京三里屯店", "北京"),
    ("GZ001", "广州天河店", "广州"),
    ("SZ001", "深圳万象城店", "深圳"),
    ("HZ001", "杭州湖滨店", "杭州"),
    ("CD001", "成都春熙路店", "成都"),
    ("WH001", "武汉江汉路店", "武汉"),
    ("NJ001", "南京新街口店", "南京"),
    ("XA001", "西安钟楼店", "西安"),
)
# Cumulative shares: store 70 %, online 12 %, app 10 %, mini-program 8 %.
CHANNELS = (("store", 0.70), ("online", 0.82), ("app", 0.92), ("mini_program", 1.0))
HISTORY_DAYS = 426  # about 14 months of purchases
# Members per five who consent to marketing SMS.
SMS_CONSENT_FIFTHS = 3
HOME_STORE_SHARE = 0.7
# Purchases per member: M·G(rank), G(x) = ((x+e)^a − e^a) / ((1+e)^a − e^a), which sums to
# exactly M over all members; e keeps the busiest member near 16 × the average.
CURVE_A = 0.5
CURVE_E = 0.001
# Amounts: exp(AMOUNT_MU + AMOUNT_SIGMA·z) × the member's price level exp(PRICE_SIGMA·z − ½σ²).
AMOUNT_MU = 4.9
AMOUNT_SIGMA = 0.9
PRICE_SIGMA = 0.9
AMOUNT_MAX = 50_000
BIRTHDAY_SHARE = 0.85
FEMALE_SHARE = 0.55

# Scrambles of the member ordinal: x → (A·x + B) mod size, a bijection when gcd(A, size) = 1.
_NO_SPACE = 10**10
_NO_A, _NO_B = 7_394_586_413, 2_718_281_828
_PHONE_SPACE = len(MOBILE_PREFIXES) * 10**8
_PHONE_A, _PHONE_B = 1_618_033_989, 1_234_567_891
_CODE_SPACE = 32**8
_CODE_A, _CODE_B = 2_654_435_761, 598_271_034_111

SQL_WORKERS = 2
SQL_CHUNK_PURCHASES = 250_000
REBUILD_INDEXES_FROM = 200_000
# Kept through a load that rebuilds the others: the guard against a ledger transaction
# without entries (points migration 0029) looks each chunk's new transactions up in it.
# Without it, that guard's anti-join hashes every entry loaded so far, once per chunk: a
# cost that grows with the square of the load (at 4M purchases a chunk's CPU time rose from
# 6.5 s for the first to 9.5 s for the last; with the index it stays near 8 s).
GUARD_INDEXES = frozenset({"points_entry_one_per_account"})
ORM_BATCH = 2_000


class LoadgenRefused(Exception):
    """The database already holds members and --append was not given."""


class LoadgenCheckFailed(Exception):
    """A chunk did not come out consistent; its transaction was rolled back."""


@dataclass
class LoadgenResult:
    members: int
    purchases: int
    points: int
    seconds: float
    tiers: int = 0
    timings: dict[str, float] = field(default_factory=dict)


Progress = Callable[[str, int, int], None]


def progress_bar(stream=None) -> Progress:
    """A one-line progress bar on stderr: `members [#####·····] 50% 500,000/1,000,000 …`."""
    stream = stream or sys.stderr
    started: dict[str, float] = {}

    def show(stage: str, done: int, total: int) -> None:
        start = started.setdefault(stage, time.monotonic())
        elapsed = max(time.monotonic() - start, 1e-9)
        filled = 30 * done // max(total, 1)
        stream.write(
            f"\r{stage:<9} [{'#' * filled}{'·' * (30 - filled)}] {done * 100 // max(total, 1):3d}% "
            f"{done:,}/{total:,} · {done / elapsed:,.0f}/s · {elapsed:,.0f}s"
        )
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


# --- The shape of the data, shared by both paths ------------------------------------------


def _curve(x: float) -> float:
    e, a = CURVE_E, CURVE_A
    return ((x + e) ** a - e**a) / ((1 + e) ** a - e**a)


def purchases_of_rank(*, rank: int, members: int, purchases: int) -> int:
    """How many purchases the member of this rank (0 = busiest) makes; sums to `purchases`."""
    return math.floor(purchases * _curve((rank + 1) / members)) - math.floor(
        purchases * _curve(rank / members)
    )


def _rank_scramble(members: int) -> tuple[int, int]:
    """(A, B) with gcd(A, members) = 1: rank = (A·i + B) mod members spreads the busy ones."""
    a = 7_919
    while math.gcd(a, members) != 1:
        a += 2
    return a, members // 3


def member_no_of(ordinal: int) -> str:
    body = "8" + f"{(_NO_A * ordinal + _NO_B) % _NO_SPACE:010d}"
    return body + damm_check_digit(body)


def phone_of(ordinal: int) -> str:
    number = (_PHONE_A * ordinal + _PHONE_B) % _PHONE_SPACE
    return f"+86{MOBILE_PREFIXES[number // 10**8]}{number % 10**8:08d}"


def referral_code_of(ordinal: int) -> str:
    bits = (_CODE_A * ordinal + _CODE_B) % _CODE_SPACE
    return "".join(REFERRAL_ALPHABET[(bits >> shift) & 31] for shift in range(0, 40, 5))


@dataclass(frozen=True)
class LoadTiers:
    """Which level a member's loaded history reaches, and when: decided by the tiers rule
    (`tiers.selectors.qualified_level`), on the running 12-month figures."""

    levels: list[TierLevel]  # lowest rank first
    valid_months: int

    @classmethod
    def load(cls) -> LoadTiers:
        return cls(levels=tier_levels(), valid_months=tier_policy_get().valid_months)

    @property
    def base_id(self) -> int | None:
        return self.levels[0].pk if self.levels else None

    def minimums(self) -> tuple[Decimal, int]:
        """The least spend and the least points any upgrade asks for: below both, a member
        stays at the base level (a threshold nobody reaches stands in for "none")."""
        spends = [lv.qualify_spend for lv in self.levels[1:] if lv.qualify_spend > 0]
        points = [lv.qualify_points for lv in self.levels[1:] if lv.qualify_points > 0]
        return (min(spends) if spends else Decimal("1e11")), (min(points) if points else 2**62)

    def reached(
        self, running: list[tuple[datetime.datetime, Decimal, int]]
    ) -> tuple[TierLevel, datetime.datetime] | None:
        """`running`: a member's activity in the last 12 months in order, each with the
        running spend and points up to it (rows below both `minimums` may be left out). The
        level the figures qualify for and the activity at which they first did; None for
        the base level."""
        if not running or not self.levels:
            return None
        _at, spend, points = running[-1]
        level = qualified_level(levels=self.levels, figures=Figures(spend=spend, points=points))
        if level == self.levels[0]:
            return None
        for at, spend, points in running:
            figures = Figures(spend=spend, points=points)
            if qualified_level(levels=self.levels, figures=figures) == level:
                return level, at
        return None  # not reached: the last row qualifies for `level`

    def valid_until(self, achieved_at: datetime.datetime) -> datetime.date:
        return validity_end(first_day=business_date(achieved_at), months=self.valid_months)


# --- Entry point ----------------------------------------------------------------------------


def loadgen(
    *,
    members: int,
    purchases: int,
    append: bool = False,
    seed: int | None = None,
    progress: Progress | None = None,
    workers: int = SQL_WORKERS,
    rebuild_indexes: bool | None = None,
) -> LoadgenResult:
    """Make `members` members with `purchases` purchases among them (see the module doc).

    `rebuild_indexes` (PostgreSQL): drop the bulk tables' indexes for the load and build them
    after; by default when the database has no members yet and the load is big.
    """
    started = time.monotonic()
    if not append and Member.objects.exists():
        raise LoadgenRefused("the database already has members; use --append to add more")
    stores = [store_ensure(code=code, name=name, city=city) for code, name, city in STORES]
    if connection.vendor == "postgresql" and members > 0:
        result = SqlLoad(
            members=members,
            purchases=purchases,
            stores=stores,
            seed=seed,
            progress=progress,
            workers=workers,
            rebuild_indexes=rebuild_indexes,
        ).run()
    else:
        result = OrmLoad(
            members=members, purchases=purchases, stores=stores, seed=seed, progress=progress
        ).run()
    result.seconds = time.monotonic() - started
    return result


# --- Python path (SQLite, small sizes) -----------------------------------------------------


class OrmLoad:
    """The same data as `SqlLoad`, built in Python and written with bulk_create."""

    def __init__(self, *, members: int, purchases: int, stores: list[Store], seed, progress):
        self.count = members
        self.purchases = purchases
        self.stores = {store.pk: store for store in stores}
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible from a seed
        self.progress = progress
        self.now = timezone.now().replace(microsecond=0)
        self.rules = earning_rules()
        self.tiers = LoadTiers.load()
        self.token = secrets.token_hex(3).upper()

    def run(self) -> LoadgenResult:
        created = self._members() if self.count else []
        buyers = created
        if not self.count and self.purchases:
            # No new members: purchases for the members already there.
            buyers = list(
                Member.objects.filter(status=Member.Status.ACTIVE).order_by("pk")[:1_000_000]
            )
        points = tiers = 0
        if self.purchases and buyers:
            points, tiers = self._purchases(buyers)
        return LoadgenResult(
            members=len(created),
            purchases=self.purchases if buyers else 0,
            points=points,
            seconds=0.0,
            tiers=tiers,
        )

    def _member(self, ordinal: int) -> Member:
        rng = self.rng
        female = rng.random() < FEMALE_SHARE
        given = GIVEN_FEMALE if female else GIVEN_MALE
        length = 1 if rng.random() < 0.3 else 2
        store = rng.choice(list(self.stores.values()))
        birthday = None
        if rng.random() < BIRTHDAY_SHARE:
            birthday = datetime.date(
                rng.randrange(1950, 2006), rng.randrange(1, 13), rng.randrange(1, 29)
            )
        return Member(
            member_no=member_no_of(ordinal),
            referral_code=referral_code_of(ordinal),
            phone=phone_of(ordinal),
            name=rng.choice(SURNAMES) + "".join(rng.choice(given) for _ in range(length)),
            gender="F" if female else "M",
            birthday=birthday,
            city=store.city,
            home_store=store,
            enrolment_store=store,
            enrolment_channel=Member.Channel.STORE,
            # Two to four years ago: every purchase comes after the enrolment.
            enrolled_at=self.now - datetime.timedelta(days=730 + rng.random() * 730),
        )

    def _members(self) -> list[Member]:
        first = Member.objects.count()
        created: list[Member] = []
        for offset in range(0, self.count, ORM_BATCH):
            size = min(ORM_BATCH, self.count - offset)
            batch = [self._member(first + offset + index) for index in range(size)]
            # Ordinals continue earlier runs; a number, phone or code an enrolment took
            # already leaves that member out.
            taken = {
                value
                for name in ("member_no", "phone", "referral_code")
                for value in Member.objects.filter(
                    **{f"{name}__in": [getattr(m, name) for m in batch]}
                ).values_list(name, flat=True)
            }
            batch = [m for m in batch if not taken & {m.member_no, m.phone, m.referral_code}]
            with transaction.atomic():
                Member.objects.bulk_create(batch, batch_size=500)
                Account.objects.bulk_create(
                    [Account(kind=Account.Kind.MEMBER, member=m) for m in batch], batch_size=500
                )
            created.extend(batch)
            if self.progress:
                self.progress("members", offset + size, self.count)
        return created

    def _purchases(self, members: list[Member]) -> tuple[int, int]:
        rng = self.rng
        count = len(members)
        rank_a, rank_b = _rank_scramble(count)
        accounts = dict(Account.objects.filter(member__in=members).values_list("member_id", "id"))
        issuance = system_account(Account.Kind.ISSUANCE)
        stores = list(self.stores.values())
        receipt = done = total_points = tiers = 0
        for index, member in enumerate(members):
            rank = (rank_a * index + rank_b) % count
            price = math.exp(PRICE_SIGMA * rng.gauss(0, 1) - PRICE_SIGMA**2 / 2)
            rows = []
            for _ in range(purchases_of_rank(rank=rank, members=count, purchases=self.purchases)):
                home = self.stores.get(member.home_store_id)
                store = home if home and rng.random() < HOME_STORE_SHARE else rng.choice(stores)
                draw = rng.random()
                channel = next(name for name, share in CHANNELS if draw < share)
                occurred = self.now - datetime.timedelta(
                    seconds=rng.randrange(HISTORY_DAYS * 86400)
                )
                value = price * math.exp(AMOUNT_MU + AMOUNT_SIGMA * rng.gauss(0, 1))
                cents = min(AMOUNT_MAX * 100, max(100, math.floor(100 * value)))
                amount = Decimal(cents).scaleb(-2)  # to the cent, as the plan is given it
                receipt += 1
                rows.append((store, channel, f"L{self.token}{receipt:09d}", occurred, amount))
            with transaction.atomic():
                total_points += self._post(
                    member=member, account_id=accounts[member.pk], rows=rows, issuance=issuance
                )
                tiers += self._tier(member=member)
            done += len(rows)
            if self.progress and (index % 100 == 99 or index == count - 1):
                self.progress("purchases", done, self.purchases)
        return total_points, tiers

    def _post(self, *, member: Member, account_id: int, rows, issuance: Account) -> int:
        """One member's purchases: each with its earning, two entries, lot and activity."""
        txns, purchases, activities = [], [], []
        facts = MemberFacts(
            member_id=member.pk,
            member_no=member.member_no,
            birthday_month=birthday_month_of(member.birthday),
            tier_multiplier=self.tiers.levels[0].earn_multiplier if self.tiers.levels else 1,
        )
        plans: dict[str, Any] = {}
        for store, channel, receipt_no, occurred, amount in rows:
            # The posting plan decides the points, key, fingerprint (occurred_at in UTC, as
            # the SQL path writes it), lot dates; the member has no tier yet.
            plan = purchase_plan(
                member=facts,
                store_id=store.pk,
                store_code=store.code,
                receipt_no=receipt_no,
                channel=channel,
                occurred_at=occurred,
                occurred_iso=occurred.astimezone(datetime.UTC).isoformat(),
                amount=amount,
                rules=self.rules,
            )
            points = plan.points
            plans[receipt_no] = plan
            txn = None
            if points:
                txn = LedgerTransaction(
                    kind=LedgerTransaction.Kind.EARN,
                    idempotency_key=plan.key,
                    fingerprint=plan.fingerprint,
                    source=LedgerTransaction.Source.PURCHASE,
                    source_ref=receipt_no,
                    occurred_at=occurred,
                    recorded_at=self.now,
                    member=member,
                    member_amount=points,
                )
                txns.append(txn)
            purchases.append(
                Purchase(
                    member=member,
                    store=store,
                    channel=channel,
                    receipt_no=receipt_no,
                    occurred_at=occurred,
                    amount=amount,
                    eligible_amount=plan.eligible_amount,
                    points_earned=points,
                    earn_transaction=txn,
                    fingerprint=plan.fingerprint,
                    recorded_at=self.now,
                )
            )
            activities.append(
                QualifyingActivity(
                    member=member,
                    occurred_at=occurred,
                    spend=plan.activity_spend,
                    points=plan.activity_points,
                    source=QualifyingActivity.Source.PURCHASE,
                )
            )
        LedgerTransaction.objects.bulk_create(txns)
        Purchase.objects.bulk_create(purchases)
        Entry.objects.bulk_create(
            [
                entry
                for txn in txns
                for entry in (
                    Entry(transaction=txn, account_id=account_id, amount=txn.member_amount),
                    Entry(transaction=txn, account=issuance, amount=-txn.member_amount),
                )
            ]
        )
        Lot.objects.bulk_create(
            [
                Lot(
                    account_id=account_id,
                    transaction=txn,
                    points=txn.member_amount,
                    remaining=txn.member_amount,
                    earned_at=txn.occurred_at,
                    available_at=plans[txn.source_ref].available_at,
                    expires_at=plans[txn.source_ref].expires_at,
                )
                for txn in txns
            ]
        )
        QualifyingActivity.objects.bulk_create(activities)
        points = sum(txn.member_amount for txn in txns)
        if points:
            Account.objects.filter(pk=account_id).update(
                balance=F("balance") + points,
                lifetime_earned=F("lifetime_earned") + points,
                updated_at=self.now,
            )
        return points

    def _tier(self, *, member: Member) -> int:
        """Silver or above when the last 12 months qualify: reached at the purchase whose
        running figures first met the level."""
        if self.tiers.base_id is None or MemberTier.objects.filter(member=member).exists():
            return 0
        running, spend, points = [], Decimal(0), 0
        for at, row_spend, row_points in (
            QualifyingActivity.objects.filter(
                member=member, occurred_at__gt=months_before(self.now, 12)
            )
            .order_by("occurred_at", "id")
            .values_list("occurred_at", "spend", "points")
        ):
            spend += row_spend
            points += row_points
            running.append((at, spend, points))
        reached = self.tiers.reached(running)
        if reached is None:
            return 0
        level, achieved_at = reached
        valid_until = self.tiers.valid_until(achieved_at)
        MemberTier.objects.create(
            member=member,
            level=level,
            achieved_at=achieved_at,
            period_start=achieved_at,
            valid_until=valid_until,
            updated_at=self.now,
        )
        TierHistory.objects.create(
            member=member,
            from_level_id=self.tiers.base_id,
            to_level=level,
            reason=TierHistory.Reason.IMPORT,
            at=achieved_at,
            valid_until=valid_until,
            recorded_at=self.now,
        )
        return 1


# --- PostgreSQL path: the database makes the data -----------------------------------------


def _insert(model: type[Model], own: dict[str, str], source: str, params: dict[str, Any]) -> str:
    """INSERT INTO model's table (every column) SELECT the `own` expressions FROM source; the
    other columns as `InsertLayout` fills them (auto_now: the load's time, in `params`)."""
    layout = InsertLayout(model, list(own), name=f"d_{model._meta.db_table}", now=params["now"])
    params.update(layout.params)
    return (
        f"INSERT INTO {layout.table} ({layout.columns}) "  # noqa: S608 - names from models
        f"SELECT {', '.join(own.values())}{layout.tail} FROM {source}"
    )


def _damm_sql(body: str) -> str:
    """The Damm check digit of the 11 digits in `body`, folded through the table `d.t`."""
    interim = "0"
    for position in range(1, 12):
        interim = f"d.t[{interim} * 10 + substr({body}, {position}, 1)::int + 1]"
    return f"({interim})::text"


def _gauss() -> str:
    # Box–Muller: one standard normal from two uniforms.
    return "(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"


def _curve_sql(x: str) -> str:
    e, a = CURVE_E, CURVE_A
    return f"((power({x} + {e}, {a}) - power({e}, {a})) / (power(1 + {e}, {a}) - power({e}, {a})))"


def _count_sql(rank: str) -> str:
    """purchases_of_rank in SQL (the plan and the chunks use this same text)."""
    upper = _curve_sql(f"(({rank}) + 1)::float8 / %(n)s")
    lower = _curve_sql(f"({rank})::float8 / %(n)s")
    return f"(floor(%(m)s * {upper}) - floor(%(m)s * {lower}))::bigint"


_RANK = "mod(%(rank_a)s::bigint * i + %(rank_b)s, %(n)s)"


@dataclass
class _Chunk:
    first: int  # member index in this run
    last: int  # exclusive
    offset: int  # purchase ordinal of its first purchase
    purchases: int


class SqlLoad:
    """Chunks of members, each with all its rows written by one statement in one transaction.

    The ledger's guards stay on: the sum-to-zero trigger checks each chunk's entries in one
    statement-level call (points migration 0025), the foreign keys are checked at commit as
    for any other writer, and the statement also counts its own unbalanced transactions.
    Rows point at each other through ids reserved up front (member, account, purchase and
    transaction ranges), all rows of a member are written by the same statement. On a
    database without members the secondary indexes of the bulk tables are dropped for the
    load and built again after it (sorted builds beat ~35 index insertions per purchase),
    then the tables are analysed. Foreign keys between loaded rows are never dropped; only
    those from tables outside the load that are empty (lot movements, purchase lines, …)
    go with the primary key they point at, and are added again, validated, before the load
    ends.
    """

    TABLES = (
        Member,
        Account,
        Purchase,
        LedgerTransaction,
        Entry,
        Lot,
        QualifyingActivity,
        MemberTier,
        TierHistory,
    )

    def __init__(
        self,
        *,
        members: int,
        purchases: int,
        stores: list[Store],
        seed: int | None,
        progress: Progress | None,
        workers: int,
        rebuild_indexes: bool | None = None,
    ) -> None:
        self.count = members
        self.purchases = purchases
        self.stores = stores
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.progress = progress
        self.workers = max(1, workers)
        self.rebuild_indexes = rebuild_indexes
        self.timings: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done_purchases = 0
        self.totals = {"members": 0, "purchases": 0, "points": 0, "tiers": 0}

    # The steps ---------------------------------------------------------------------------

    def run(self) -> LoadgenResult:
        started = time.monotonic()
        now = timezone.now().replace(microsecond=0)
        first_ordinal = Member.objects.count()
        fresh = first_ordinal == 0
        rebuild = self.rebuild_indexes
        if rebuild is None:
            # Sorted builds win from a few hundred thousand purchases on; never under a
            # caller's transaction, whose locks the builders on other connections would wait on.
            rebuild = (
                fresh and self.purchases >= REBUILD_INDEXES_FROM and not connection.in_atomic_block
            )
        rules = earning_rules()
        self.tiers = LoadTiers.load()
        rank_a, rank_b = _rank_scramble(self.count)
        months = load_months(now)
        numerators, denominators = points_per_cent(months, rules, self.tiers)
        min_spend, min_points = self.tiers.minimums()
        self.params: dict[str, Any] = {
            "n": self.count,
            "m": self.purchases,
            "rank_a": rank_a,
            "rank_b": rank_b,
            "first": first_ordinal,
            "now": now,
            "now_epoch": int(now.timestamp()),
            "since": months_before(now, 12),
            "token": secrets.token_hex(3).upper(),
            "issuance": system_account(Account.Kind.ISSUANCE).pk,
            "store_ids": [store.pk for store in self.stores],
            "store_codes": [store.code for store in self.stores],
            "store_cities": [store.city for store in self.stores],
            "prefixes": list(MOBILE_PREFIXES),
            "damm": [value for row in DAMM_TABLE for value in row],
            "alphabet": REFERRAL_ALPHABET,
            "surnames": SURNAMES,
            "female": GIVEN_FEMALE,
            "male": GIVEN_MALE,
            "month_starts": [start for start, _month, _expiry in months],
            "month_numbers": [month for _start, month, _expiry in months],
            "month_expiries": [expiry for _start, _month, expiry in months],
            # Points per cent of each (month, birthday month or not), from the earning rule.
            "points_num": numerators,
            "points_den": denominators,
            "pending_days": rules.pending_days,
            "base_level": self.tiers.base_id,
            "min_spend": min_spend,
            "min_points": min_points,
        }
        chunks = self._plan()
        self._reserve_ids()
        self.sql = self._chunk_sql(append=not fresh)
        self.tier_sql = self._tier_sql()
        self.timings["plan"] = time.monotonic() - started
        dropped: list[list[str]] = []
        if rebuild:
            dropped = self._indexes_drop()
        try:
            step = time.monotonic()
            self._run_chunks(chunks)
            self.timings["rows"] = time.monotonic() - step
        finally:
            step = time.monotonic()
            self._indexes_create(dropped)
            self.timings["indexes"] = time.monotonic() - step
        step = time.monotonic()
        self._analyze()
        self.timings["analyze"] = time.monotonic() - step
        return LoadgenResult(
            members=self.totals["members"],
            purchases=self.totals["purchases"],
            points=self.totals["points"],
            seconds=0.0,
            tiers=self.totals["tiers"],
            timings=self.timings,
        )

    def _plan(self) -> list[_Chunk]:
        """Chunks of about SQL_CHUNK_PURCHASES purchases, and where each one's ordinals start."""
        per_chunk = self.count * SQL_CHUNK_PURCHASES // max(self.purchases, 1)
        per_chunk = min(max(per_chunk, 1_000), 50_000, self.count)
        params = {**self.params, "per_chunk": per_chunk}
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT i / %(per_chunk)s, COALESCE(SUM({_count_sql(_RANK)}), 0) "  # noqa: S608
                "FROM generate_series(0, %(n)s - 1) AS i GROUP BY 1 ORDER BY 1",
                params,
            )
            rows = cursor.fetchall()
        chunks, offset = [], 0
        for index, purchases in rows:
            first = index * per_chunk
            last = min(first + per_chunk, self.count)
            chunks.append(_Chunk(first=first, last=last, offset=offset, purchases=int(purchases)))
            offset += int(purchases)
        return chunks

    def _reserve_ids(self) -> None:
        """Ids for the rows that others point at, taken from their sequences as one range."""
        with connection.cursor() as cursor:
            for model, count, name in (
                (Member, self.count, "member_base"),
                (Account, self.count, "account_base"),
                (Purchase, self.purchases, "purchase_base"),
                (LedgerTransaction, self.purchases, "txn_base"),
            ):
                # One statement: a concurrent insert takes an id before or after the range.
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                    "nextval(pg_get_serial_sequence(%s, 'id')) + %s)",
                    [model._meta.db_table, model._meta.db_table, max(count - 1, 0)],
                )
                self.params[name] = cursor.fetchone()[0] - max(count - 1, 0)

    def _run_chunks(self, chunks: list[_Chunk]) -> None:
        if self.progress:
            self.progress("purchases", 0, self.purchases)
        on_connections(items=chunks, work=self._chunk_write, workers=self.workers)

    def _chunk_write(self, chunk: _Chunk) -> None:
        params = {
            **self.params,
            "i0": chunk.first,
            "i1": chunk.last,
            "offset": chunk.offset,
            "seed": ((self.seed * 7919 + chunk.first) % 2_000_003) / 2_000_003,
        }
        with connection.cursor() as cursor:
            # The guards' statements are planned once per connection and the plan kept; the
            # ledger grows by a chunk each time, so have them planned again for its size.
            cursor.execute("DISCARD PLANS")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SELECT setseed(%(seed)s)", params)
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
            members, purchases, points, unbalanced = rows[0][:4]
            if unbalanced:
                raise LoadgenCheckFailed(
                    f"{unbalanced} ledger transaction(s) whose entries do not sum to 0"
                )
            tiers = self._tiers_write(cursor, [row[4:] for row in rows if row[4] is not None])
        with self.lock:
            self.totals["members"] += members
            self.totals["purchases"] += purchases
            self.totals["points"] += int(points)
            self.totals["tiers"] += tiers
            self.done_purchases += chunk.purchases
            if self.progress:
                self.progress("purchases", self.done_purchases, self.purchases)

    def _tiers_write(self, cursor, running: list[tuple[int, Any, Decimal, int]]) -> int:
        """The tier each member's history reached (`LoadTiers.reached`), written set-based.
        `running`: (member, time, running spend, running points), by member and time."""
        reached: list[tuple[int, int, datetime.datetime, datetime.date]] = []
        start = 0
        for index in range(1, len(running) + 1):
            if index == len(running) or running[index][0] != running[start][0]:
                found = self.tiers.reached([row[1:] for row in running[start:index]])
                if found is not None:
                    level, at = found
                    reached.append((running[start][0], level.pk, at, self.tiers.valid_until(at)))
                start = index
        if reached:
            columns = [list(column) for column in zip(*reached, strict=True)]
            member_ids, level_ids, times, until = columns
            cursor.execute(
                self.tier_sql,
                {
                    **self.params,
                    "t_member": member_ids,
                    "t_level": level_ids,
                    "t_at": times,
                    "t_until": until,
                },
            )
        return len(reached)

    # The statement -----------------------------------------------------------------------

    def _tier_sql(self) -> str:
        params = self.params
        source = (
            "unnest(%(t_member)s::bigint[], %(t_level)s::bigint[], %(t_at)s::timestamptz[], "
            "%(t_until)s::date[]) AS reached(member_id, level_id, achieved_at, valid_until)"
        )
        ins_mt = _insert(
            MemberTier,
            {
                "member_id": "member_id",
                "level_id": "level_id",
                "achieved_at": "achieved_at",
                "period_start": "achieved_at",
                "valid_until": "valid_until",
            },
            source,
            params,
        )
        ins_h = _insert(
            TierHistory,
            {
                "member_id": "member_id",
                "from_level_id": "%(base_level)s",
                "to_level_id": "level_id",
                "reason": f"'{TierHistory.Reason.IMPORT.value}'",
                "at": "achieved_at",
                "valid_until": "valid_until",
            },
            source,
            params,
        )
        return f"WITH ins_mt AS ({ins_mt}) {ins_h}"

    def _members_sql(self, *, append: bool) -> tuple[str, str]:
        letters = " || ".join(
            f"substr(%(alphabet)s, mod(code_n / {32**k}, 32)::int + 1, 1)" for k in range(8)
        )

        def char(text: str) -> str:
            return f"substr(%({text})s, 1 + floor(random() * length(%({text})s))::int, 1)"

        sql = f"""
        d AS (SELECT %(damm)s::int[] AS t),
        m0 AS (
            SELECT i, start, c,
                   '8' || lpad(mod({_NO_A}::bigint * (%(first)s + i) + {_NO_B},
                                   {_NO_SPACE})::text, 10, '0') AS body,
                   mod({_PHONE_A}::bigint * (%(first)s + i) + {_PHONE_B},
                       {_PHONE_SPACE}) AS phone_n,
                   mod({_CODE_A}::bigint * (%(first)s + i) + {_CODE_B}, {_CODE_SPACE}) AS code_n,
                   random() < {FEMALE_SHARE} AS female,
                   random() < 0.3 AS short_name,
                   1 + floor(random() * {len(STORES)})::int AS home,
                   CASE WHEN random() < {BIRTHDAY_SHARE} THEN make_date(
                       1950 + floor(random() * 56)::int, 1 + floor(random() * 12)::int,
                       1 + floor(random() * 28)::int) END AS birthday,
                   exp({PRICE_SIGMA} * {_gauss()} - {PRICE_SIGMA**2 / 2}) AS price,
                   %(now)s::timestamptz - (730 + random() * 730) * interval '1 day' AS enrolled_at
            FROM (
                SELECT i, c, (%(offset)s + SUM(c) OVER (ORDER BY i) - c)::bigint AS start
                FROM (SELECT i, {_count_sql(_RANK)} AS c
                      FROM generate_series(%(i0)s, %(i1)s - 1) AS i) AS counted
            ) AS placed
        ),
        m AS MATERIALIZED (
            SELECT %(member_base)s + i AS member_id, %(account_base)s + i AS account_id,
                   body || {_damm_sql("body")} AS member_no,
                   '+86' || (%(prefixes)s::text[])[phone_n / 100000000 + 1]
                       || lpad(mod(phone_n, 100000000)::text, 8, '0') AS phone,
                   {letters} AS referral_code,
                   {char("surnames")} || CASE WHEN female
                       THEN {char("female")}
                            || CASE WHEN short_name THEN '' ELSE {char("female")} END
                       ELSE {char("male")}
                            || CASE WHEN short_name THEN '' ELSE {char("male")} END
                   END AS name,
                   CASE WHEN female THEN 'F' ELSE 'M' END AS gender,
                   birthday, COALESCE(extract(month FROM birthday)::int, 0) AS birthday_month,
                   (%(store_ids)s::bigint[])[home] AS home_store_id,
                   (%(store_cities)s::text[])[home] AS city,
                   home, price, enrolled_at, start, c
            FROM m0, d
        )"""  # noqa: S608 - names and numbers from this module, values as parameters
        if not append:
            return sql, "m"
        # Numbers, phones and codes continue the earlier runs' ordinals; one that an enrolment
        # took already leaves that member (and their purchases) out.
        sql += """,
        mf AS MATERIALIZED (
            SELECT * FROM m WHERE NOT EXISTS (
                SELECT 1 FROM members_member x
                WHERE x.member_no = m.member_no OR x.phone = m.phone
                   OR x.referral_code = m.referral_code))"""
        return sql, "mf"

    def _purchases_sql(self, members: str) -> str:
        channel = " ".join(f"WHEN channel_draw < {share} THEN '{name}'" for name, share in CHANNELS)
        # posting.purchase_fingerprint's JSON (sorted keys, ", " and ": ") in SQL.
        request = (
            """'{"amount": "' || amount::text || '", "channel": "' || channel"""
            """ || '", "lines": [], "member": "' || member_no || '", "occurred_at": "'"""
            """ || replace((occurred_at AT TIME ZONE 'UTC')::text, ' ', 'T')"""
            """ || '+00:00", "points_to_use": 0, "receipt_no": "' || receipt_no"""
            """ || '", "store": "' || store_code || '"}'"""
        )
        return f"""
        p AS MATERIALIZED (
            SELECT member_id, account_id, ord, occurred_at, amount, channel, store_id,
                   receipt_no, points, expires_at,
                   encode(sha256(convert_to({request}, 'UTF8')), 'hex') AS fingerprint,
                   'purchase:' || store_code || ':' || receipt_no AS idempotency_key
            FROM (
                SELECT member_id, account_id, member_no, ord, occurred_at,
                       cents * 0.01 AS amount,
                       CASE {channel} END AS channel,
                       (%(store_ids)s::bigint[])[store] AS store_id,
                       (%(store_codes)s::text[])[store] AS store_code,
                       'L' || %(token)s || lpad(ord::text, 9, '0') AS receipt_no,
                       (%(month_expiries)s::timestamptz[])[month] AS expires_at,
                       cents * (%(points_num)s::bigint[])[factor]
                           / (%(points_den)s::bigint[])[factor] AS points
                FROM (
                    SELECT *, 2 * month - 1 + (birthday_month
                               = (%(month_numbers)s::int[])[month])::int AS factor
                    FROM (
                    SELECT *, width_bucket(occurred_at, %(month_starts)s::timestamptz[]) AS month
                    FROM (
                        SELECT member_id, account_id, member_no, birthday_month, start + k AS ord,
                               CASE WHEN random() < {HOME_STORE_SHARE} THEN home
                                    ELSE 1 + floor(random() * {len(STORES)})::int END AS store,
                               to_timestamp(%(now_epoch)s
                                   - floor(random() * {HISTORY_DAYS * 86400})) AS occurred_at,
                               greatest(100, least({AMOUNT_MAX * 100}, floor(100 * price
                                   * exp({AMOUNT_MU} + {AMOUNT_SIGMA} * {_gauss()}))))::bigint
                                   AS cents,
                               random() AS channel_draw
                        FROM {members} CROSS JOIN LATERAL generate_series(0, c - 1) AS k
                    ) AS drawn
                    ) AS monthly
                ) AS dated
            ) AS priced
        )"""  # noqa: S608 - names and numbers from this module, values as parameters

    def _chunk_sql(self, *, append: bool) -> str:
        params = self.params
        members_sql, members = self._members_sql(append=append)
        txn = "%(txn_base)s + ord"
        ins_m = _insert(
            Member,
            {
                "id": "member_id",
                "member_no": "member_no",
                "phone": "phone",
                "name": "name",
                "gender": "gender",
                "birthday": "birthday",
                "city": "city",
                "home_store_id": "home_store_id",
                "enrolment_store_id": "home_store_id",
                "enrolment_channel": f"'{Member.Channel.STORE.value}'",
                # Three in five agree to marketing texts, as a till's enrolment form asks: the
                # campaigns' message benches need an audience that can be reached.
                "consent_sms": f"mod(member_id, 5) < {SMS_CONSENT_FIFTHS}",
                "referral_code": "referral_code",
                "status": f"'{Member.Status.ACTIVE.value}'",
                "enrolled_at": "enrolled_at",
            },
            members,
            params,
        )
        ins_a = _insert(
            Account,
            {
                "id": "account_id",
                "kind": f"'{Account.Kind.MEMBER.value}'",
                "member_id": f"{members}.member_id",
                "balance": "COALESCE(agg.points, 0)",
                "debt": "0",
                "lifetime_earned": "COALESCE(agg.points, 0)",
            },
            f"{members} LEFT JOIN agg USING (member_id)",
            params,
        )
        ins_p = _insert(
            Purchase,
            {
                "id": "%(purchase_base)s + ord",
                "member_id": "member_id",
                "store_id": "store_id",
                "channel": "channel",
                "receipt_no": "receipt_no",
                "occurred_at": "occurred_at",
                "amount": "amount",
                "points_used": "0",
                "eligible_amount": "amount",
                "points_earned": "points",
                "returned_amount": "0",
                "earn_transaction_id": f"CASE WHEN points > 0 THEN {txn} END",
                "fingerprint": "fingerprint",
            },
            "p",
            params,
        )
        ins_t = _insert(
            LedgerTransaction,
            {
                "id": txn,
                "kind": f"'{LedgerTransaction.Kind.EARN.value}'",
                "idempotency_key": "idempotency_key",
                "fingerprint": "fingerprint",
                "source": f"'{LedgerTransaction.Source.PURCHASE.value}'",
                "source_ref": "receipt_no",
                "occurred_at": "occurred_at",
                "member_id": "member_id",
                "member_amount": "points",
            },
            "p WHERE points > 0",
            params,
        )
        ins_e = _insert(
            Entry,
            {
                "transaction_id": txn,
                "account_id": "CASE WHEN side = 1 THEN account_id ELSE %(issuance)s END",
                "amount": "side * points",
            },
            "p CROSS JOIN (VALUES (1), (-1)) AS sides(side) WHERE points > 0",
            params,
        )
        ins_l = _insert(
            Lot,
            {
                "account_id": "account_id",
                "transaction_id": txn,
                "points": "points",
                "remaining": "points",
                "earned_at": "occurred_at",
                "available_at": "occurred_at + %(pending_days)s * interval '1 day'",
                "expires_at": "expires_at",
            },
            "p WHERE points > 0",
            params,
        )
        ins_q = _insert(
            QualifyingActivity,
            {
                "member_id": "member_id",
                "occurred_at": "occurred_at",
                "spend": "amount",
                "points": "points",
                "source": f"'{QualifyingActivity.Source.PURCHASE.value}'",
            },
            "p",
            params,
        )
        return f"""
        WITH {members_sql},
        {self._purchases_sql(members)},
        agg AS MATERIALIZED (
            SELECT member_id, SUM(points) AS points FROM p GROUP BY member_id
        ),
        -- Candidates for a tier: each purchase of the last 12 months with the member's running
        -- figures, where they reach the least any upgrade asks for. Python decides the level.
        running AS MATERIALIZED (
            SELECT member_id, ord, occurred_at, spend, points FROM (
                SELECT member_id, ord, occurred_at,
                       SUM(amount) OVER run AS spend, SUM(points) OVER run AS points
                FROM p WHERE occurred_at > %(since)s
                WINDOW run AS (PARTITION BY member_id ORDER BY occurred_at, ord)
            ) AS figures
            WHERE spend >= %(min_spend)s OR points >= %(min_points)s
        ),
        ins_m AS ({ins_m}),
        ins_a AS ({ins_a}),
        ins_p AS ({ins_p}),
        ins_t AS ({ins_t}),
        ins_e AS ({ins_e} RETURNING transaction_id, amount),
        ins_l AS ({ins_l}),
        ins_q AS ({ins_q}),
        totals AS (
            SELECT (SELECT COUNT(*) FROM {members}) AS members, (SELECT COUNT(*) FROM p) AS n,
                   (SELECT COALESCE(SUM(points), 0) FROM agg) AS points,
                   (SELECT COUNT(*) FROM (SELECT transaction_id FROM ins_e GROUP BY transaction_id
                                          HAVING SUM(amount) <> 0) AS unbalanced) AS unbalanced
        )
        -- The totals on every row (one row with no candidate at all).
        SELECT totals.*, running.member_id, running.occurred_at, running.spend, running.points
        FROM totals LEFT JOIN running ON true
        ORDER BY running.member_id, running.occurred_at, running.ord
        """  # noqa: S608 - table and column names come from the models

    # Indexes and statistics ----------------------------------------------------------------

    def _tables(self) -> list[str]:
        return [model._meta.db_table for model in self.TABLES]

    def _indexes_drop(self) -> list[list[str]]:
        """Drop the indexes of the bulk tables for the load; returns the statements that make
        them again, in two rounds: indexes and keys, then the foreign keys that need a key.

        Secondary indexes (and the unique constraints they back) all go, except those the
        guards look rows up in (GUARD_INDEXES). A primary key goes
        too when the only foreign keys pointing at it come from empty tables outside the
        load (entries, lots, purchases, tier activity): a key costs ~2 µs a row to maintain
        and a tenth of that to build. The foreign keys of the bulk tables go as well and are
        added again before the load ends, first NOT VALID (at once, so new rows are checked
        from then on), then each checked over every loaded row in one join by
        `VALIDATE CONSTRAINT`, where the deferred per-row checks cost ~15 index lookups a
        purchase at commit. VALIDATE locks only the referencing table against other schema
        changes, so two connections validate keys side by side (ADD … FOREIGN KEY locks both
        tables and made them wait on each other). If a row points at nothing, the load
        fails, naming the key. The ledger's guard triggers stay on throughout. Returns three
        rounds: the indexes (those of keys too); the keys made from their indexes and the
        foreign keys added NOT VALID; the validations. All dropped in one transaction.
        """
        quote = connection.ops.quote_name
        tables = self._tables()
        again: list[tuple[str, str]] = []
        attach: list[str] = []
        foreign: list[tuple[str, str, str]] = []
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT t.relname, i.indexrelid::regclass::text, c.conname, c.contype,
                       pg_get_indexdef(i.indexrelid), c.condeferrable, c.condeferred,
                       ARRAY(SELECT r.relname FROM pg_constraint f
                             JOIN pg_class r ON r.oid = f.conrelid
                             WHERE f.contype = 'f' AND f.confrelid = i.indrelid)
                FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                LEFT JOIN pg_constraint c
                    ON c.conindid = i.indexrelid AND c.contype IN ('u', 'p')
                    AND c.conrelid = i.indrelid
                WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace
                ORDER BY t.relname, 2
                """,
                [tables],
            )
            for (
                table,
                index,
                constraint,
                kind,
                index_sql,
                deferrable,
                deferred,
                referrers,
            ) in cursor.fetchall():
                if constraint in GUARD_INDEXES:
                    continue
                if kind == "p":
                    if any(r in tables or _has_rows(cursor, r) for r in referrers):
                        continue
                    foreign += _foreign_keys_drop(cursor, table)
                if constraint:
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(constraint)}"
                    )
                    # Built as a plain unique index, then made the constraint: CREATE INDEX
                    # locks out only writers, so several build on one table side by side,
                    # where ADD CONSTRAINT … UNIQUE locks the table against every other build.
                    timing = " DEFERRABLE" if deferrable else ""
                    timing += " INITIALLY DEFERRED" if deferred else ""
                    attach.append(
                        f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(constraint)} "
                        f"{'PRIMARY KEY' if kind == 'p' else 'UNIQUE'} USING INDEX {index}{timing}"
                    )
                else:
                    cursor.execute(f"DROP INDEX {index}")
                again.append((table, index_sql))
            for table in tables:
                foreign += _foreign_keys_drop(cursor, table, outgoing=True)
        # The biggest tables first, so that both connections finish together.
        size = {Entry._meta.db_table: 0, LedgerTransaction._meta.db_table: 1,
                Purchase._meta.db_table: 2, Lot._meta.db_table: 3}  # fmt: skip
        # Validations of one table wait on each other: hand them out a table at a time.
        by_table: dict[str, list[str]] = {}
        for table, _add, validate in sorted(foreign, key=lambda row: size.get(row[0], 9)):
            by_table.setdefault(table, []).append(validate)
        validations = [
            sql
            for turn in itertools.zip_longest(*by_table.values())
            for sql in turn
            if sql is not None
        ]
        return [
            [sql for _t, sql in sorted(again, key=lambda row: size.get(row[0], 9))],
            attach + [add for _t, add, _validate in foreign],
            validations,
        ]

    def _indexes_create(self, rounds: list[list[str]]) -> None:
        """Build the dropped indexes again, one per connection at a time."""
        statements = [sql for round_ in rounds for sql in round_]
        if not statements:
            return
        done = [0]
        failed: list[str] = []

        def build(sql: str) -> None:
            try:
                # SET LOCAL: a round on one connection runs on the caller's, which must not
                # keep these settings after the load.
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
                    # Two connections already keep both cores busy.
                    cursor.execute("SET LOCAL max_parallel_maintenance_workers = 0")
                    cursor.execute(sql)
            except Exception as error:
                # Build the others all the same, and say exactly what is missing at the end.
                with self.lock:
                    failed.append(f"{sql} -- {error}".strip())
                return
            with self.lock:
                done[0] += 1
                if self.progress:
                    self.progress("indexes", done[0], len(statements))

        for number, round_ in enumerate(rounds):
            # The second round (keys from their indexes, foreign keys NOT VALID) takes a
            # moment a statement but locks whole tables: one connection, in order, so two
            # never wait on each other and each foreign key finds the key it points at.
            on_connections(items=round_, work=build, workers=1 if number == 1 else self.workers)
        if failed:
            raise LoadgenCheckFailed(
                "these indexes or constraints could not be built again; the database needs "
                "them before use:\n" + "\n".join(failed)
            )

    def _analyze(self) -> None:
        """Statistics for the loaded tables, on as many connections as the load."""

        def analyze(table: str) -> None:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")

        on_connections(items=self._tables(), work=analyze, workers=self.workers)


def load_months(now: datetime.datetime) -> list[tuple[datetime.datetime, int, datetime.datetime]]:
    """(start, month number, lot expiry) of every business month a purchase can fall in."""
    local = now.astimezone(BUSINESS_TZ)
    day = add_months(local.date().replace(day=1), -(HISTORY_DAYS // 28 + 2))
    months = []
    while day <= local.date():
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=BUSINESS_TZ)
        months.append((start, day.month, expiry_for(start)))
        day = add_months(day, 1)
    return months


def points_per_cent(
    months: list[tuple[datetime.datetime, int, datetime.datetime]],
    rules: EarningRules,
    tiers: LoadTiers,
) -> tuple[list[int], list[int]]:
    """For each month and then birthday month or not (index 2·month − 1 + birthday), the
    points per cent of a member at the base level: the multiplier as the posting plan
    decides it (`promotion_multiplier`, the base level's), as the exact fraction its
    `points_earned` rounds down — points = cents × numerator // denominator."""
    tier = tiers.levels[0].earn_multiplier if tiers.levels else Decimal(1)
    numerators, denominators = [], []
    for start, month, _expiry in months:
        for birthday_month in (0, month):
            multiplier = tier * promotion_multiplier(
                promotions=(), birthday_month=birthday_month, occurred_at=start, rules=rules
            )
            numerator, denominator = (rules.base_rate * multiplier).as_integer_ratio()
            numerators.append(max(numerator, 0))
            denominators.append(denominator * 100)
    return numerators, denominators


def _has_rows(cursor, table: str) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)})")  # noqa: S608
    return bool(cursor.fetchone()[0])


def _foreign_keys_drop(cursor, table: str, *, outgoing: bool = False) -> list[tuple[str, str, str]]:
    """Drop the foreign keys that point at `table` (`outgoing`: those of `table` itself);
    returns (referencing table, the statement that adds one again NOT VALID, the one that
    validates it)."""
    quote = connection.ops.quote_name
    cursor.execute(
        "SELECT r.relname, f.conname, pg_get_constraintdef(f.oid) FROM pg_constraint f "
        "JOIN pg_class r ON r.oid = f.conrelid WHERE f.contype = 'f' "
        "AND CASE WHEN %s THEN f.conrelid ELSE f.confrelid END = %s::regclass",
        [outgoing, table],
    )
    again = []
    for referrer, name, definition in cursor.fetchall():
        cursor.execute(f"ALTER TABLE {quote(referrer)} DROP CONSTRAINT {quote(name)}")
        alter = f"ALTER TABLE {quote(referrer)}"
        again.append(
            (
                referrer,
                f"{alter} ADD CONSTRAINT {quote(name)} {definition} NOT VALID",
                f"{alter} VALIDATE CONSTRAINT {quote(name)}",
            )
        )
    return again
