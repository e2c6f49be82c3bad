"""Launching a campaign (the frozen audience and its holdout) and sending it in batches."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import translation

from campaigns import messages
from campaigns.holdout import holdout_draw
from campaigns.launch import (
    CampaignNotLaunchable,
    campaign_launch,
    campaign_send,
    campaigns_tick,
)
from campaigns.models import Campaign, CampaignMember, OutboxMessage
from campaigns.promotions import promotions_cache_clear
from members.models import Member
from points.jobs import reconcile_job
from points.models import Account, Coupon, LedgerTransaction, Lot, Reward
from points.selectors import ledger_member_label
from tests.factories import MemberFactory, StoreFactory
from tiers.models import MemberTier, TierLevel

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 5, 12, 10, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    yield
    # The promotions launched here are rolled back: later tests must not see them cached.
    promotions_cache_clear()


def outbox(campaign: Campaign) -> dict[int, list[tuple[str, str]]]:
    """(channel, status) of the campaign's messages, by member."""
    found: dict[int, list[tuple[str, str]]] = {}
    for member_id, channel, status in OutboxMessage.objects.filter(campaign=campaign).values_list(
        "member_id", "channel", "status"
    ):
        found.setdefault(member_id, []).append((channel, status))
    return found


def members(count: int, **fields) -> list[Member]:
    return Member.objects.bulk_create([MemberFactory.build(**fields) for _ in range(count)])


def campaign_make(**fields) -> Campaign:
    defaults = {
        "name": "五月会员日",
        "kind": Campaign.Kind.BONUS,
        "bonus_points": 200,
        "status": Campaign.Status.SCHEDULED,
        "scheduled_at": NOW,
        "salt": "fixed-salt",
        "message_body_zh": "{name}您好，会员日积分已到账。{coupon_code}",
        "message_body_en": "Hello {name}, your member-day points are in. {coupon_code}",
    }
    return Campaign.objects.create(**{**defaults, **fields})


def arms(campaign: Campaign) -> dict[int, str]:
    return dict(CampaignMember.objects.filter(campaign=campaign).values_list("member_id", "arm"))


def reconciles() -> bool:
    _checked, details = reconcile_job(NOW.date())
    return "failed" not in details and not details["mismatches"]


# --- The holdout ------------------------------------------------------------------------


def test_the_holdout_is_drawn_from_the_hash_and_a_second_launch_draws_nothing_again():
    everyone = members(40)
    campaign = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(25)), now=NOW)

    rows = CampaignMember.objects.filter(campaign=campaign)
    assert rows.count() == campaign.audience_size == 40
    for row in rows:
        # The stored draw is the hash of the salt and the member; control below 25 %.
        assert row.draw == holdout_draw(salt="fixed-salt", member_id=row.member_id)
        assert row.arm == ("control" if row.draw < 0.25 else "treatment")
    assert campaign.control_size == rows.filter(arm="control").count()
    before = arms(campaign)

    # A second launch (a worker killed after the first committed) finds it launched.
    again = campaign_launch(campaign=campaign, now=NOW + datetime.timedelta(minutes=5))
    assert again.launched_at == NOW
    assert arms(campaign) == before
    assert CampaignMember.objects.count() == len(everyone)


def test_the_same_salt_gives_every_member_the_same_arm_in_a_new_campaign():
    members(30)
    first = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(30)), now=NOW)
    second = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(30)), now=NOW)
    assert arms(first) == arms(second)
    # A campaign launched without a salt gets its own, and with it other arms.
    third = campaign_launch(campaign=campaign_make(salt="", holdout_percent=Decimal(30)), now=NOW)
    assert len(third.salt) == 32
    assert arms(third) != arms(first)


def test_about_a_tenth_of_a_few_thousand_members_are_held_out():
    members(3000)
    campaign = campaign_launch(campaign=campaign_make(salt="proportion"), now=NOW)
    # Binomial(3000, 0.1): mean 300, sd √(3000·0.1·0.9) ≈ 16.4; ±4.5 sd is [226, 374].
    assert campaign.audience_size == 3000
    assert abs(campaign.control_size - 300) <= 4.5 * math.sqrt(3000 * 0.1 * 0.9)
    assert CampaignMember.objects.filter(arm="control").count() == campaign.control_size


def test_only_active_members_are_targeted():
    active = members(3)
    MemberFactory(status=Member.Status.CLOSED)
    MemberFactory(status=Member.Status.FROZEN)
    campaign = campaign_launch(campaign=campaign_make(), now=NOW)
    assert set(arms(campaign)) == {m.pk for m in active}


