"""A realistic synthetic data set, built fast: `manage.py loadgen --members N --purchases M`.

Stores, members (valid member numbers, +86 mobile numbers, Chinese names, birthdays), their
points accounts, and purchases over the last 24 months, some with a category line. The
purchases go through the same set-based path as the CSV import
(`imports.purchases_post_batch`): earning by the policy (base rate, category rates, the
multiplier of `earning.multiplier_for`), one ledger transaction, two entries and a lot each,
debt first — so the nightly reconcile passes on the result. On PostgreSQL everything goes
in with COPY.

Lots earned more than 12 months ago are past their expiry and still open, as they would be
before the nightly expiry job has run; the next `run_nightly` expires them.
"""

from __future__ import annotations

import datetime
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.benchmarks import GIVEN_FEMALE, GIVEN_MALE, MOBILE_PREFIXES, SURNAMES
from members.imports import _member_no_draw, _members_matching, _referral_code_draw
from members.models import Member, Store
from members.services import store_ensure

from .imports import EarningCalculator, PreparedPurchase, purchases_post_batch
from .ledger_bulk import CopyLayout, copy_escape, copy_write, ids_draw, use_copy
from .models import Account, Purchase
from .services import LineInput, _purchase_fingerprint

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
CATEGORIES = ("apparel", "shoes", "cosmetics", "snacks", "home", "electronics", "gift_card")
CHANNELS = (("store", 0.7), ("online", 0.12), ("app", 0.1), ("mini_program", 0.08))
MEMBER_BATCH = 20_000
PURCHASE_BATCH = 20_000


class LoadgenRefused(Exception):
    """The database already holds members and --append was not given."""


@dataclass
class LoadgenResult:
    members: int
    purchases: int
    points: int
    seconds: float


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


