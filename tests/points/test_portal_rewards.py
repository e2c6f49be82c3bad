"""The member portal's rewards: what I can afford, and redeeming with a confirmation."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.models import Account, Coupon, LedgerTransaction, Redemption, Reward, RewardTierPrice
from points.services import purchase_record, return_record, reward_redeem
from tests.factories import MemberFactory, UserFactory
from tiers.models import MemberTier, TierLevel

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
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
        description_zh="下次购物立减10元",
        description_en="Ten yuan off your next purchase",
        points_price=1000,
        amount_off=Decimal("10"),
    )


@pytest.fixture
def tier_rank(member):
    """Puts the member on the tier of that rank, as a manual tier would."""

    def set_rank(rank):
        level = TierLevel.objects.get(rank=rank)
        today = timezone.localdate()
        MemberTier.objects.update_or_create(
            member=member,
            defaults={
                "level": level,
                "achieved_at": timezone.now(),
                "period_start": timezone.now(),
                "valid_until": today + datetime.timedelta(days=365),
            },
        )

    return set_rank


def give_points(member, store, points, receipt="R1"):
    purchase_record(
        member=member, store=store, receipt_no=receipt, occurred_at=NOW, amount=Decimal(points)
    )


def page(response) -> str:
    return response.content.decode()


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def reward_card(html: str, code: str) -> str:
    return text(re.search(rf'id="reward-{code}">(.*?)</li>', html, flags=re.S).group(1))


def redeem_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', html).group(1)


def balance_of(member) -> int:
    return Account.objects.get(member=member).balance


def nothing_redeemed() -> bool:
    return (
        not Coupon.objects.exists()
        and not Redemption.objects.exists()
        and not LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.REDEEM).exists()
    )


# --- the catalogue --------------------------------------------------------------------------


def test_a_member_with_enough_points_sees_they_can_afford_it(member_client, member, store, cny10):
    give_points(member, store, 1500)
    html = page(member_client.get(reverse("portal:rewards")))
    card = reward_card(html, "CNY10")
    assert "¥10 off" in card
    assert "Ten yuan off your next purchase" in card
    assert "1000 points" in card
    assert "Unlimited" in card
    assert "You can afford this" in card
    assert f'href="{reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})}"' in html
    assert "You have 1500 points to spend." in text(html)


def test_a_member_short_of_points_sees_how_many_more_they_need(member_client, member, store, cny10):
    give_points(member, store, 400)
    html = page(member_client.get(reverse("portal:rewards")))
    card = reward_card(html, "CNY10")
    assert "You need 600 more points" in card
    assert "You can afford this" not in card
    assert reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"}) not in html


def test_names_and_descriptions_follow_the_language(member_client, member, store, cny10, settings):
    member_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    card = reward_card(page(member_client.get(reverse("portal:rewards"))), "CNY10")
    assert "10元优惠券" in card and "下次购物立减10元" in card
    assert "¥10 off" not in card and "Ten yuan" not in card


def test_stock_left_tier_and_limit_states(member_client, member, store, cny10):
    give_points(member, store, 5000)
    Reward.objects.create(
        code="TEA",
        kind=Reward.Kind.GIFT,
        name_zh="茶",
        name_en="Tea set",
        points_price=800,
        stock=3,
    )
    Reward.objects.create(
        code="GOLD",
        kind=Reward.Kind.GIFT,
        name_zh="金",
        name_en="Gold gift",
        points_price=10,
        min_tier_rank=3,  # the member (¥5,000 spent) is Silver, rank 2
    )
    Reward.objects.create(
        code="GONE",
        kind=Reward.Kind.GIFT,
        name_zh="无",
        name_en="Sold out",
        points_price=10,
        stock=0,
    )
    once = Reward.objects.create(
        code="ONCE",
        kind=Reward.Kind.GIFT,
        name_zh="一次",
        name_en="Once only",
        points_price=10,
        per_member_limit=1,
    )
    Reward.objects.create(
        code="OFF",
        kind=Reward.Kind.GIFT,
        name_zh="下架",
        name_en="Withdrawn",
        points_price=10,
        is_active=False,
    )
    Reward.objects.create(
        code="LATER",
        kind=Reward.Kind.GIFT,
        name_zh="以后",
        name_en="Coming soon",
        points_price=10,
        available_from=NOW + datetime.timedelta(days=1),
    )
    reward_redeem(member=member, reward=once, idempotency_key="k1")

    html = page(member_client.get(reverse("portal:rewards")))
    tea = reward_card(html, "TEA")
    assert "3 left" in tea and "You can afford this" in tea
    assert "Not available to your tier" in reward_card(html, "GOLD")
    assert "Out of stock" in reward_card(html, "GONE")
    assert "You have reached the limit for this reward" in reward_card(html, "ONCE")
    # Rewards out of their window or withdrawn are not offered at all.
    assert "Withdrawn" not in html and "Coming soon" not in html


def test_a_higher_tier_sees_its_lower_price(member_client, member, store, cny10, tier_rank):
    RewardTierPrice.objects.create(reward=cny10, tier_rank=2, points_price=800)
    give_points(member, store, 900)
    tier_rank(2)
    card = reward_card(page(member_client.get(reverse("portal:rewards"))), "CNY10")
    assert "800 points" in card and "Your tier price" in card
    assert "You can afford this" in card


def test_a_negative_balance_blocks_every_reward_and_says_why(member_client, member, store, cny10):
    give_points(member, store, 1000)
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    return_record(
        store=store, receipt_no="RT1", original_receipt_no="R1", amount=1000, occurred_at=NOW
    )
    html = page(member_client.get(reverse("portal:rewards")))
    assert "Your balance must be above zero first" in reward_card(html, "CNY10")
    assert "a return took back 1000 points that had already been spent" in text(html)


# --- the confirmation page ------------------------------------------------------------------


def test_the_confirmation_says_what_i_get_what_it_costs_and_my_balance_after(
    member_client, member, store, cny10
):
    give_points(member, store, 1500)
    url = reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})
    html = page(member_client.get(url))
    shown = text(html)
    assert "Redeem ¥10 off" in shown
    assert "Ten yuan off your next purchase" in shown
    assert "valid for 30 days" in shown
    assert "It costs 1000 points" in shown
    assert "Available now 1500 points" in shown
    assert "Balance after 500 points" in shown
    assert f'<form method="post" action="{url}"' in html
    assert 'type="hidden" name="idempotency_key"' in html
    assert "Confirm: spend 1000 points" in shown
    # Each showing of the page mints its own key.
    assert redeem_key(html) != redeem_key(page(member_client.get(url)))
    assert nothing_redeemed()


def test_confirming_redeems_and_shows_the_new_coupon(member_client, member, store, cny10):
    give_points(member, store, 1500)
    url = reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})
    key = redeem_key(page(member_client.get(url)))
    response = member_client.post(url, {"idempotency_key": key})
    coupon = Coupon.objects.get(member=member)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "portal:coupon-detail", kwargs={"coupon_code": coupon.code}
    )
    html = page(member_client.get(response["Location"]))
    assert "Done! You redeemed ¥10 off for 1000 points." in html
    assert coupon.code[:4] in html
    assert balance_of(member) == 500
    assert coupon.valid_until == NOW + datetime.timedelta(days=30)


def test_a_double_submit_redeems_once(member_client, member, store, cny10):
    give_points(member, store, 5000)
    url = reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})
    key = redeem_key(page(member_client.get(url)))
    first = member_client.post(url, {"idempotency_key": key})
    second = member_client.post(url, {"idempotency_key": key})
    assert first["Location"] == second["Location"]
    assert Coupon.objects.count() == 1
    assert Redemption.objects.count() == 1
    assert balance_of(member) == 4000
    html = page(member_client.get(second["Location"]))
    assert "You already redeemed this: here is your coupon." in html


def test_a_new_confirmation_redeems_again(member_client, member, store, cny10):
    give_points(member, store, 5000)
    url = reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})
    for _ in range(2):
        key = redeem_key(page(member_client.get(url)))
        member_client.post(url, {"idempotency_key": key})
    assert Coupon.objects.count() == 2
    assert balance_of(member) == 3000


def post_redeem(client, code="CNY10", key="6f1c1e1e-3b1a-4b0e-9a51-6b7f0e0d2c11"):
    url = reverse("portal:reward-redeem", kwargs={"reward_code": code})
    return client.post(url, {"idempotency_key": key})


def refusal(response) -> str:
    assert response.status_code == 200
    found = re.search(
        r'<p class="message message-error redeem-error" role="alert">(.*?)</p>',
        page(response),
        flags=re.S,
    )
    assert found, "no refusal message on the page"
    return text(found.group(1)).strip()


def test_not_enough_points_is_refused_with_how_many_are_missing(
    member_client, member, store, cny10
):
    give_points(member, store, 999)
    message = refusal(post_redeem(member_client))
    assert message == (
        "You do not have enough points for this reward: it costs 1000 points and you have "
        "999 available, so you need 1 more."
    )
    assert nothing_redeemed()
    assert balance_of(member) == 999


def test_a_negative_balance_is_refused(member_client, member, store, cny10):
    give_points(member, store, 1000)
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    return_record(
        store=store, receipt_no="RT1", original_receipt_no="R1", amount=1000, occurred_at=NOW
    )
    assert balance_of(member) == -1000
    message = refusal(post_redeem(member_client))
    assert message == (
        "Your points balance is negative by 1000 points, so rewards cannot be redeemed yet. "
        "The points you earn pay this back first."
    )
    assert Coupon.objects.count() == 1
    assert balance_of(member) == -1000


def test_out_of_stock_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    cny10.stock = 0
    cny10.save()
    assert refusal(post_redeem(member_client)) == "Sorry, this reward has just run out."
    assert nothing_redeemed()
    assert balance_of(member) == 5000


def test_the_limit_per_member_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    cny10.per_member_limit = 1
    cny10.save()
    reward_redeem(member=member, reward=cny10, idempotency_key="k1")
    message = refusal(post_redeem(member_client))
    assert message == "You have already redeemed this reward as many times as allowed."
    assert Coupon.objects.count() == 1
    assert balance_of(member) == 4000


def test_a_reward_above_my_tier_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    cny10.min_tier_rank = 3
    cny10.save()
    assert refusal(post_redeem(member_client)) == "This reward is not available to your tier."
    assert nothing_redeemed()


def test_a_withdrawn_or_ended_reward_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    cny10.available_until = NOW - datetime.timedelta(minutes=1)
    cny10.save()
    assert refusal(post_redeem(member_client)) == "This reward is not available at the moment."
    cny10.available_until = None
    cny10.is_active = False
    cny10.save()
    assert refusal(post_redeem(member_client)) == "This reward is not available at the moment."
    assert nothing_redeemed()


def test_a_frozen_member_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.FROZEN)
    message = refusal(post_redeem(member_client))
    assert message.startswith("Your membership is frozen")
    assert nothing_redeemed()


def test_a_missing_or_forged_key_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    for key in ("", "not-a-uuid"):
        message = refusal(post_redeem(member_client, key=key))
        assert message.startswith("This confirmation has expired")
    assert nothing_redeemed()


def test_a_key_used_for_another_reward_is_refused(member_client, member, store, cny10):
    give_points(member, store, 5000)
    Reward.objects.create(
        code="TEA", kind=Reward.Kind.GIFT, name_zh="茶", name_en="Tea set", points_price=100
    )
    key = "6f1c1e1e-3b1a-4b0e-9a51-6b7f0e0d2c11"
    post_redeem(member_client, code="CNY10", key=key)
    message = refusal(post_redeem(member_client, code="TEA", key=key))
    assert message.startswith("This confirmation has expired")
    assert Coupon.objects.count() == 1


def test_the_confirmation_page_of_an_unaffordable_reward_has_no_button(
    member_client, member, store, cny10
):
    give_points(member, store, 300)
    html = page(member_client.get(reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})))
    assert "You need 700 more points for this reward." in text(html)
    assert "Confirm: spend" not in html
    assert 'name="idempotency_key"' not in html


def test_an_unknown_reward_is_404(member_client):
    response = member_client.get(reverse("portal:reward-redeem", kwargs={"reward_code": "NOPE"}))
    assert response.status_code == 404
    assert post_redeem(member_client, code="NOPE").status_code == 404


# --- access ---------------------------------------------------------------------------------


def test_rewards_pages_need_a_login_and_a_member(client, staff_user, cny10):
    rewards_url = reverse("portal:rewards")
    redeem_url = reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"})
    form = {"idempotency_key": "6f1c1e1e-3b1a-4b0e-9a51-6b7f0e0d2c11"}
    for response in (
        client.get(rewards_url),
        client.get(redeem_url),
        client.post(redeem_url, form),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    client.force_login(staff_user)
    for response in (
        client.get(rewards_url),
        client.get(redeem_url),
        client.post(redeem_url, form),
    ):
        assert "This account has no member card" in page(response)
    assert nothing_redeemed()


def test_rewards_pages_have_no_inline_styles_or_scripts(member_client, member, store, cny10):
    give_points(member, store, 1500)
    for url in (
        reverse("portal:rewards"),
        reverse("portal:reward-redeem", kwargs={"reward_code": "CNY10"}),
    ):
        html = page(member_client.get(url))
        assert " style=" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
