"""A small population whose segment answers are worked out by hand.

Today is Wednesday 15 July 2026 (Asia/Shanghai); the nightly figures are as of 14 July, so
"the last 30 days" are 15 June – 14 July. Points expire at the end of the 12th month after
the month earned (a purchase of 20 July 2025 expires at the end of July 2026).

    a  gold, active, enrolled 2025-01-01: 1 May ¥100 food at S2, 10 July ¥300 apparel at
       S1; F, 上海, born 1990-07-20, tagged vip, likes apparel, SMS consent, a login, home S1.
    b  silver, enrolled online 2026-06-01: 1 Feb ¥500 at S2, ¥200 of it returned 1 July;
       M, 北京, born 1960-03-01, e-mail consent, home S2.
    c  regular, enrolled 2024-01-01: 20 July 2025 ¥80 shoes at S1; no birthday, tagged vip, new.
    n  regular, enrolled 2024-01-01: no purchase; born 2008-07-15 (18 today).
    e  regular, enrolled today 08:00, bought ¥50 at S1 at 09:00: no figures row yet.
    x  gold, closed last night, bought apparel at S1 on 10 July; z frozen, SMS consent:
       neither is ever targeted.

RFM cells and churn bands are set as the nightly jobs would leave them: a champions / high
risk, b at_risk / low risk, c hibernating / medium risk; n has neither.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from analytics.figures import member_figures_write
from analytics.models import MemberFigures
from members.models import Member
from points.services import LineInput, purchase_record, return_record
from tests.analytics.history import at
from tests.factories import StoreFactory, UserFactory
from tiers.models import MemberTier, TierLevel

NOW = at("2026-07-15", 10)
AS_OF = datetime.date(2026, 7, 14)


def _member(*, enrolled: datetime.datetime, **kwargs) -> Member:
    from tests.factories import MemberFactory

    return MemberFactory(enrolled_at=enrolled, **kwargs)


def _buy(who, *, store, day: str, amount: str, receipt: str, category: str = "", hour: int = 12):
    when = at(day, hour)
    lines = (LineInput(sku=f"SKU-{receipt}", amount=Decimal(amount), category=category),)
    return purchase_record(
        member=who,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        lines=lines if category else (),
        now=when,
    )


def _tier(who, code: str) -> None:
    MemberTier.objects.create(
        member=who,
        level=TierLevel.objects.get(code=code),
        achieved_at=NOW - datetime.timedelta(days=30),
        period_start=NOW - datetime.timedelta(days=30),
        valid_until=datetime.date(2027, 6, 30),
    )


def population() -> dict:
    s1 = StoreFactory(code="S1", name="上海一店", city="上海")
    s2 = StoreFactory(code="S2", name="北京一店", city="北京")
    a = _member(
        enrolled=at("2025-01-01", 9),
        gender="F",
        city="上海",
        birthday=datetime.date(1990, 7, 20),
        tags=["vip"],
        preferred_categories=["apparel"],
        consent_sms=True,
        home_store=s1,
        user=UserFactory(),
    )
    b = _member(
        enrolled=at("2026-06-01", 9),
        gender="M",
        city="北京",
        birthday=datetime.date(1960, 3, 1),
        consent_email=True,
        email="b@example.com",
        home_store=s2,
        enrolment_channel=Member.Channel.ONLINE,
    )
    c = _member(enrolled=at("2024-01-01", 9), tags=["vip", "new"])
    n = _member(enrolled=at("2024-01-01", 9), birthday=datetime.date(2008, 7, 15))
    x = _member(enrolled=at("2025-01-01", 9), consent_sms=True)
    z = _member(enrolled=at("2025-01-01", 9), status=Member.Status.FROZEN, consent_sms=True)

    _buy(a, store=s2, day="2026-05-01", amount="100", receipt="A1", category="food")
    _buy(a, store=s1, day="2026-07-10", amount="300", receipt="A2", category="apparel")
    _buy(b, store=s2, day="2026-02-01", amount="500", receipt="B1")
    return_record(
        store=s2,
        receipt_no="R-B1",
        original_receipt_no="B1",
        amount=Decimal("200"),
        occurred_at=at("2026-07-01", 15),
        now=at("2026-07-01", 15),
    )
    _buy(c, store=s1, day="2025-07-20", amount="80", receipt="C1", category="shoes")
    _buy(x, store=s1, day="2026-07-10", amount="300", receipt="X1", category="apparel")
    _tier(a, "gold")
    _tier(b, "silver")
    _tier(x, "gold")

    member_figures_write(as_of=AS_OF, now=at("2026-07-15", 2))
    for who, cell, band in (
        (a, "champions", "high"),
        (b, "at_risk", "low"),
        (c, "hibernating", "medium"),
    ):
        MemberFigures.objects.filter(member=who).update(rfm_cell=cell, churn_band=band)
    x.status = Member.Status.CLOSED
    x.closed_at = at("2026-07-14", 20)
    x.save()

    # Enrolled after the nightly run: no figures row yet.
    e = _member(enrolled=at("2026-07-15", 8))
    _buy(e, store=s1, day="2026-07-15", amount="50", receipt="E1", hour=9)
    return {"a": a, "b": b, "c": c, "n": n, "e": e, "x": x, "z": z, "s1": s1, "s2": s2}
