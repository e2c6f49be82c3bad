"""`manage.py seed_demo`: the demo's stores, members, logins, rewards and purchases.

Safe to run again. Everything is drawn from a fixed random seed, so every run wants the same
stores, the same 200 shoppers and the same logins; whatever already exists is left alone, so
a second run writes nothing. All writes go through the services, as a cashier's would.

It lives in devtools, which may use every app and which no app uses: the product apps hold
only the product, and Django runs the first app's command of a name, so there is one.
Points part: the earning policy, category rates, a small rewards catalogue (with `CNY10`),
and about 14 months of purchases (and a few returns) for the first shoppers and the
member login, whose history is chosen so the portal shows enough points for `CNY10` and
the "expiring soon" banner.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from campaigns.launch import campaign_launch, campaign_send
from campaigns.messages import outbox_dispatch
from campaigns.models import Campaign, Segment
from campaigns.segments import segment_create
from campaigns.services import campaign_create, campaign_schedule
from members import roles
from members.models import Member, Store, User
from members.numbers import phone_normalize
from members.services import (
    Consents,
    member_enroll,
    store_ensure,
    user_create,
    user_stores_set,
)
from points.catalogue import (
    category_ensure,
    category_rate_ensure,
    earning_policy_ensure,
    reward_ensure,
)
from points.ledger import BUSINESS_TZ
from points.models import Purchase, Return, Reward
from points.selectors import purchase_list
from points.services import LineInput, points_expire, purchase_record, return_record

DEMO_PASSWORD = "demo-pass-123"
SEED = 20260101

STORES = (
    ("SH001", "上海南京路店", "上海", "上海市黄浦区南京东路 300 号"),
    ("BJ001", "北京王府井店", "北京", "北京市东城区王府井大街 88 号"),
    ("GZ001", "广州天河店", "广州", "广州市天河区天河路 208 号"),
)

# The demo's segments (campaigns/segments/ rules) and its launched campaign.
DEMO_SEGMENTS = (
    (
        "上海会员（短信可达）",
        {
            "version": 1,
            "rule": {
                "group": "and",
                "rules": [
                    {"field": "city", "op": "eq", "value": "上海"},
                    {"field": "consent_sms", "op": "eq", "value": True},
                ],
            },
        },
    ),
    (
        "金卡及以上 · 流失风险高",
        {
            "version": 1,
            "rule": {
                "group": "and",
                "rules": [
                    {"field": "tier", "op": "ge", "value": "gold"},
                    {"field": "churn_band", "op": "in", "value": ["high", "medium"]},
                ],
            },
        },
    ),
)
DEMO_CAMPAIGN = "会员回馈：加赠 200 积分"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str | None
    superuser: bool = False
    # Store staff and managers act for these stores only (members.selectors.staff_store_ids).
    stores: tuple[str, ...] = ()


MEMBER_LOGIN = DemoLogin("member@example.com", "李晓梅", None)
MEMBER_LOGIN_PHONE = "13800000001"
STAFF_LOGINS = (
    DemoLogin("staff@example.com", "王芳", roles.STORE_STAFF, stores=("SH001",)),
    DemoLogin("manager@example.com", "张伟", roles.STORE_MANAGER, stores=("SH001",)),
    DemoLogin("marketer@example.com", "陈静", roles.MARKETER),
    DemoLogin("admin@example.com", "刘洋", roles.ADMINISTRATOR, superuser=True),
    DemoLogin("auditor@example.com", "赵敏", roles.AUDITOR),
)

# The most common surnames, roughly in order of frequency, so the first ones come up most.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛")
FEMALE_GIVEN = "芳娜敏静丽艳婷雪慧玲颖琳洁倩萍红霞燕佳欣怡悦诗雨晨梦思涵秀兰英华月莉媛瑶琪蕾薇晶"
MALE_GIVEN = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳峰建国志文博睿轩晨"
# Mobile prefixes of China Mobile, China Unicom and China Telecom.
PHONE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "176"),
    *(f"18{d}" for d in range(10)),
    *("177", "178", "198", "199"),
)


@dataclass(frozen=True)
class DemoShopper:
    phone: str
    name: str
    gender: str
    birthday: datetime.date
    store_code: str
    consent_sms: bool


def shopper_name(rng: random.Random, gender: str) -> str:
    # Weighting towards the front of the list imitates how common the top surnames are.
    surname = (
        rng.choice(COMPOUND_SURNAMES)
        if rng.random() < 0.01
        else SURNAMES[int(len(SURNAMES) * rng.random() ** 2)]
    )
    pool = FEMALE_GIVEN if gender == Member.Gender.FEMALE else MALE_GIVEN
    length = 1 if rng.random() < 0.35 else 2
    return surname + "".join(rng.choice(pool) for _ in range(length))


def demo_shoppers(count: int, *, today: datetime.date) -> list[DemoShopper]:
    """The same `count` shoppers on every call (the first n of a longer list stay the same)."""
    rng = random.Random(SEED)  # noqa: S311 - demo data must be repeatable, not secret
    taken = {phone_normalize(MEMBER_LOGIN_PHONE)}
    shoppers = []
    while len(shoppers) < count:
        phone = phone_normalize(rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}")
        gender = Member.Gender.FEMALE if rng.random() < 0.6 else Member.Gender.MALE
        age_days = rng.randrange(18 * 365, 70 * 365)
        shopper = DemoShopper(
            phone=phone,
            name=shopper_name(rng, gender),
            gender=gender,
            birthday=today - datetime.timedelta(days=age_days),
            store_code=rng.choices([code for code, *_ in STORES], weights=[5, 3, 2])[0],
            consent_sms=rng.random() < 0.6,
        )
        if phone in taken:
            continue
        taken.add(phone)
        shoppers.append(shopper)
    return shoppers


# --- Points: rates, rewards, purchase history ---------------------------------------------

# The catalogue's categories: (code, Chinese name, English name).
CATEGORIES = (
    ("apparel", "服装", "Apparel"),
    ("cosmetics", "美妆", "Cosmetics"),
    ("food", "食品", "Food"),
    ("gift_card", "礼品卡", "Gift cards"),
    ("home", "家居", "Home"),
    ("tobacco", "烟草", "Tobacco"),
)
CATEGORY_RATES = (
    ("gift_card", Decimal(0), "Gift cards are money: no points"),
    ("tobacco", Decimal(0), "No points on tobacco"),
    ("cosmetics", Decimal(2), "Double points on cosmetics"),
)

REWARDS = (
    {
        "code": "CNY10",
        "kind": Reward.Kind.AMOUNT_OFF,
        "name_zh": "10元代金券",
        "name_en": "¥10 off",
        "description_zh": "结账时抵扣10元，任意消费可用。",
        "description_en": "¥10 off any purchase at the till.",
        "points_price": 1000,
        "amount_off": Decimal(10),
    },
    {
        "code": "PCT15",
        "kind": Reward.Kind.PERCENT_OFF,
        "name_zh": "85折优惠券",
        "name_en": "15% off",
        "description_zh": "单笔消费享85折，每位会员限兑一张。",
        "description_en": "15% off one purchase; one per member.",
        "points_price": 2000,
        "percent_off": 15,
        "per_member_limit": 1,
        "tier_prices": {3: 1600},
    },
    {
        "code": "SAVE30",
        "kind": Reward.Kind.SPEND_SAVE,
        "name_zh": "满199减30",
        "name_en": "¥30 off ¥199",
        "description_zh": "单笔满199元立减30元。",
        "description_en": "¥30 off when you spend ¥199 or more.",
        "points_price": 2500,
        "amount_off": Decimal(30),
        "min_spend": Decimal(199),
    },
    {
        "code": "TOTE",
        "kind": Reward.Kind.GIFT,
        "name_zh": "环保购物袋",
        "name_en": "Canvas tote bag",
        "description_zh": "到店领取，数量有限，领完即止。",
        "description_en": "Pick it up in store while stocks last.",
        "points_price": 800,
        "stock": 50,
    },
    {
        "code": "GALA",
        "kind": Reward.Kind.TICKET,
        "name_zh": "金卡会员新品品鉴会门票",
        "name_en": "Gold members' preview evening ticket",
        "description_zh": "金卡及以上会员专享，一人一票。",
        "description_en": "For Gold members and above; one ticket each.",
        "points_price": 5000,
        "stock": 30,
        "per_member_limit": 1,
        "min_tier_rank": 3,
    },
    {
        "code": "GIVE5",
        "kind": Reward.Kind.DONATION,
        "name_zh": "捐赠5元给乡村图书馆",
        "name_en": "Give ¥5 to rural libraries",
        "description_zh": "我们以您的名义向乡村图书馆项目捐赠5元。",
        "description_en": "We give ¥5 in your name to a rural library project.",
        "points_price": 500,
    },
)

# (category, SKU prefix, typical line amount in ¥, weight)
DEPARTMENTS = (
    ("apparel", "APP", 260, 5),
    ("cosmetics", "COS", 180, 3),
    ("food", "FD", 60, 6),
    ("home", "HM", 120, 2),
    ("gift_card", "GC", 200, 1),
    ("tobacco", "TB", 45, 1),
)
# Shoppers with a purchase history: enough for realistic pages, few enough to stay fast.
SHOPPERS_WITH_PURCHASES = 60
HISTORY_DAYS = 425  # about 14 months

# The member login's history, as (months ago, day of month, [(category, ¥)], ¥ returned).
# 13 months ago: expired by now. 12 months ago: expires at the end of this month, so the
# portal shows the expiring-soon banner. The rest is well over the 1,000 points of CNY10.
MEMBER_LOGIN_HISTORY = (
    (13, 8, [("apparel", "420.00")], None),
    (12, 12, [("cosmetics", "100.00"), ("food", "256.80")], None),
    (9, 3, [("apparel", "268.00")], None),
    (6, 18, [("apparel", "699.00"), ("home", "200.00")], "200.00"),
    (4, 22, [("food", "108.50"), ("gift_card", "50.00")], None),
    (2, 5, [("cosmetics", "120.00"), ("apparel", "400.00")], None),
    (1, 14, [("food", "96.00")], None),
)


@dataclass(frozen=True)
class DemoPurchase:
    store_code: str
    occurred_at: datetime.datetime
    lines: tuple[LineInput, ...]
    returned: Decimal | None = None

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def _months_ago(now: datetime.datetime, months: int, day: int) -> datetime.datetime:
    local = now.astimezone(BUSINESS_TZ)
    year, month = divmod(local.year * 12 + local.month - 1 - months, 12)
    return datetime.datetime(year, month + 1, day, 11, 30, tzinfo=BUSINESS_TZ)


def member_login_purchases(*, now: datetime.datetime) -> list[DemoPurchase]:
    purchases = []
    for n, (months, day, lines, returned) in enumerate(MEMBER_LOGIN_HISTORY):
        purchases.append(
            DemoPurchase(
                store_code="SH001",
                occurred_at=_months_ago(now, months, day),
                lines=tuple(
                    LineInput(
                        sku=f"{category[:3].upper()}{n:03d}", category=category, amount=Decimal(a)
                    )
                    for category, a in lines
                ),
                returned=Decimal(returned) if returned else None,
            )
        )
    return purchases


def shopper_purchases(
    rng: random.Random, *, home_store: str, now: datetime.datetime
) -> list[DemoPurchase]:
    """0–8 purchases over the last ~14 months, mostly at the home store; a few returned."""
    count = min(int(rng.expovariate(1 / 3)), 8)
    purchases = []
    for _ in range(count):
        occurred_at = (now - datetime.timedelta(days=rng.randrange(1, HISTORY_DAYS))).replace(
            minute=rng.randrange(60), second=0, microsecond=0
        )
        lines = []
        for _line in range(rng.choice((1, 1, 2, 2, 3))):
            category, prefix, typical, _weight = rng.choices(
                DEPARTMENTS, weights=[d[3] for d in DEPARTMENTS]
            )[0]
            amount = Decimal(max(5, round(rng.lognormvariate(0, 0.6) * typical, 1))).quantize(
                Decimal("0.01")
            )
            lines.append(
                LineInput(
                    sku=f"{prefix}{rng.randrange(1000, 9999)}", category=category, amount=amount
                )
            )
        store = home_store if rng.random() < 0.85 else rng.choice([c for c, *_ in STORES])
        total = sum((line.amount for line in lines), Decimal(0))
        returned = (total / 2).quantize(Decimal("0.01")) if rng.random() < 0.05 else None
        purchases.append(DemoPurchase(store, occurred_at, tuple(lines), returned))
    return sorted(purchases, key=lambda p: p.occurred_at)


class Command(BaseCommand):
    help = "Load the demo stores, members and logins (password demo-pass-123). Safe to re-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--members", type=int, default=200, help="How many demo shoppers (default 200)."
        )

    def handle(self, *args, **options) -> None:
        stores_before = Store.objects.count()
        stores = {
            code: store_ensure(code=code, name=name, city=city, address=address)
            for code, name, city, address in STORES
        }

        new_logins = 0
        for login in STAFF_LOGINS:
            login_stores = [stores[code] for code in login.stores]
            existing_login = User.objects.filter(email=login.email).first()
            if existing_login is None:
                user_create(
                    email=login.email,
                    password=DEMO_PASSWORD,
                    name=login.name,
                    roles=[login.role] if login.role else [],
                    stores=login_stores,
                    is_superuser=login.superuser,
                )
                new_logins += 1
            elif login_stores and not existing_login.stores.exists():
                # A demo loaded before logins had stores: give them theirs once.
                user_stores_set(user=existing_login, stores=login_stores)
        if self._member_login(stores["SH001"]):
            new_logins += 1

        shoppers = demo_shoppers(options["members"], today=timezone.localdate())
        existing = set(
            Member.objects.filter(phone__in=[s.phone for s in shoppers]).values_list(
                "phone", flat=True
            )
        )
        new_members = 0
        for shopper in shoppers:
            if shopper.phone in existing:
                continue
            store = stores[shopper.store_code]
            member_enroll(
                phone=shopper.phone,
                # Before the history of purchases below, spread over four months (a
                # generator of its own, so the shoppers stay the same as before).
                enrolled_at=timezone.now()
                - datetime.timedelta(
                    days=HISTORY_DAYS + random.Random(shopper.phone).randrange(120)  # noqa: S311
                ),
                name=shopper.name,
                channel=Member.Channel.STORE,
                store=store,
                gender=shopper.gender,
                birthday=shopper.birthday,
                city=store.city,
                consents=Consents(
                    privacy_version=settings.PRIVACY_NOTICE_VERSION,
                    sms=shopper.consent_sms,
                    email=False,
                ),
            )
            new_members += 1

        self.stdout.write(
            f"Stores: {Store.objects.count()} ({Store.objects.count() - stores_before} new). "
            f"Demo shoppers: {len(shoppers)} ({new_members} new). "
            f"Logins: {len(STAFF_LOGINS) + 1} ({new_logins} new), "
            f"password {DEMO_PASSWORD}."
        )
        self._points(stores=stores, shoppers=shoppers)
        self._campaigns()

    def _points(self, *, stores: dict[str, Store], shoppers: list[DemoShopper]) -> None:
        earning_policy_ensure()
        for code, name_zh, name_en in CATEGORIES:
            category_ensure(code=code, name_zh=name_zh, name_en=name_en)
        for category, rate, note in CATEGORY_RATES:
            category_rate_ensure(category=category, rate=rate, note=note)
        new_rewards = sum(reward_ensure(**reward)[1] for reward in REWARDS)

        now = timezone.now()
        histories: list[tuple[Member, list[DemoPurchase]]] = []
        login_member = Member.objects.filter(user__email=MEMBER_LOGIN.email).first()
        if login_member is not None:
            histories.append((login_member, member_login_purchases(now=now)))
        rng = random.Random(SEED + 1)  # noqa: S311 - demo data must be repeatable, not secret
        members = Member.objects.in_bulk(
            [s.phone for s in shoppers[:SHOPPERS_WITH_PURCHASES]], field_name="phone"
        )
        for shopper in shoppers[:SHOPPERS_WITH_PURCHASES]:
            # Drawn for every shopper, so each one's history is the same whoever came before.
            history = shopper_purchases(rng, home_store=shopper.store_code, now=now)
            if shopper.phone in members:
                histories.append((members[shopper.phone], history))

        new_purchases = new_returns = 0
        # One transaction: far faster on SQLite, and a failed run leaves nothing half-made.
        with transaction.atomic():
            for member, history in histories:
                # A member with purchases was seeded before (perhaps on another day, so with
                # other dates): left alone, which keeps a second run from writing anything.
                if purchase_list(member=member).exists():
                    continue
                for n, demo in enumerate(history):
                    store = stores[demo.store_code]
                    receipt_no = f"{demo.occurred_at:%Y%m%d}-{member.pk:06d}{n:02d}"
                    purchase_record(
                        member=member,
                        store=store,
                        receipt_no=receipt_no,
                        occurred_at=demo.occurred_at,
                        amount=demo.amount,
                        lines=demo.lines,
                        # Recorded as it happened: a history, not a live purchase today.
                        now=demo.occurred_at,
                    )
                    new_purchases += 1
                    if demo.returned:
                        return_record(
                            store=store,
                            receipt_no=f"RT{receipt_no}",
                            original_receipt_no=receipt_no,
                            amount=demo.returned,
                            occurred_at=min(demo.occurred_at + datetime.timedelta(days=3), now),
                        )
                        new_returns += 1
        # What the nightly job would have expired by now (the oldest purchases).
        points_expire(at=now)

        self.stdout.write(
            f"Rewards: {Reward.objects.count()} ({new_rewards} new). "
            f"Purchases: {Purchase.objects.count()} ({new_purchases} new), "
            f"returns: {Return.objects.count()} ({new_returns} new)."
        )

    def _campaigns(self) -> None:
        """Two segments and a bonus campaign launched 20 days ago with an SMS and a portal
        notice, so a marketer's first look finds a campaign with results (the nightly
        `campaign_results` job, which `make run` runs, computes them)."""
        marketer = User.objects.get(email="marketer@example.com")
        segments = {}
        for name, rules in DEMO_SEGMENTS:
            segment = Segment.objects.filter(name=name).first()
            if segment is None:
                segment = segment_create(actor=marketer, name=name, description="", rules=rules)
            segments[name] = segment
        if Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
            return
        launched = timezone.now() - datetime.timedelta(days=20)
        campaign = campaign_create(
            actor=marketer,
            name=DEMO_CAMPAIGN,
            kind=Campaign.Kind.BONUS,
            segment=segments[DEMO_SEGMENTS[0][0]],
            bonus_points=200,
            send_sms=True,
            send_portal=True,
            message_subject_zh="送您 200 积分",
            message_subject_en="200 points for you",
            message_body_zh="{name}，感谢您的支持！我们已为您的账户加赠 200 积分，"
            "当前余额 {balance} 分。",
            message_body_en="{name}, thank you! We added 200 points to your account; "
            "your balance is now {balance}.",
        )
        # As a marketer did 20 days ago: scheduled a minute ahead, then launched and sent by
        # the minute's tick.
        campaign = campaign_schedule(
            campaign=campaign,
            actor=marketer,
            at=launched + datetime.timedelta(minutes=1),
            now=launched,
        )
        started = launched + datetime.timedelta(minutes=1)
        campaign = campaign_launch(campaign=campaign, now=started)
        campaign_send(campaign=campaign, now=started)
        outbox_dispatch(now=started)
        self.stdout.write(
            f"Segments: {len(segments)}. Campaign {campaign.name}: "
            f"{campaign.audience_size} members ({campaign.control_size} in the holdout)."
        )

    def _member_login(self, store: Store) -> bool:
        """The shopper's login: a member with a verified phone and e-mail. True if created."""
        if User.objects.filter(email=MEMBER_LOGIN.email).exists():
            return False
        # One transaction: a login without its member would be skipped by the next run.
        with transaction.atomic():
            return self._member_login_create(store)

    def _member_login_create(self, store: Store) -> bool:
        user = user_create(
            email=MEMBER_LOGIN.email,
            password=DEMO_PASSWORD,
            name=MEMBER_LOGIN.name,
            phone=MEMBER_LOGIN_PHONE,
        )
        # With `user`, an existing till enrolment of that phone is linked instead of duplicated.
        member_enroll(
            phone=MEMBER_LOGIN_PHONE,
            name=MEMBER_LOGIN.name,
            channel=Member.Channel.ONLINE,
            store=store,
            email=MEMBER_LOGIN.email,
            gender=Member.Gender.FEMALE,
            birthday=datetime.date(1992, 5, 20),
            city=store.city,
            consents=Consents(
                privacy_version=settings.PRIVACY_NOTICE_VERSION, sms=True, email=True
            ),
            user=user,
            # A member since before the demo's purchase history, like the shoppers.
            enrolled_at=timezone.now() - datetime.timedelta(days=HISTORY_DAYS + 30),
        )
        return True
