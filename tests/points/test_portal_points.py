"""The member portal's points: the home page panels, the history page and the rules page."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from members.services import member_enroll
from points.models import Category, CategoryRate, EarningPolicy, Reward
from points.services import points_adjust, purchase_record, return_record, reward_redeem
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def member(db):
    user = UserFactory(email="li@example.com", phone="+8613800000001", phone_verified=True)
    return MemberFactory(user=user, phone=user.phone, name="李小龙", email="li@example.com")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def cny10(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal("10"),
    )


def buy(member, store, amount, *, receipt, at=NOW):
    return purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=at,
        now=at,
        amount=Decimal(amount),
    ).purchase


def page(response) -> str:
    return response.content.decode()


def text(html: str) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def history_rows(html: str) -> list[str]:
    return [
        text(row).strip()
        for row in re.findall(r'<li class="ledger-line[^"]*">(.*?)</li>', html, flags=re.S)
    ]


# --- home page panels -----------------------------------------------------------------------


def test_the_home_page_shows_available_and_pending_points(member_client, member, store, clock):
    EarningPolicy.objects.create(pending_days=7)
    buy(member, store, 300, receipt="R1", at=NOW - datetime.timedelta(days=10))
    buy(member, store, 120, receipt="R2")
    html = page(member_client.get("/"))
    assert re.search(r'class="points-balance">300<', html)
    assert re.search(r'class="points-pending">120<', html)
    assert "Pending points come from recent purchases" in html
    assert "below zero" not in html


def test_a_negative_balance_is_shown_plainly_with_why_and_what_to_do(
    member_client, member, store, cny10, clock
):
    buy(member, store, 1000, receipt="R1")
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    return_record(
        store=store, receipt_no="RT1", original_receipt_no="R1", amount=1000, occurred_at=NOW
    )
    html = page(member_client.get("/"))
    assert re.search(r'class="points-balance points-negative">-1000<', html)
    assert (
        "Your balance is below zero: a return took back 1000 points that had already been spent"
        in html
    )
    assert "you can redeem rewards again once your balance is above zero" in html


def test_points_expiring_within_30_days_show_a_banner_with_date_and_amount(
    client, member, store, time_machine
):
    # Earned in March 2026: usable until the end of March 2027.
    buy(member, store, 300, receipt="R1", at=datetime.datetime(2026, 3, 15, 10, 0, tzinfo=SH))
    buy(member, store, 50, receipt="R2", at=datetime.datetime(2026, 5, 2, 10, 0, tzinfo=SH))
    time_machine.move_to(datetime.datetime(2027, 3, 10, 9, 0, tzinfo=SH), tick=False)
    client.force_login(member.user)  # after the clock moved, so the session is fresh
    html = page(client.get("/"))
    assert "300 points expire on 2027-03-31" in html
    assert f'href="{reverse("portal:rewards")}"' in html.split("expiring-banner", 1)[1]


def test_no_banner_while_the_next_expiry_is_more_than_30_days_away(
    client, member, store, time_machine
):
    buy(member, store, 300, receipt="R1", at=datetime.datetime(2026, 3, 15, 10, 0, tzinfo=SH))
    time_machine.move_to(datetime.datetime(2027, 2, 28, 9, 0, tzinfo=SH), tick=False)
    client.force_login(member.user)  # after the clock moved, so the session is fresh
    html = page(client.get("/"))
    assert "expiring-banner" not in html
    assert "expire on" not in html
    assert re.search(r'class="points-balance">300<', html)


# --- history --------------------------------------------------------------------------------


def test_the_history_shows_the_summary_expiry_dates_and_every_movement(
    member_client, member, store, cny10, clock
):
    late_evening = datetime.datetime(2026, 3, 14, 23, 30, tzinfo=SH)  # 15:30 UTC
    buy(member, store, 1500, receipt="R1", at=late_evening)
    buy(member, store, 1200, receipt="R2", at=datetime.datetime(2025, 4, 3, 9, 0, tzinfo=SH))
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    return_record(
        store=store, receipt_no="RT1", original_receipt_no="R2", amount=50, occurred_at=NOW
    )
    staff = UserFactory(email="boss@example.com", is_superuser=True)
    points_adjust(
        member=member,
        points=20,
        reason="Goodwill for a late delivery",
        actor=staff,
        idempotency_key="a1",
    )

    html = page(member_client.get(reverse("portal:points-history")))
    assert re.search(r'class="points-available">1670<', html)  # 1500 + 1200 − 1000 − 50 + 20
    assert re.search(r'class="points-pending">0<', html)
    assert re.search(r'class="points-lifetime">2650<', html)  # a return un-earns its points
    # R2's lot (April 2025) runs until the end of April 2026 and was spent first; R1's and
    # the adjustment's run until the end of March 2027.
    assert "150 points expire on 2026-04-30" in html
    assert "1520 points expire on 2027-03-31" in html
    assert history_rows(html) == [
        "2026-03-15 14:00 Adjusted +20 Points adjustment",
        "2026-03-15 14:00 Reversed -50 Return, receipt RT1",
        "2026-03-15 14:00 Redeemed -1000 ¥10 off",
        # Business time in Asia/Shanghai, not UTC (which would say 15:30).
        "2026-03-14 23:30 Earned +1500 Purchase, receipt R1",
        "2025-04-03 09:00 Earned +1200 Purchase, receipt R2",
    ]


def test_the_history_names_bonuses_and_adjustments_in_the_members_language(
    client, store, clock, settings
):
    """A member reads 注册奖励 / 完善资料奖励 / 积分调整: never the staff's reason, the rule's
    internal code or "店员"; staff still read the reason on their ledger."""
    user = UserFactory(email="zw@example.com", phone="+8613812345678", phone_verified=True)
    member = member_enroll(
        user=user,
        phone="13812345678",
        name="张伟",
        channel=Member.Channel.STORE,
        store=store,
        email="zw@example.com",
        gender="M",
        birthday=datetime.date(1988, 8, 8),
        city="上海",
    )
    staff = UserFactory(email="boss@example.com", is_superuser=True)
    points_adjust(
        member=member, points=-30, reason="Duplicate receipt R9", actor=staff, idempotency_key="a1"
    )
    client.force_login(member.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    rows = history_rows(page(client.get(reverse("portal:points-history"))))
    descriptions = [row.split(" ", 4)[-1] for row in rows]
    assert descriptions == ["积分调整", "完善资料奖励", "注册奖励"]
    html = page(client.get(reverse("portal:points-history")))
    for internal in ("Duplicate receipt", "店员", "signup", "profile"):
        assert internal not in text(html)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    rows = history_rows(page(client.get(reverse("portal:points-history"))))
    assert [row.split(" ", 4)[-1] for row in rows] == [
        "Points adjustment",
        "Completed-profile bonus",
        "Sign-up bonus",
    ]

    client.force_login(staff)
    staff_html = page(client.get(reverse("staff:member-ledger", args=[member.member_no])))
    assert "Duplicate receipt R9" in staff_html


def test_reward_names_in_the_history_follow_the_language(
    member_client, member, store, cny10, clock, settings
):
    buy(member, store, 1000, receipt="R1")
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    member_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = page(member_client.get(reverse("portal:points-history")))
    assert "10元优惠券" in html
    assert "¥10 off" not in html


def test_filtering_by_kind_shows_only_that_kind(member_client, member, store, cny10, clock):
    buy(member, store, 1500, receipt="R1")
    buy(member, store, 100, receipt="R2")
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    url = reverse("portal:points-history")

    redeemed = history_rows(page(member_client.get(url, {"kind": "redeem"})))
    assert redeemed == ["2026-03-15 14:00 Redeemed -1000 ¥10 off"]
    earned = history_rows(page(member_client.get(url, {"kind": "earn"})))
    assert [row.split(" Earned ")[1] for row in earned] == [
        "+100 Purchase, receipt R2",
        "+1500 Purchase, receipt R1",
    ]
    html = page(member_client.get(url, {"kind": "expire"}))
    assert history_rows(html) == []
    assert "Nothing of this kind yet." in html
    # The select shows the chosen filter, so the page makes sense without JavaScript.
    assert '<option value="expire" selected>' in html


def test_an_unknown_kind_shows_everything(member_client, member, store, clock):
    buy(member, store, 100, receipt="R1")
    response = member_client.get(reverse("portal:points-history"), {"kind": "bogus"})
    assert response.status_code == 200
    assert len(history_rows(page(response))) == 1


def test_the_filter_works_with_htmx_and_without_javascript(member_client, member, store, clock):
    buy(member, store, 100, receipt="R1")
    url = reverse("portal:points-history")
    html = page(member_client.get(url))
    form = re.search(r'<form method="get" action="([^"]+)"[^>]*>', html, flags=re.S).group(0)
    assert f'action="{url}"' in form
    assert f'hx-get="{url}"' in form
    assert 'hx-target="#history-list"' in form
    assert 'hx-push-url="true"' in form
    assert '<label for="id_kind">Show</label>' in html


def test_an_htmx_request_gets_only_the_history_list(member_client, member, store, clock):
    buy(member, store, 100, receipt="R1")
    url = reverse("portal:points-history")
    fragment = page(member_client.get(url, {"kind": "earn"}, headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<div id="history-list"')
    assert "<html" not in fragment and "When my points expire" not in fragment
    assert history_rows(fragment) == ["2026-03-15 14:00 Earned +100 Purchase, receipt R1"]

    full = page(member_client.get(url, {"kind": "earn"}))
    assert "<html" in full and "When my points expire" in full and 'id="history-list"' in full


def test_a_history_restore_request_gets_the_whole_page(member_client, member, store, clock):
    buy(member, store, 100, receipt="R1")
    html = page(
        member_client.get(
            reverse("portal:points-history"),
            headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
        )
    )
    assert "<html" in html


def test_the_history_is_paginated_20_per_page_keeping_the_filter(
    member_client, member, store, clock
):
    for n in range(25):
        buy(member, store, 10 + n, receipt=f"R{n:02d}", at=NOW - datetime.timedelta(hours=n))
    url = reverse("portal:points-history")
    first = page(member_client.get(url, {"kind": "earn"}))
    rows = history_rows(first)
    assert len(rows) == 20
    assert rows[0].endswith("+10 Purchase, receipt R00")
    assert "Page 1 of 2" in first
    assert f'href="{url}?kind=earn&amp;page=2"' in first
    assert f'hx-get="{url}?kind=earn&amp;page=2"' in first

    second = history_rows(page(member_client.get(url, {"kind": "earn", "page": 2})))
    assert len(second) == 5
    assert second[-1].endswith("+34 Purchase, receipt R24")


def test_the_history_page_query_count_does_not_grow_with_the_rows(
    member_client, member, store, cny10, clock, django_assert_max_num_queries
):
    for n in range(30):
        buy(member, store, 500, receipt=f"R{n:02d}", at=NOW - datetime.timedelta(hours=n))
    for n in range(5):
        reward_redeem(member=member, reward=cny10, idempotency_key=f"k{n}")
    url = reverse("portal:points-history")
    with django_assert_max_num_queries(12):
        response = member_client.get(url)
    assert len(history_rows(page(response))) == 20
    with django_assert_max_num_queries(10):
        member_client.get(url, {"kind": "redeem"}, headers={"HX-Request": "true"})


def test_an_empty_history_says_how_to_start(member_client):
    html = page(member_client.get(reverse("portal:points-history")))
    assert "No points yet. Show your member card at the till to start collecting." in html
    assert "You have no points waiting to expire." in html


def test_the_history_shows_only_my_own_movements(member_client, member, store, clock):
    other = MemberFactory()
    buy(other, store, 777, receipt="OTHER")
    buy(member, store, 100, receipt="MINE")
    html = page(member_client.get(reverse("portal:points-history")))
    assert "OTHER" not in html and "+777" not in html
    assert "MINE" in html


# --- rules ----------------------------------------------------------------------------------


def test_the_rules_page_explains_the_default_policy(member_client, clock):
    html = text(page(member_client.get(reverse("portal:points-rules"))))
    assert "You earn 1 point for every ¥1 you spend" in html
    assert "In your birthday month you earn ×2 points." in html
    assert "Points from a purchase can be spent straight away." in html
    assert "At the till, 100 points = ¥1 off what you pay." in html
    assert "200 points when you join." in html
    assert "100 points, once, when you complete your profile." in html
    assert "300 points for each friend you refer, after their first purchase" in html
    assert "Invite friends" in html
    assert "Points expire at the end of the 12th month after the month they were earned." in html
    assert "points earned on 2026-03-15 can be used until 2027-03-31" in html
    assert "We remind you 30 and 7 days before points expire" in html
    assert "These earn no points" not in html


def test_the_rules_page_follows_the_live_policy_and_category_rates(member_client, clock):
    EarningPolicy.objects.create(
        base_rate=Decimal("2"),
        birthday_multiplier=Decimal("3"),
        pending_days=7,
        points_per_yuan=50,
        signup_bonus=250,
        profile_bonus=120,
        referral_bonus=400,
        referral_cap_per_year=5,
        coupon_valid_days=45,
    )
    categories()
    CategoryRate.objects.create(category="gift_card", rate=0, note="Gift cards are money")
    CategoryRate.objects.create(category="tobacco", rate=0)
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("1.5"))
    html = text(page(member_client.get(reverse("portal:points-rules"))))
    assert "You earn 2 points for every ¥1 you spend" in html
    assert "These earn no points: Gift cards , Tobacco" in html
    assert "Cosmetics earns 1.5 points for every ¥1." in html
    # The note is the administrator's, in whatever language they wrote it.
    assert "Gift cards are money" not in html
    assert "In your birthday month you earn ×3 points." in html
    assert "can be spent 7 days after it" in html
    assert "At the till, 50 points = ¥1 off what you pay." in html
    assert "250 points when you join." in html
    assert "120 points, once, when you complete your profile." in html
    assert "400 points for each friend you refer, after their first purchase (up to 5" in html
    assert "usually valid for 45 days" in html


def categories():
    Category.objects.create(code="gift_card", name_zh="礼品卡", name_en="Gift cards")
    Category.objects.create(code="tobacco", name_zh="烟草", name_en="Tobacco")
    Category.objects.create(code="cosmetics", name_zh="美妆", name_en="Cosmetics")


def rules_text(client) -> str:
    html = page(client.get(reverse("portal:points-rules")))
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    return text(main.split(">", 1)[1])


@pytest.fixture
def category_rates(db):
    categories()
    CategoryRate.objects.create(category="gift_card", rate=0, note="Gift cards are money")
    CategoryRate.objects.create(category="tobacco", rate=0, note="不积分")
    CategoryRate.objects.create(category="cosmetics", rate=Decimal(2), note="Double points")


def test_the_chinese_rules_page_names_categories_in_chinese_and_has_no_english(
    member_client, clock, category_rates, settings
):
    settings.LANGUAGE_CODE = "zh-hans"

    main = rules_text(member_client)

    assert "以下商品不积分： 礼品卡 、 烟草" in main
    assert "美妆" in main
    assert re.findall(r"[A-Za-z]+", main) == []


def test_the_english_rules_page_names_categories_in_english_and_has_no_chinese(
    member_client, clock, category_rates
):
    main = rules_text(member_client)

    assert "These earn no points: Gift cards , Tobacco" in main
    assert "Cosmetics earns 2 points for every ¥1." in main
    assert re.findall(r"[\u4e00-\u9fff]+", main) == []


# --- access ---------------------------------------------------------------------------------


def test_points_pages_need_a_login(client):
    for name in ("points-history", "points-rules"):
        response = client.get(reverse(f"portal:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_a_login_without_a_member_gets_the_friendly_page(client, staff_user):
    client.force_login(staff_user)
    for name in ("points-history", "points-rules"):
        response = client.get(reverse(f"portal:{name}"))
        assert response.status_code == 200
        assert "This account has no member card" in page(response)


def test_points_pages_have_no_inline_styles_or_scripts_and_are_in_the_nav(member_client):
    for name in ("points-history", "points-rules"):
        html = page(member_client.get(reverse(f"portal:{name}")))
        assert " style=" not in html, name
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name
        nav = html.split('class="site-nav"', 1)[1].split("</nav>", 1)[0]
        for target in ("points-history", "rewards", "coupons"):
            assert f'href="{reverse(f"portal:{target}")}"' in nav


def test_download_my_data_includes_purchases_points_history_and_coupons(client, store):
    import json

    from points.models import Reward
    from points.services import purchase_record, reward_redeem
    from tests.factories import MemberFactory, UserFactory

    member = MemberFactory(user=UserFactory())
    purchase_record(
        member=member,
        store=store,
        receipt_no="R-77",
        occurred_at=timezone.now(),
        now=timezone.now(),
        amount=Decimal(1200),
    )
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="券",
        name_en="Coupon",
        points_price=1000,
        amount_off=10,
    )
    reward_redeem(member=member, reward=reward, idempotency_key="k")
    client.force_login(member.user)

    data = json.loads(client.get("/privacy/export/").content)["member"]

    assert [p["receipt_no"] for p in data["purchases"]] == ["R-77"]
    assert sorted(t["points"] for t in data["points_history"]) == [-1000, 1200]
    assert data["points"]["balance"] == 200
    assert [c["reward"] for c in data["coupons"]] == ["CNY10"]
