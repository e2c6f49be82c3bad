"""A small campaign built by hand, whose results are worked out in the tests' comments.

Launched 2026-03-02 10:00 (Beijing), 14-day window [L, L + 14 d); bonus 100 points.
Stores A and B (home stores). Treatment t1–t6, holdout c1–c4:

    member home  in the window                           orders  revenue
    t1     A     ¥100 at L+1d, ¥50 at L+3d                  2      150
    t2     A     ¥200 at L+2d, returned ¥80 at L+5d         1      120
    t3     B     returned ¥100 at L+1d of a ¥300 at L−1d    0     −100
    t4     B     (¥90 at L+15d: after the window)           0        0
    t5     A     —                                          0        0
    t6     B     —                                          0        0
    c1     A     ¥60 at L+4d                                1       60
    c2     B     ¥40 at L+13d 23:00 (¥500 at L+14d: out)    1       40
    c3     A     —                                          0        0
    c4     B     —                                          0        0

Cost: 100 points posted to each treated member (600) under `campaign:<id>:member:<id>`;
coupons of a ¥20-off reward to t1 (used) and t2 (not used); SMS sent to t1–t4 (one more to
t5 failed), e-mails sent to t1 and t2, an in-portal notice to t6. Around it, things that
must not count: another campaign's posting and a used campaign coupon of nobody's audience.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction

from campaigns.models import Campaign, CampaignMember, OutboxMessage
from members.models import Member, Store
from points.ledger import account_lock, points_credit
from points.models import Account, Coupon, LedgerTransaction, Reward
from points.services import purchase_record, return_record
from tests.factories import MemberFactory, StoreFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAUNCH = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
DAY = datetime.timedelta(days=1)


@dataclass
class World:
    campaign: Campaign
    store_a: Store
    store_b: Store
    members: dict[str, Member]


def _buy(member: Member, store: Store, receipt: str, at: datetime.datetime, amount: str):
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=at,
        amount=Decimal(amount),
        now=at + datetime.timedelta(minutes=1),
    )


def _return(store: Store, receipt: str, original: str, at: datetime.datetime, amount: str):
    return_record(
        store=store,
        receipt_no=receipt,
        original_receipt_no=original,
        amount=Decimal(amount),
        occurred_at=at,
        now=at + datetime.timedelta(minutes=1),
    )


def _credit(member: Member, key: str, points: int) -> LedgerTransaction:
    with transaction.atomic():
        return points_credit(
            account=account_lock(member=member),
            points=points,
            kind=LedgerTransaction.Kind.EARN,
            counter_kind=Account.Kind.ISSUANCE,
            key=key,
            request_fingerprint=key,
            source=LedgerTransaction.Source.CAMPAIGN,
            occurred_at=LAUNCH,
            now=LAUNCH,
        )


def _coupon(member: Member, reward: Reward, code: str, *, used: bool) -> Coupon:
    return Coupon.objects.create(
        code=code,
        member=member,
        reward=reward,
        source=Coupon.Source.CAMPAIGN,
        status=Coupon.Status.USED if used else Coupon.Status.ISSUED,
        issued_at=LAUNCH,
        valid_until=LAUNCH + 30 * DAY,
        used_at=LAUNCH + 2 * DAY if used else None,
    )


def _message(campaign: Campaign, member: Member, channel: str, status: str) -> None:
    OutboxMessage.objects.create(
        campaign=campaign,
        member=member,
        channel=channel,
        purpose=OutboxMessage.Purpose.MARKETING,
        status=status,
        body="双倍积分 拒收请回复R",
        sent_at=LAUNCH if status == OutboxMessage.Status.SENT else None,
    )


def build_world(**campaign_fields) -> World:
    a = StoreFactory(code="SH001", name="上海南京路店")
    b = StoreFactory(code="BJ001", name="北京王府井店")
    homes = {"t1": a, "t2": a, "t3": b, "t4": b, "t5": a, "t6": b}
    homes |= {"c1": a, "c2": b, "c3": a, "c4": b}
    members = {name: MemberFactory(home_store=home) for name, home in homes.items()}
    fields = {
        "name": "三月双倍积分",
        "kind": Campaign.Kind.BONUS,
        "bonus_points": 100,
        "status": Campaign.Status.RUNNING,
        "launched_at": LAUNCH,
        "holdout_percent": Decimal(10),
        "revenue_cap_percentile": Decimal(100),
        "salt": "results-world",
    } | campaign_fields
    campaign = Campaign.objects.create(**fields)
    other = Campaign.objects.create(
        name="另一个活动", kind=Campaign.Kind.BONUS, bonus_points=999, salt="other"
    )
    for name, member in members.items():
        treated = name.startswith("t")
        CampaignMember.objects.create(
            campaign=campaign,
            member=member,
            arm=CampaignMember.Arm.TREATMENT if treated else CampaignMember.Arm.CONTROL,
            draw=0.5 if treated else 0.05,
        )
    m = members
    _buy(m["t1"], a, "A-1", LAUNCH + DAY, "100")
    _buy(m["t1"], a, "A-2", LAUNCH + 3 * DAY, "50")
    _buy(m["t2"], a, "A-3", LAUNCH + 2 * DAY, "200")
    _return(a, "A-R3", "A-3", LAUNCH + 5 * DAY, "80")
    _buy(m["t3"], b, "B-1", LAUNCH - DAY, "300")
    _return(b, "B-R1", "B-1", LAUNCH + DAY, "100")
    _buy(m["t4"], b, "B-2", LAUNCH + 15 * DAY, "90")
    _buy(m["c1"], a, "A-4", LAUNCH + 4 * DAY, "60")
    _buy(m["c2"], b, "B-3", LAUNCH + 13 * DAY + datetime.timedelta(hours=13), "40")
    _buy(m["c2"], b, "B-4", LAUNCH + 14 * DAY, "500")

    for name in ("t1", "t2", "t3", "t4", "t5", "t6"):
        _credit(m[name], f"campaign:{campaign.pk}:member:{m[name].pk}", 100)
    _credit(m["t1"], f"campaign:{other.pk}:member:{m['t1'].pk}", 999)

    reward = Reward.objects.create(
        code="CPN20",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="20元券",
        name_en="¥20 off",
        points_price=2000,
        amount_off=Decimal(20),
    )
    for name, code, used in (("t1", "CPNUSED1", True), ("t2", "CPNOPEN1", False)):
        CampaignMember.objects.filter(campaign=campaign, member=m[name]).update(
            coupon=_coupon(m[name], reward, code, used=used)
        )
    _coupon(m["c1"], reward, "CPNELSE1", used=True)

    sent, failed = OutboxMessage.Status.SENT, OutboxMessage.Status.FAILED
    sms, email, portal = (
        OutboxMessage.Channel.SMS,
        OutboxMessage.Channel.EMAIL,
        OutboxMessage.Channel.PORTAL,
    )
    for name in ("t1", "t2", "t3", "t4"):
        _message(campaign, m[name], sms, sent)
    _message(campaign, m["t5"], sms, failed)
    _message(campaign, m["t1"], email, sent)
    _message(campaign, m["t2"], email, sent)
    _message(campaign, m["t6"], portal, sent)
    return World(campaign=campaign, store_a=a, store_b=b, members=members)
