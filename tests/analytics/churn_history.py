"""A synthetic shopping history with a known churn signal, written with bulk_create.

Every member shops at a rhythm of their own (a usual gap between 7 and 60 days). Steady
members keep it; some of them stop one day with no warning. Fading members, from a moment
of their own on, wait half as long again after each purchase, until they stop: their gaps
lengthen before they go. Recency alone cannot tell a weekly shopper who has been away five
weeks (leaving) from a bimonthly one (on time), nor a fader who bought last week (leaving)
from a steady one; a model that reads each member's rhythm and trend can. Seeded: the same
history every run.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from members.models import Member, Store
from points.ledger import BUSINESS_TZ
from points.models import Purchase, Return


def at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=BUSINESS_TZ)


@dataclass
class History:
    store: Store
    members: list[Member]
    start: datetime.date
    end: datetime.date


_serial = iter(range(10**6))


def member_make(*, enrolled: datetime.date, store: Store, **fields) -> Member:
    n = next(_serial)
    member = Member(
        member_no=f"8{n + 30_000_000_000:011d}",
        phone=f"+86137{n:08d}",
        name=f"会员{n}",
        referral_code=f"C{n:09d}",
        enrolment_channel=Member.Channel.STORE,
        enrolment_store=store,
        enrolled_at=at(enrolled, 9),
        **fields,
    )
    member.save()
    return member


def purchase_make(
    *, member: Member, store: Store, when: datetime.datetime, amount: str
) -> Purchase:
    n = next(_serial)
    return Purchase.objects.create(
        member=member,
        store=store,
        receipt_no=f"R{n}",
        occurred_at=when,
        amount=Decimal(amount),
        eligible_amount=Decimal(amount),
        fingerprint="t",
        history=True,
    )


def return_make(*, purchase: Purchase, when: datetime.datetime, amount: str) -> Return:
    n = next(_serial)
    return Return.objects.create(
        purchase=purchase,
        store=purchase.store,
        receipt_no=f"X{n}",
        amount=Decimal(amount),
        occurred_at=when,
        fingerprint="t",
    )


def history_build(
    *,
    members: int = 500,
    start: datetime.date = datetime.date(2024, 1, 1),
    end: datetime.date = datetime.date(2026, 6, 30),
    seed: int = 7,
) -> History:
    """`members` members enrolled over the first year, shopping until `end`."""
    rng = np.random.default_rng(seed)
    store, _ = Store.objects.get_or_create(code="CH001", defaults={"name": "流失测试店"})
    base = next(_serial)
    days = (end - start).days
    people = [
        Member(
            member_no=f"8{base * 10_000 + i + 20_000_000_000:011d}",
            phone=f"+86136{base * 10_000 + i:08d}",
            name=f"会员{i}",
            referral_code=f"H{base:04d}{i:05d}",
            enrolment_channel=Member.Channel.STORE,
            enrolment_store=store,
            enrolled_at=at(start + datetime.timedelta(days=int(rng.integers(0, 365))), 9),
        )
        for i in range(members)
    ]
    Member.objects.bulk_create(people)
    people = list(Member.objects.filter(enrolment_store=store).order_by("id"))
    purchases = []
    for person in people:
        enrolled = person.enrolled_at.astimezone(BUSINESS_TZ).date()
        gap = float(rng.uniform(7, 60))
        kind = rng.random()
        fades = kind < 0.4
        # Some stop with no warning at all: nobody can see those coming.
        quits_on = (
            enrolled + datetime.timedelta(days=int(rng.integers(60, days))) if kind > 0.8 else end
        )
        fade_from = enrolled + datetime.timedelta(days=int(rng.integers(60, days)))
        day = enrolled + datetime.timedelta(days=int(rng.integers(0, 10)))
        while day <= min(end, quits_on):
            purchases.append(
                Purchase(
                    member=person,
                    store=store,
                    receipt_no=f"H{base}-{len(purchases)}",
                    occurred_at=at(day, int(rng.integers(9, 22))),
                    amount=Decimal(int(rng.integers(20, 400))),
                    eligible_amount=Decimal(0),
                    fingerprint="t",
                    history=True,
                )
            )
            if fades and day >= fade_from:
                gap *= 1.5
                if gap > 400:
                    break
            day += datetime.timedelta(days=max(1, int(rng.normal(gap, gap * 0.3))))
    Purchase.objects.bulk_create(purchases, batch_size=2000)
    return History(store=store, members=people, start=start, end=end)