def test_a_draft_a_cancelled_or_an_unapproved_campaign_is_not_launched():
    members(2)
    for fields in (
        {"status": Campaign.Status.DRAFT},
        {"status": Campaign.Status.CANCELLED},
        {"approval_required": True},
    ):
        campaign = campaign_make(**fields)
        with pytest.raises(CampaignNotLaunchable):
            campaign_launch(campaign=campaign, now=NOW)
        assert not CampaignMember.objects.filter(campaign=campaign).exists()
        campaign.refresh_from_db()
        assert campaign.launched_at is None


# --- Audiences ----------------------------------------------------------------------------


def test_a_segment_campaign_targets_the_segments_members_who_are_active():
    from campaigns.models import Segment

    women = members(3, gender="F")
    members(2, gender="M")
    MemberFactory(gender="F", status=Member.Status.CLOSED)
    segment = Segment.objects.create(
        name="女性会员",
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "gender", "op": "eq", "value": "F"}]},
        },
    )

    campaign = campaign_launch(campaign=campaign_make(segment=segment), now=NOW)

    assert set(arms(campaign)) == {m.pk for m in women}
    assert campaign.audience_size == 3


def test_a_promotion_for_tiers_targets_their_members_the_base_level_included():
    gold = TierLevel.objects.get(code="gold")
    silver = TierLevel.objects.get(code="silver")
    regular = TierLevel.objects.order_by("rank").first()
    at_gold, at_silver, with_no_tier = MemberFactory(), MemberFactory(), MemberFactory()
    for member, level in ((at_gold, gold), (at_silver, silver)):
        MemberTier.objects.create(
            member=member,
            level=level,
            achieved_at=NOW,
            period_start=NOW,
            valid_until=datetime.date(2027, 5, 31),
        )
    promotion = {
        "kind": Campaign.Kind.MULTIPLIER,
        "bonus_points": None,
        "multiplier": Decimal(2),
        "starts_at": NOW,
        "ends_at": NOW + datetime.timedelta(days=7),
    }

    gold_only = campaign_launch(campaign=campaign_make(tiers=["gold"], **promotion), now=NOW)
    with_base = campaign_launch(
        campaign=campaign_make(tiers=["gold", regular.code], **promotion), now=NOW
    )

    assert set(arms(gold_only)) == {at_gold.pk}
    assert set(arms(with_base)) == {at_gold.pk, with_no_tier.pk}


# --- Bonus points -----------------------------------------------------------------------


def test_a_bonus_campaign_posts_to_the_treated_only_once_each_and_completes():
    members(12, consent_sms=True)
    campaign = campaign_launch(
        campaign=campaign_make(holdout_percent=Decimal(25), send_sms=True), now=NOW
    )
    treated = {m for m, arm in arms(campaign).items() if arm == "treatment"}
    held_out = {m for m, arm in arms(campaign).items() if arm == "control"}
    assert treated and held_out

    done = campaign_send(campaign=campaign, now=NOW, batch_size=5)

    assert done == len(treated)
    txns = LedgerTransaction.objects.filter(source="campaign")
    assert {t.idempotency_key for t in txns} == {
        f"campaign:{campaign.pk}:member:{m}" for m in treated
    }
    assert all(t.member_amount == 200 and t.kind == "earn" for t in txns)
    assert dict(Account.objects.filter(kind="member").values_list("member_id", "balance")) == {
        m: 200 for m in treated
    }
    # The points are spendable now and live a year, like earned points.
    assert set(Lot.objects.values_list("points", "available_at")) == {(200, NOW)}
    with translation.override("en"):
        assert ledger_member_label(txn=txns.first()) == "Campaign bonus"
    # The holdout got nothing: no points, no message.
    assert not Account.objects.filter(member_id__in=held_out).exists()
    assert outbox(campaign) == {m: [("sms", "pending")] for m in treated}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at == NOW
    assert not CampaignMember.objects.filter(arm="treatment", done_at__isnull=True).exists()
    assert not CampaignMember.objects.filter(arm="control", done_at__isnull=False).exists()
    assert reconciles()