def _phone_numbers(rng: random.Random, count: int) -> list[str]:
    if count == 0:
        return []
    space = len(MOBILE_PREFIXES) * 10**8
    # Consecutive numbers from a random start: unique, and cheap to draw by the million.
    start = rng.randrange(space - count)
    step = max(1, (space - start) // (count * 3))
    out = []
    for index in range(count):
        number = start + index * step
        out.append("+86" + MOBILE_PREFIXES[number // 10**8] + f"{number % 10**8:08d}")
    return out


def _name(rng: random.Random) -> tuple[str, str]:
    female = rng.random() < 0.55
    given = GIVEN_FEMALE if female else GIVEN_MALE
    length = 1 if rng.random() < 0.3 else 2
    return rng.choice(SURNAMES) + "".join(rng.choice(given) for _ in range(length)), (
        "F" if female else "M"
    )


_MEMBER_OWN = (
    "member_no",
    "referral_code",
    "phone",
    "name",
    "gender",
    "birthday",
    "city",
    "home_store_id",
    "enrolment_channel",
    "status",
    "enrolled_at",
)


def _members_create(
    *, count: int, rng: random.Random, stores: list[Store], now, progress: Progress | None
) -> list[tuple[Any, ...]]:
    """Create `count` members and their accounts; returns (id, member_no, birthday, status)."""
    refs: list[tuple[Any, ...]] = []
    phones = _phone_numbers(rng, count)
    layout = CopyLayout(Member, _MEMBER_OWN, with_id=True) if use_copy() else None
    account_layout = (
        CopyLayout(
            Account, ("kind", "member_id", "balance", "debt", "lifetime_earned"), with_id=False
        )
        if use_copy()
        else None
    )
    done = 0
    for offset in range(0, count, MEMBER_BATCH):
        size = min(MEMBER_BATCH, count - offset)
        batch_phones = phones[offset : offset + size]
        numbers: set[str] = set()
        codes: set[str] = set()
        while len(numbers) < size:
            numbers.add(_member_no_draw())
        while len(codes) < size:
            codes.add(_referral_code_draw())
        taken = _members_matching(
            columns=("member_no", "referral_code", "phone"),
            any_of={"member_no": numbers, "referral_code": codes, "phone": set(batch_phones)},
        )
        taken_phones = {phone for _no, _code, phone in taken}
        numbers -= {no for no, _code, _phone in taken}
        codes -= {code for _no, code, _phone in taken}
        rows = []
        for phone, member_no, code in zip(
            [p for p in batch_phones if p not in taken_phones], numbers, codes, strict=False
        ):
            name, gender = _name(rng)
            store = rng.choice(stores)
            birthday = (
                datetime.date(rng.randrange(1950, 2006), rng.randrange(1, 13), rng.randrange(1, 29))
                if rng.random() < 0.85
                else None
            )
            # Enrolled two to four years ago, so every purchase comes after the enrolment.
            enrolled = now - datetime.timedelta(
                days=730 + rng.randrange(730), seconds=rng.randrange(86400)
            )
            rows.append((member_no, code, phone, name, gender, birthday, store, enrolled))
        with transaction.atomic():
            if use_copy():
                ids = ids_draw(Member, len(rows))
                copy_write(
                    layout.sql(),
                    (
                        f"{pk}\t{no}\t{code}\t{phone}\t{copy_escape(name)}\t{gender}\t"
                        f"{birthday.isoformat() if birthday else chr(92) + 'N'}\t{store.city}\t"
                        f"{store.pk}\t{Member.Channel.STORE}\t{Member.Status.ACTIVE}\t"
                        f"{enrolled.isoformat()}{layout.tail}\n"
                        for pk, (no, code, phone, name, gender, birthday, store, enrolled) in zip(
                            ids, rows, strict=True
                        )
                    ),
                )
                copy_write(
                    account_layout.sql(),
                    (f"{Account.Kind.MEMBER}\t{pk}\t0\t0\t0{account_layout.tail}\n" for pk in ids),
                )
            else:
                members = [
                    Member(
                        member_no=no,
                        referral_code=code,
                        phone=phone,
                        name=name,
                        gender=gender,
                        birthday=birthday,
                        city=store.city,
                        home_store=store,
                        enrolment_channel=Member.Channel.STORE,
                        enrolled_at=enrolled,
                    )
                    for no, code, phone, name, gender, birthday, store, enrolled in rows
                ]
                Member.objects.bulk_create(members, batch_size=500)
                ids = [member.pk for member in members]
                Account.objects.bulk_create(
                    [Account(kind=Account.Kind.MEMBER, member_id=pk) for pk in ids], batch_size=500
                )
        refs.extend(
            (pk, row[0], row[5], Member.Status.ACTIVE) for pk, row in zip(ids, rows, strict=True)
        )
        done += size
        if progress:
            progress("members", done, count)
    return refs


def loadgen(
    *,
    members: int,
    purchases: int,
    append: bool = False,
    seed: int | None = None,
    progress: Progress | None = None,
    real_fingerprints: bool = True,
) -> LoadgenResult:
    started = time.monotonic()
    if not append and Member.objects.exists():
        raise LoadgenRefused("the database already has members; use --append to add more")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible from a seed
    now = timezone.now()
    stores = [store_ensure(code=code, name=name, city=city) for code, name, city in STORES]
    refs = _members_create(count=members, rng=rng, stores=stores, now=now, progress=progress)
    if not refs and purchases:
        refs = [
            (pk, no, birthday, status)
            for pk, no, birthday, status in Member.objects.filter(
                status=Member.Status.ACTIVE
            ).values_list("id", "member_no", "birthday", "status")[:1_000_000]
        ]
    points = 0
    if purchases and refs:
        points = _purchases_create(
            count=purchases,
            refs=refs,
            rng=rng,
            stores=stores,
            now=now,
            progress=progress,
            real_fingerprints=real_fingerprints,
        )
    return LoadgenResult(
        members=len(refs) if members else 0,
        purchases=purchases if refs else 0,
        points=points,
        seconds=time.monotonic() - started,
    )


def _purchases_create(
    *,
    count: int,
    refs: list[tuple[Any, ...]],
    rng: random.Random,
    stores: list[Store],
    now: datetime.datetime,
    progress: Progress | None,
    real_fingerprints: bool,
) -> int:
    calculator = EarningCalculator()
    token = os.urandom(3).hex().upper()
    span = 730 * 86400
    channels = [name for name, _weight in CHANNELS]
    weights = [weight for _name, weight in CHANNELS]
    members_count = len(refs)
    points = 0
    done = 0
    for offset in range(0, count, PURCHASE_BATCH):
        size = min(PURCHASE_BATCH, count - offset)
        # A few members buy a lot, most buy now and then: skewed towards low indexes.
        picks = [int(members_count * rng.random() ** 1.6) for _ in range(size)]
        seconds = [rng.randrange(span) for _ in range(size)]
        amounts = [max(1.0, rng.lognormvariate(4.7, 0.9)) for _ in range(size)]
        channel_picks = rng.choices(channels, weights, k=size)
        batch = []
        for index in range(size):
            ref = refs[picks[index]]
            store = stores[(picks[index] + index % 3) % len(stores)]
            occurred = (now - datetime.timedelta(seconds=seconds[index])).replace(microsecond=0)
            amount = Decimal(f"{amounts[index]:.2f}") if amounts[index] < 1e7 else Decimal("99.00")
            category = rng.choice(CATEGORIES) if rng.random() < 0.3 else ""
            sku = f"SKU{rng.randrange(10000):05d}" if category else ""
            receipt = f"L{token}{offset + index:09d}"
            channel = channel_picks[index]
            if real_fingerprints:
                fp = _purchase_fingerprint(
                    member=_Ref(member_no=ref[1]),
                    store=_Ref(code=store.code),
                    receipt_no=receipt,
                    occurred_at=occurred,
                    amount=amount,
                    channel=channel,
                    lines=[LineInput(sku=sku, category=category, amount=amount)]
                    if category
                    else [],
                    points_to_use=0,
                )
            else:
                fp = "loadgen"
            eligible = calculator.eligible(amount, category)
            multiplier = calculator.multiplier(
                member_ref=ref,
                store_code=store.code,
                channel=channel,
                occurred_at=occurred,
                category=category,
            )
            batch.append(
                PreparedPurchase(
                    member_id=ref[0],
                    store_id=store.pk,
                    store_code=store.code,
                    receipt_no=receipt,
                    occurred_at=occurred,
                    amount=amount,
                    channel=channel,
                    category=category,
                    sku=sku,
                    fingerprint=fp,
                    eligible=eligible,
                    points=calculator.points(eligible, multiplier),
                )
            )
        with transaction.atomic():
            points += purchases_post_batch(
                purchases=batch, calculator=calculator, actor_id=None, now=now
            )
        done += size
        if progress:
            progress("purchases", done, count)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Purchase, Account):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return points


@dataclass(frozen=True)
class _Ref:
    member_no: str = ""
    code: str = ""
