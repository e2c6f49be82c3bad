"""`manage.py seed_demo`: the demo data the README promises, loaded once however often run.

The command lives in points (it seeds points too, and members cannot import points).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember, OutboxMessage, Segment
from devtools.management.commands.seed_demo import demo_shoppers
from members.models import AuditEntry, ConsentEvent, Member, Store, User
from members.numbers import member_no_is_valid, phone_normalize
from points.models import CategoryRate, EarningPolicy, LedgerTransaction, Lot, Purchase, Reward
from points.selectors import points_balance, points_expiring_soon
from points.services import reward_redeem

pytestmark = pytest.mark.django_db

LOGINS = {
    "member@example.com": [],
    "staff@example.com": ["store_staff"],
    "manager@example.com": ["store_manager"],
    "marketer@example.com": ["marketer"],
    "admin@example.com": ["administrator"],
    "auditor@example.com": ["auditor"],
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "stores": list(Store.objects.order_by("code").values_list("code", "name", "city")),
        "members": list(
            Member.objects.order_by("phone").values_list("member_no", "phone", "name", "user_id")
        ),
        "users": list(User.objects.order_by("email").values_list("email", "password")),
        "consents": ConsentEvent.objects.count(),
        "audit": AuditEntry.objects.count(),
        "rewards": list(Reward.objects.order_by("code").values_list("code", "stock")),
        "purchases": list(Purchase.objects.order_by("id").values_list("receipt_no", "amount")),
        "ledger": list(
            LedgerTransaction.objects.order_by("id").values_list("idempotency_key", "member_amount")
        ),
        "lots": list(Lot.objects.order_by("id").values_list("id", "remaining")),
    }


def test_loads_three_stores_and_two_hundred_shoppers_plus_the_member_login():
    output = seed()

    assert list(Store.objects.order_by("code").values_list("code", "city")) == [
        ("BJ001", "北京"),
        ("GZ001", "广州"),
        ("SH001", "上海"),
    ]
    assert Member.objects.count() == 201
    assert set(Member.objects.values_list("home_store__code", flat=True)) == {
        "SH001",
        "BJ001",
        "GZ001",
    }
    assert "Demo shoppers: 200 (200 new)" in output


def test_shoppers_look_real_and_are_valid_members():
    seed()

    shoppers = Member.objects.filter(user__isnull=True)
    assert shoppers.count() == 200
    for member in shoppers:
        assert member_no_is_valid(member.member_no)
        assert member.phone == phone_normalize(member.phone)
        assert member.phone.startswith("+861")
        # Chinese names: a one- or two-character surname and a one- or two-character name.
        assert 2 <= len(member.name) <= 4
        assert all("\u4e00" <= char <= "\u9fff" for char in member.name)
        assert member.birthday is not None
        assert member.gender in ("F", "M")
        assert member.enrolment_channel == Member.Channel.STORE
        assert member.privacy_notice_version
    # Not one name repeated two hundred times: a spread of surnames and names.
    assert shoppers.values("name").distinct().count() > 150
    assert len({member.name[0] for member in shoppers}) > 30


def test_running_twice_changes_nothing():
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert "Demo shoppers: 200 (0 new)" in output
    assert "Logins: 6 (0 new)" in output
    assert "Rewards: 6 (0 new)" in output
    assert "(0 new), returns:" in output


def test_the_same_shoppers_on_every_database():
    seed("--members", "20")

    # Drawn from a fixed seed: what was stored is what every other run would store.
    stored = set(Member.objects.filter(user__isnull=True).values_list("phone", "name", "birthday"))
    today = timezone.localdate()
    assert stored == {(s.phone, s.name, s.birthday) for s in demo_shoppers(20, today=today)}
    assert demo_shoppers(20, today=today) == demo_shoppers(20, today=today)


def test_asking_for_more_shoppers_later_adds_to_the_ones_there():
    seed("--members", "20")
    first = set(Member.objects.values_list("member_no", "phone"))

    output = seed("--members", "30")

    assert first < set(Member.objects.values_list("member_no", "phone"))
    assert Member.objects.filter(user__isnull=True).count() == 30
    assert "Demo shoppers: 30 (10 new)" in output


def test_each_login_is_in_its_role():
    seed("--members", "3")

    for email, roles in LOGINS.items():
        user = User.objects.get(email=email)
        assert sorted(user.groups.values_list("name", flat=True)) == roles
        assert user.emailaddress_set.filter(email=email, verified=True, primary=True).exists()
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.filter(is_superuser=True).exclude(pk=admin.pk).exists()


def test_member_login_has_a_verified_phone_and_its_own_member():
    seed("--members", "3")

    user = User.objects.get(email="member@example.com")
    assert user.phone == "+8613800000001"
    assert user.phone_verified
    assert user.member.phone == "+8613800000001"
    assert user.member.email == "member@example.com"
    assert user.member.home_store.code == "SH001"


@pytest.mark.parametrize("login", sorted(LOGINS))
def test_every_login_can_log_in_with_the_demo_password(client, login):
    seed("--members", "3")

    response = client.post("/accounts/login/", {"login": login, "password": "demo-pass-123"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.session.get("_auth_user_id") == str(User.objects.get(email=login).pk)


def test_member_can_log_in_with_the_phone(client):
    seed("--members", "3")

    response = client.post(
        "/accounts/login/", {"login": "13800000001", "password": "demo-pass-123"}
    )

    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(
        User.objects.get(email="member@example.com").pk
    )


def test_wrong_password_does_not_log_in(client):
    seed("--members", "3")

    response = client.post("/accounts/login/", {"login": "staff@example.com", "password": "nope"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_loads_a_rewards_catalogue_with_cny10_and_the_category_rates():
    output = seed("--members", "3")

    cny10 = Reward.objects.get(code="CNY10")
    assert cny10.kind == Reward.Kind.AMOUNT_OFF
    assert cny10.amount_off == Decimal(10)
    assert cny10.points_price == 1000
    assert cny10.stock is None  # unlimited
    assert cny10.name_zh and cny10.name_en and cny10.description_zh and cny10.description_en
    kinds = dict(Reward.objects.values_list("code", "kind"))
    assert set(kinds.values()) == set(Reward.Kind.values)
    gift = Reward.objects.get(kind=Reward.Kind.GIFT)
    assert gift.stock is not None and gift.stock > 0
    assert Reward.objects.get(kind=Reward.Kind.TICKET).min_tier_rank == 3
    assert all(r.name_zh and r.name_en for r in Reward.objects.all())
    assert dict(CategoryRate.objects.values_list("category", "rate")) == {
        "gift_card": Decimal(0),
        "tobacco": Decimal(0),
        "cosmetics": Decimal(2),
    }
    assert EarningPolicy.objects.count() == 1
    assert "Rewards: 6 (6 new)" in output


def test_the_member_login_can_afford_cny10_and_has_points_expiring_within_30_days():
    seed("--members", "3")
    member = User.objects.get(email="member@example.com").member

    balance = points_balance(member=member)
    assert balance.available >= 1000
    soon = points_expiring_soon(member=member, within_days=30)
    assert soon is not None and soon.points > 0
    assert soon.date <= timezone.localdate() + datetime.timedelta(days=30)
    # About 14 months of purchases; the oldest have expired, one was partly returned.
    purchases = Purchase.objects.filter(member=member)
    assert purchases.count() >= 6
    oldest = purchases.order_by("occurred_at").first().occurred_at
    assert timezone.now() - oldest > datetime.timedelta(days=365)
    kinds = set(LedgerTransaction.objects.filter(member=member).values_list("kind", flat=True))
    assert {"earn", "reverse", "expire"} <= kinds

    result = reward_redeem(
        member=member, reward=Reward.objects.get(code="CNY10"), idempotency_key="t"
    )
    assert result.coupon.code
    assert points_balance(member=member).available == balance.available - 1000


def test_demo_shoppers_have_purchase_histories_with_a_few_returns():
    seed()

    shoppers_buying = Purchase.objects.exclude(member__user__isnull=False)
    assert shoppers_buying.values("member").distinct().count() >= 30
    assert shoppers_buying.values("store").distinct().count() == 3
    assert Purchase.objects.filter(returns__isnull=False).exists()
    # Tobacco and gift cards earn nothing, so some purchases earn less than they cost.
    assert Purchase.objects.filter(lines__category__in=["tobacco", "gift_card"]).exists()


def test_a_marketer_finds_two_segments_and_a_launched_bonus_campaign_with_results():
    seed()
    call_command("run_nightly", stdout=StringIO())

    assert Segment.objects.count() == 2
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.launched_at < timezone.now() - datetime.timedelta(days=19)
    treated = campaign.audience.filter(arm=CampaignMember.Arm.TREATMENT)
    assert treated.count() == campaign.audience_size - campaign.control_size > 0
    # Each treated member got the 200 points, under the campaign's key; the holdout nothing.
    keys = set(
        LedgerTransaction.objects.filter(
            idempotency_key__startswith=f"campaign:{campaign.pk}:"
        ).values_list("idempotency_key", flat=True)
    )
    assert keys == {
        f"campaign:{campaign.pk}:member:{m}" for m in treated.values_list("member_id", flat=True)
    }
    notices = campaign.messages.filter(channel=OutboxMessage.Channel.PORTAL)
    assert set(notices.values_list("member_id", flat=True)) <= set(
        treated.values_list("member_id", flat=True)
    )
    # The nightly job computed its results over the closed 14-day window.
    assert campaign.result.figures["treatment"]["members"] == treated.count()
    # Seeding again launches nothing more.
    seed()
    assert Campaign.objects.count() == 1