def test_a_send_stopped_half_way_and_run_again_posts_each_member_once():
    members(9, consent_sms=True)
    campaign = campaign_launch(
        campaign=campaign_make(holdout_percent=Decimal(0), send_sms=True), now=NOW
    )
    enqueue = messages.messages_enqueue

    def cancel_after_first_batch(**kwargs):
        enqueue(**kwargs)
        # A marketer cancels while the first batch is being sent.
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(messages, "messages_enqueue", cancel_after_first_batch, raising=False)
        assert campaign_send(campaign=campaign, now=NOW, batch_size=4) == 4
    # Cancelled between batches: the first batch stands, nothing after it was sent.
    assert LedgerTransaction.objects.filter(source="campaign").count() == 4

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    assert campaign_send(campaign=campaign, now=NOW, batch_size=4) == 5
    # Every member's row done again (as if the commit of done_at had been lost): the
    # ledger keys stop a second posting.
    CampaignMember.objects.update(done_at=None)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    assert campaign_send(campaign=campaign, now=NOW, batch_size=4) == 9

    assert LedgerTransaction.objects.filter(source="campaign").count() == 9
    assert Account.objects.filter(kind="member").aggregate(total=Sum("balance"))["total"] == 1800
    # One message each, however often the batches ran.
    assert [len(sent) for sent in outbox(campaign).values()] == [1] * 9
    assert reconciles()


def test_a_member_closed_after_the_launch_gets_nothing():
    leaving, staying = members(2)
    campaign = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(0)), now=NOW)
    Member.objects.filter(pk=leaving.pk).update(status=Member.Status.CLOSED)

    campaign_send(campaign=campaign, now=NOW)

    assert list(LedgerTransaction.objects.values_list("member_id", flat=True)) == [staying.pk]
    assert not CampaignMember.objects.filter(done_at__isnull=True).exists()


# --- Coupons ----------------------------------------------------------------------------


@pytest.fixture
def reward(db):
    return Reward.objects.create(
        code="CPN20",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="20元券",
        name_en="¥20 off",
        points_price=2000,
        amount_off=Decimal(20),
        stock=3,
        per_member_limit=1,
        coupon_valid_days=14,
    )


def test_coupons_go_out_while_stock_lasts_within_the_per_member_limit(reward):
    first, has_one, *rest = members(6, consent_sms=True)
    Coupon.objects.create(
        code="HELD0000000000001",
        member=has_one,
        reward=reward,
        source=Coupon.Source.REDEMPTION,
        issued_at=NOW - datetime.timedelta(days=1),
        valid_until=NOW + datetime.timedelta(days=10),
    )
    campaign = campaign_launch(
        campaign=campaign_make(
            kind=Campaign.Kind.COUPON,
            bonus_points=None,
            reward=reward,
            holdout_percent=Decimal(0),
            send_sms=True,
        ),
        now=NOW,
    )

    campaign_send(campaign=campaign, now=NOW, batch_size=2)

    issued = Coupon.objects.filter(source=Coupon.Source.CAMPAIGN)
    # Stock 3: the first three members under the limit, by member id; has_one is at it.
    by_id = sorted([first, *rest], key=lambda m: m.pk)
    assert sorted(issued.values_list("member_id", flat=True)) == [m.pk for m in by_id[:3]]
    assert set(issued.values_list("valid_until", flat=True)) == {NOW + datetime.timedelta(days=14)}
    reward.refresh_from_db()
    assert reward.stock == 0
    # No points were spent or moved.
    assert not LedgerTransaction.objects.exists()
    # Each coupon is on its member's audience row; three treated members got none.
    rows = CampaignMember.objects.filter(campaign=campaign)
    assert {row.member_id: row.coupon_id for row in rows if row.coupon_id} == {
        c.member_id: c.pk for c in issued
    }
    assert rows.filter(coupon__isnull=True, done_at__isnull=False).count() == 3
    # The message is about the coupon: only the three members who got one are told, each
    # with its code.
    bodies = dict(OutboxMessage.objects.values_list("member_id", "body"))
    assert len(bodies) == 3
    for coupon in issued:
        assert coupon.code in bodies[coupon.member_id]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


# --- The tick ---------------------------------------------------------------------------


def test_a_campaign_coupon_counts_against_the_rewards_limit_at_the_till(reward):
    from points.services import LimitReached, reward_redeem

    (member,) = members(1, consent_sms=True)
    campaign = campaign_launch(
        campaign=campaign_make(
            kind=Campaign.Kind.COUPON, bonus_points=None, reward=reward, holdout_percent=0
        ),
        now=NOW,
    )
    campaign_send(campaign=campaign, now=NOW)
    assert Coupon.objects.filter(member=member, source=Coupon.Source.CAMPAIGN).count() == 1

    # The reward allows one per member: the campaign's coupon is that one.
    assert reward.per_member_limit == 1
    with pytest.raises(LimitReached):
        reward_redeem(member=member, reward=reward, idempotency_key="again", now=NOW)


