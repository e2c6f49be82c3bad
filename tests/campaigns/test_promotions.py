"""A multiplier promotion earns the same on every path, in its window, for its treated members;
the till and the portal show it."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from campaigns.launch import campaign_launch
from campaigns.models import Campaign, CampaignMember
from campaigns.promotions import member_promotions_active, promotions_cache_clear
from core.imports import import_file
from members.models import Member
from members.services import api_token_create
from points.models import Category, EarningPolicy, Purchase
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 5, 12, 14, 0, tzinfo=SH)
STARTS = datetime.datetime(2026, 5, 11, 0, 0, tzinfo=SH)
ENDS = datetime.datetime(2026, 5, 18, 0, 0, tzinfo=SH)
IN_WINDOW = "2026-05-12T13:30:00"


@pytest.fixture(autouse=True)
def clock_and_language(time_machine, settings):
    time_machine.move_to(NOW, tick=False)
    settings.LANGUAGE_CODE = "en"
    promotions_cache_clear()
    yield
    promotions_cache_clear()


@pytest.fixture
def categories(db):
    for code, zh, en in (("apparel", "服装", "Apparel"), ("snacks", "零食", "Snacks")):
        Category.objects.create(code=code, name_zh=zh, name_en=en)


@pytest.fixture
def promotion(store, categories):
    """×2 on apparel at SH001 for the week, half the members held out."""
    StoreFactory(code="BJ001", name="北京王府井店", city="北京")
    for _ in range(24):
        MemberFactory(birthday=datetime.date(1990, 1, 5))
    campaign = Campaign.objects.create(
        name="服装双倍积分周",
        kind=Campaign.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        starts_at=STARTS,
        ends_at=ENDS,
        categories=["apparel"],
        status=Campaign.Status.SCHEDULED,
        scheduled_at=STARTS,
        holdout_percent=Decimal(50),
        salt="promotion-test",
        message_subject_zh="服装双倍积分",
        message_subject_en="Double points on apparel",
    )
    campaign.stores.set([store])
    return campaign_launch(campaign=campaign, now=STARTS)


def arm_member(campaign: Campaign, arm: str) -> Member:
    row = CampaignMember.objects.filter(campaign=campaign, arm=arm).order_by("member_id").first()
    assert row is not None, f"no member in the {arm} arm"
    return Member.objects.get(pk=row.member_id)


@pytest.fixture
def treated(promotion):
    return arm_member(promotion, "treatment")


@pytest.fixture
def held_out(promotion):
    return arm_member(promotion, "control")


def till_purchase(client, store, member, *, receipt, occurred_at=IN_WINDOW, category="apparel"):
    _token, raw = api_token_create(store=store, name=f"till {receipt}")
    response = client.post(
        "/api/v1/purchases",
        json.dumps(
            {
                "member_no": member.member_no,
                "store": store.code,
                "receipt_no": receipt,
                "occurred_at": occurred_at,
                "amount": "100.00",
                "lines": [{"sku": "SKU1", "category": category, "amount": "100.00"}],
            }
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201, response.content
    return response.json()["points_earned"]


def form_purchase(client, store, member, *, receipt, occurred_at=IN_WINDOW, category="apparel"):
    client.force_login(make_role_user("store_staff", stores=[store]))
    response = client.post(
        reverse("staff:purchase-record"),
        {
            "member": member.member_no,
            "store": store.pk,
            "receipt_no": receipt,
            "occurred_at": occurred_at[:16],
            "amount": "100.00",
            "points_to_use": "",
            "line1_sku": "SKU1",
            "line1_category": category,
            "line1_amount": "100.00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Purchase.objects.get(receipt_no=receipt).points_earned


def import_purchase(_client, store, member, *, receipt, occurred_at=IN_WINDOW, category="apparel"):
    text = (
        "store,receipt_no,member_no,occurred_at,amount,category,sku\n"
        f"{store.code},{receipt},{member.member_no},{occurred_at},100.00,{category},SKU1\n"
    )
    run = import_file(kind="purchases", file_name="till.csv", content=text.encode())
    assert (run.bad_count, run.failure) == (0, "")
    return Purchase.objects.get(receipt_no=receipt).points_earned


PATHS = {"till": till_purchase, "staff_form": form_purchase, "import": import_purchase}


@pytest.mark.parametrize("path", PATHS)
def test_a_treated_members_purchase_in_the_window_earns_double_on_every_path(
    client, store, treated, path
):
    # Base rate 1 point per ¥1, regular tier ×1: ¥100 earns 100, ×2 is 200.
    assert PATHS[path](client, store, treated, receipt=f"{path}-1") == 200


@pytest.mark.parametrize("path", PATHS)
def test_outside_the_window_store_or_categories_or_for_the_holdout_it_earns_as_usual(
    client, store, treated, held_out, path, time_machine
):
    # After the window, so a purchase after its end is not in the future.
    time_machine.move_to(ENDS + datetime.timedelta(hours=12), tick=False)
    purchase = PATHS[path]
    beijing = StoreFactory._meta.model.objects.get(code="BJ001")
    assert purchase(client, store, held_out, receipt=f"{path}-control") == 100
    assert purchase(client, beijing, treated, receipt=f"{path}-bj") == 100
    assert purchase(client, store, treated, receipt=f"{path}-snacks", category="snacks") == 100
    before = "2026-05-10T23:59:00"
    assert purchase(client, store, treated, receipt=f"{path}-early", occurred_at=before) == 100
    # The window ends at midnight of the 18th: a minute after is outside.
    after = "2026-05-18T00:01:00"
    assert purchase(client, store, treated, receipt=f"{path}-late", occurred_at=after) == 100


def test_a_cancelled_promotion_stops_earning_at_once(client, store, promotion, treated):
    assert till_purchase(client, store, treated, receipt="before-cancel") == 200
    Campaign.objects.filter(pk=promotion.pk).update(status=Campaign.Status.CANCELLED)
    assert till_purchase(client, store, treated, receipt="after-cancel") == 100


def test_a_purchase_of_the_window_imported_after_the_promotion_ended_still_earns_it(
    client, store, promotion, treated, time_machine
):
    time_machine.move_to(ENDS + datetime.timedelta(days=2), tick=False)
    Campaign.objects.filter(pk=promotion.pk).update(status=Campaign.Status.COMPLETED)
    assert import_purchase(client, store, treated, receipt="late-file") == 200


def test_the_birthday_month_and_the_promotion_do_not_stack_unless_the_policy_says_so(
    client, store, promotion, treated
):
    Campaign.objects.filter(pk=promotion.pk).update(multiplier=Decimal(3))
    promotions_cache_clear()
    Member.objects.filter(pk=treated.pk).update(birthday=datetime.date(1990, 5, 20))
    treated.refresh_from_db()
    # Birthday ×2 and promotion ×3: the best, ×3.
    assert till_purchase(client, store, treated, receipt="bday-1") == 300
    EarningPolicy.objects.create(promotions_stack=True)
    # Stacking: ×2 × ×3 = ×6.
    assert till_purchase(client, store, treated, receipt="bday-2") == 600


def test_the_till_sees_the_treated_members_promotions_and_none_for_the_holdout(
    client, store, treated, held_out
):
    _token, raw = api_token_create(store=store, name="till")

    def lookup(member):
        response = client.get(
            "/api/v1/members/lookup",
            {"member_no": member.member_no},
            headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"},
        )
        assert response.status_code == 200
        return response.json()["promotions"]

    assert lookup(treated) == [
        {
            "title": "Double points on apparel",
            "multiplier": "2.00",
            "starts_at": "2026-05-10T16:00:00Z",  # midnight in Shanghai
            "ends_at": "2026-05-17T16:00:00Z",
            "stores": ["SH001"],
            "categories": ["apparel"],
        }
    ]
    assert lookup(held_out) == []


def test_active_promotions_are_those_whose_window_holds_the_time(promotion, treated, held_out):
    def active(member, at):
        return [w.campaign_id for w in member_promotions_active(member_id=member.pk, at=at)]

    assert active(treated, NOW) == [promotion.pk]
    assert active(held_out, NOW) == []
    assert active(treated, ENDS) == []
    assert active(treated, STARTS) == [promotion.pk]


def test_the_portal_home_shows_the_member_their_promotion(client, promotion, treated, held_out):
    for member in (treated, held_out):
        member.user = UserFactory()
        member.save(update_fields=["user"])

    client.force_login(treated.user)
    page = client.get(reverse("portal:home")).content.decode()
    assert "Your points promotions" in page
    assert "×2 points" in page
    assert "Double points on apparel" in page
    assert "Until 2026-05-18 00:00" in page
    assert "上海南京路店" in page and "Apparel" in page
    # The campaign's own name is for staff.
    assert "服装双倍积分周" not in page

    client.force_login(held_out.user)
    assert "Your points promotions" not in client.get(reverse("portal:home")).content.decode()


def test_a_chinese_reader_sees_the_promotion_in_chinese(client, settings, promotion, treated):
    settings.LANGUAGE_CODE = "zh-hans"
    treated.user = UserFactory()
    treated.save(update_fields=["user"])
    client.force_login(treated.user)
    page = client.get(reverse("portal:home"), headers={"Accept-Language": "zh-hans"})
    text = page.content.decode()
    assert "您的积分活动" in text
    assert "积分 ×2" in text and "服装双倍积分" in text and "适用品类：服装" in text
