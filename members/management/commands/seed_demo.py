"""`manage.py seed_demo`: the demo's stores, members and logins. Safe to run again.

Everything is drawn from a fixed random seed, so every run wants the same stores, the same
200 shoppers and the same logins; whatever already exists is left alone, so a second run
writes nothing. All writes go through the member services, as a cashier's would.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from members import roles
from members.models import Member, Store, User
from members.numbers import phone_normalize
from members.services import Consents, member_enroll, store_ensure, user_create

DEMO_PASSWORD = "demo-pass-123"
SEED = 20260101

STORES = (
    ("SH001", "上海南京路店", "上海", "上海市黄浦区南京东路 300 号"),
    ("BJ001", "北京王府井店", "北京", "北京市东城区王府井大街 88 号"),
    ("GZ001", "广州天河店", "广州", "广州市天河区天河路 208 号"),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str | None
    superuser: bool = False


MEMBER_LOGIN = DemoLogin("member@example.com", "李晓梅", None)
MEMBER_LOGIN_PHONE = "13800000001"
STAFF_LOGINS = (
    DemoLogin("staff@example.com", "王芳", roles.STORE_STAFF),
    DemoLogin("manager@example.com", "张伟", roles.STORE_MANAGER),
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
            if not User.objects.filter(email=login.email).exists():
                user_create(
                    email=login.email,
                    password=DEMO_PASSWORD,
                    name=login.name,
                    roles=[login.role] if login.role else [],
                    is_superuser=login.superuser,
                )
                new_logins += 1
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
        )
        return True