def test_the_tick_starts_due_campaigns_and_leaves_the_others():
    members(4)
    due = campaign_make(holdout_percent=Decimal(0))
    later = campaign_make(scheduled_at=NOW + datetime.timedelta(minutes=1))
    waiting = campaign_make(approval_required=True)
    approved = campaign_make(approval_required=True, approved_at=NOW, holdout_percent=Decimal(0))
    draft = campaign_make(status=Campaign.Status.DRAFT, scheduled_at=None)

    result = campaigns_tick(now=NOW)

    assert result == {"launched": 2, "sent": 8, "completed": 0, "dispatched": 0}
    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {
        due.pk: "completed",
        later.pk: "scheduled",
        waiting.pk: "scheduled",
        approved.pk: "completed",
        draft.pk: "draft",
    }
    assert LedgerTransaction.objects.count() == 8
    # A second tick finds nothing to do.
    assert campaigns_tick(now=NOW)["sent"] == 0
    assert LedgerTransaction.objects.count() == 8


def test_the_tick_goes_on_with_a_running_campaign_and_ends_promotions_after_their_window():
    members(3)
    bonus = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(0)), now=NOW)
    promotion = campaign_launch(
        campaign=campaign_make(
            kind=Campaign.Kind.MULTIPLIER,
            bonus_points=None,
            multiplier=Decimal(2),
            starts_at=NOW,
            ends_at=NOW + datetime.timedelta(hours=2),
        ),
        now=NOW,
    )

    assert campaigns_tick(now=NOW + datetime.timedelta(minutes=1))["sent"] == 3 + 3 - (
        promotion.control_size
    )
    bonus.refresh_from_db()
    promotion.refresh_from_db()
    assert bonus.status == "completed"
    # A promotion runs until its window ends, then the tick completes it.
    assert promotion.status == "running"
    assert campaigns_tick(now=NOW + datetime.timedelta(hours=2))["completed"] == 1
    promotion.refresh_from_db()
    assert promotion.status == "completed"
    assert promotion.completed_at == NOW + datetime.timedelta(hours=2)


@pytest.mark.postgres
def test_a_tick_already_running_elsewhere_is_skipped(django_db_blocker):
    from django.db import connections

    from campaigns.launch import TICK_LOCK_KEY, TICK_LOCK_NAMESPACE

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [TICK_LOCK_NAMESPACE, TICK_LOCK_KEY])
        assert campaigns_tick(now=NOW) == {"skipped": True}
    finally:
        other.close()


def test_staff_see_which_campaign_posted_a_bonus():
    # The bonus is for the member, not for a purchase: no store, no receipt.
    StoreFactory()
    members(1)
    campaign = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(0)), now=NOW)
    campaign_send(campaign=campaign, now=NOW)
    txn = LedgerTransaction.objects.get()
    assert (txn.source, txn.source_ref, txn.reason) == ("campaign", str(campaign.pk), "五月会员日")


def test_the_tick_dispatches_the_messages_of_a_campaign_it_started(sms_outbox):
    members(3, consent_sms=True)
    members(1)  # no SMS consent: the message is recorded, never sent
    campaign = campaign_make(
        kind=Campaign.Kind.MESSAGE, bonus_points=None, holdout_percent=Decimal(0), send_sms=True
    )

    result = campaigns_tick(now=NOW)

    assert (result["launched"], result["sent"], result["dispatched"]) == (1, 4, 3)
    assert len(sms_outbox) == 3
    assert sorted(status for sent in outbox(campaign).values() for _c, status in sent) == [
        "no_consent",
        "sent",
        "sent",
        "sent",
    ]
    # Message only: nothing in the ledger.
    assert not LedgerTransaction.objects.exists()


@pytest.mark.postgres
def test_a_campaign_another_worker_is_sending_is_left_to_it():
    from django.db import connections

    from campaigns.launch import SEND_LOCK_NAMESPACE

    members(3)
    campaign = campaign_launch(campaign=campaign_make(holdout_percent=Decimal(0)), now=NOW)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [SEND_LOCK_NAMESPACE, campaign.pk])
        assert campaign_send(campaign=campaign, now=NOW) == 0
        assert not LedgerTransaction.objects.exists()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [SEND_LOCK_NAMESPACE, campaign.pk])
    finally:
        other.close()
    # Once that worker is done, the next send does it all.
    assert campaign_send(campaign=campaign, now=NOW) == 3
