"""Points not earned by spending: sign-up bonus, completed profile, referral — worked examples.

Defaults (EarningPolicy): sign-up 200, profile completed 100 once, referral 300 to the
referrer after the referee's first purchase, at most 20 referral bonuses a calendar year.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.imports import import_file
from members.models import Member
from members.services import member_enroll, member_update_profile
from points.models import Account, EarningPolicy, LedgerTransaction
from points.rules import on_member_enrolled, on_member_profile_changed
from points.services import purchase_record
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
MARCH = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


def balance(member: Member) -> int:
    account = Account.objects.filter(member=member).first()
    return account.balance if account is not None else 0


def rule_postings(member: Member) -> list[tuple[str, int]]:
    return list(
        LedgerTransaction.objects.filter(member=member, source=LedgerTransaction.Source.RULE)
        .order_by("id")
        .values_list("idempotency_key", "member_amount")
    )


def enrol(store, phone="13812345678", **kwargs) -> Member:
    kwargs.setdefault("name", "张伟")
    return member_enroll(phone=phone, channel=Member.Channel.STORE, store=store, **kwargs)


def buy(member, store, receipt, amount="100", *, when=MARCH):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        now=when,
    )


def test_a_new_member_gets_200_points_for_signing_up_once(store):
    member = enrol(store)

    assert balance(member) == 200
    assert rule_postings(member) == [(f"rule:signup:{member.pk}", 200)]
    txn = LedgerTransaction.objects.get(member=member)
    assert txn.kind == LedgerTransaction.Kind.EARN
    assert txn.source == LedgerTransaction.Source.RULE

    # The hook run again (a replayed enrolment) finds the bonus already posted.
    on_member_enrolled(member=member)
    assert balance(member) == 200
    assert len(rule_postings(member)) == 1


def test_signing_up_online_gets_the_bonus_and_a_later_login_link_does_not_pay_again(store):
    member = enrol(store, gender="F", birthday=datetime.date(1990, 5, 1), city="上海")
    assert balance(member) == 200  # no e-mail yet: profile not complete

    # The shopper signs up online with the same phone: linked, not enrolled again. The
    # login's e-mail completes the profile.
    user = UserFactory(email="zw@example.com", phone="+8613812345678")
    linked = member_enroll(
        phone="13812345678",
        name="张伟",
        email="zw@example.com",
        channel=Member.Channel.ONLINE,
        user=user,
    )

    assert linked.pk == member.pk
    assert rule_postings(member) == [
        (f"rule:signup:{member.pk}", 200),
        (f"rule:profile:{member.pk}", 100),
    ]
    assert balance(member) == 300


def test_members_from_a_csv_import_get_no_signup_bonus(store):
    admin = UserFactory()
    import_file(
        kind="members",
        file_name="members.csv",
        content=(
            "source_id,phone,name,email,gender,birthday,city\nA1,13900000001,李娜,,F,1990-01-02,\n"
        ).encode(),
        actor=admin,
    )
    imported = Member.objects.get(phone="+8613900000001")
    assert balance(imported) == 0

    # The service path with the import channel is refused the bonus too.
    member = member_enroll(phone="13900000002", name="王芳", channel=Member.Channel.IMPORT)
    assert rule_postings(member) == []
    assert balance(member) == 0


def test_a_complete_profile_at_enrolment_earns_both_bonuses(store):
    member = enrol(
        store,
        email="zw@example.com",
        gender="M",
        birthday=datetime.date(1988, 8, 8),
        city="上海",
    )

    assert balance(member) == 300
    assert [amount for _key, amount in rule_postings(member)] == [200, 100]


def test_profile_bonus_is_paid_once_even_after_later_edits(store):
    staff = UserFactory()
    member = enrol(store, email="zw@example.com", gender="M", birthday=datetime.date(1988, 8, 8))
    assert balance(member) == 200  # city missing

    member_update_profile(member=member, actor=staff, name="张伟伟")
    assert balance(member) == 200  # still no city

    member_update_profile(member=member, actor=staff, city="上海")
    assert balance(member) == 300

    # Emptying a field and filling it in again earns nothing more.
    member_update_profile(member=member, actor=staff, city="")
    member_update_profile(member=member, actor=staff, city="北京")
    on_member_profile_changed(member=member)
    assert balance(member) == 300
    assert rule_postings(member) == [
        (f"rule:signup:{member.pk}", 200),
        (f"rule:profile:{member.pk}", 100),
    ]


def test_referrer_earns_300_after_the_referees_first_purchase_only(store):
    referrer = MemberFactory()
    referee = enrol(store, referrer=referrer)
    assert balance(referrer) == 0  # enrolling is not enough

    first = buy(referee, store, "R1")
    assert balance(referrer) == 300
    assert rule_postings(referrer) == [(f"rule:referral:{referee.pk}", 300)]
    txn = LedgerTransaction.objects.get(member=referrer)
    assert txn.occurred_at == MARCH
    assert txn.source_ref == referee.member_no

    # The till retries the same purchase, then the referee buys again: nothing more.
    replay = buy(referee, store, "R1")
    assert not replay.created and replay.purchase.pk == first.purchase.pk
    buy(referee, store, "R2", when=MARCH + datetime.timedelta(days=1))
    assert balance(referrer) == 300
    # The referee earns for the purchases as usual, on top of the sign-up bonus.
    assert balance(referee) == 200 + 100 + 100


def test_a_member_without_a_referrer_pays_nobody(store):
    other = MemberFactory()
    member = enrol(store)
    buy(member, store, "R1")
    assert balance(other) == 0
    assert not LedgerTransaction.objects.filter(idempotency_key__startswith="rule:referral:")


def test_referral_bonuses_are_capped_per_referrer_per_calendar_year(store):
    EarningPolicy.objects.create(referral_cap_per_year=2, signup_bonus=0)
    referrer = MemberFactory()
    referees = [enrol(store, phone=f"1380000000{i}", referrer=referrer) for i in range(4)]

    buy(referees[0], store, "R0")
    buy(referees[1], store, "R1")
    # The third within 2026 — late on New Year's Eve in Shanghai, still 2026 — is over the cap.
    buy(referees[2], store, "R2", when=datetime.datetime(2026, 12, 31, 23, 30, tzinfo=SH))
    assert balance(referrer) == 600
    assert len(rule_postings(referrer)) == 2

    # Its purchases after the cap never pay, even in a new year: only the first one could.
    buy(referees[2], store, "R2b", when=datetime.datetime(2027, 1, 2, tzinfo=SH))
    assert balance(referrer) == 600

    # A new year, a new allowance: half an hour into 2027 in Shanghai (still 2026 in UTC).
    buy(referees[3], store, "R3", when=datetime.datetime(2027, 1, 1, 0, 30, tzinfo=SH))
    assert balance(referrer) == 900
    assert [key for key, _amount in rule_postings(referrer)] == [
        f"rule:referral:{referees[0].pk}",
        f"rule:referral:{referees[1].pk}",
        f"rule:referral:{referees[3].pk}",
    ]


def test_a_zero_in_the_policy_turns_a_rule_off(store):
    EarningPolicy.objects.create(signup_bonus=0, profile_bonus=0, referral_bonus=0)
    referrer = MemberFactory()
    member = enrol(
        store,
        email="zw@example.com",
        gender="M",
        birthday=datetime.date(1988, 8, 8),
        city="上海",
        referrer=referrer,
    )
    buy(member, store, "R1")

    assert rule_postings(member) == []
    assert rule_postings(referrer) == []
    assert balance(member) == 100  # the purchase only


def test_a_changed_bonus_amount_does_not_make_a_replay_a_conflict(store):
    member = enrol(store)
    policy = EarningPolicy.objects.create(signup_bonus=500)

    on_member_enrolled(member=member)

    assert balance(member) == 200
    assert policy.signup_bonus == 500


def test_a_friend_who_joins_online_with_the_code_pays_the_referrer_once_after_buying(
    client, store, staff_user, sms_outbox, settings
):
    """End to end, as the rules page promises: sign-up page → first purchase at the till."""
    settings.LANGUAGE_CODE = "en"
    referrer = MemberFactory(referral_code="ABCD2345")

    signup = client.get("/accounts/signup/?ref=ABCD2345").content.decode()
    assert re.search(r'name="referral_code"[^>]*value="ABCD2345"', signup)
    client.post(
        "/accounts/signup/",
        {
            "phone": "13812345678",
            "name": "王芳",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
            "accept_privacy": "on",
            "referral_code": "ABCD2345",
        },
    )
    code = re.search(r"\b([0-9]{6})\b", sms_outbox[-1].text).group(1)
    client.post("/accounts/phone/verify/", {"code": code})
    friend = Member.objects.get(phone="+8613812345678")
    assert friend.referrer == referrer
    assert balance(friend) == 200  # the friend's own sign-up bonus
    assert balance(referrer) == 0  # joining is not a purchase

    client.force_login(staff_user)
    now = datetime.datetime.now(tz=SH).replace(second=0, microsecond=0)
    for receipt in ("R1", "R1", "R2"):  # a double-submitted first purchase, then another
        client.post(
            "/staff/purchases/new/",
            {
                "member": "13812345678",
                "store": store.pk,
                "receipt_no": receipt,
                "occurred_at": now.strftime("%Y-%m-%dT%H:%M"),
                "amount": "88.00",
            },
        )

    assert balance(referrer) == 300
    assert rule_postings(referrer) == [(f"rule:referral:{friend.pk}", 300)]
    assert balance(friend) == 200 + 88 + 88


@pytest.mark.parametrize("base_rate", [Decimal("1"), Decimal("1.5"), Decimal("0.37")])
@pytest.mark.parametrize("birthday_multiplier", [Decimal("2"), Decimal("1.25"), Decimal("3")])
def test_loadgens_points_per_cent_earn_what_the_posting_plan_earns(base_rate, birthday_multiplier):
    # What loadgen's SQL is given earns what the plan earns, to the point, in and out of
    # the birthday month.
    from devtools.loadgen import LoadTiers, load_months, points_per_cent
    from points.posting.plan import EarningRules, points_earned, promotion_multiplier

    rules = EarningRules(base_rate=base_rate, birthday_multiplier=birthday_multiplier)
    tiers = LoadTiers.load()
    months = load_months(datetime.datetime(2026, 4, 1, tzinfo=SH))[:2]
    numerators, denominators = points_per_cent(months, rules, tiers)
    for index, (start, month, _expiry) in enumerate(months):
        for birthday, factor in ((0, 2 * index), (month, 2 * index + 1)):
            multiplier = tiers.levels[0].earn_multiplier * promotion_multiplier(
                promotions=(), birthday_month=birthday, occurred_at=start, rules=rules
            )
            for cents in (0, 1, 99, 100, 101, 12_345, 19_999, 5_000_000):
                assert cents * numerators[factor] // denominators[factor] == points_earned(
                    eligible=Decimal(cents) / 100, multiplier=multiplier, base_rate=base_rate
                ), (cents, month, birthday)
