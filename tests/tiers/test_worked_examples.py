"""Tiers, worked through with the clock moved: what a member, a cashier or an auditor would
check after each step. Levels are the defaults of PRODUCT.md (seeded by migration):
Silver ¥2,000 / 2,000 points (keep with 1,600), Gold 8,000 (6,400), Platinum 20,000."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from members.models import AuditEntry
from points.birthday import birthday_gifts_issue, birthday_notices_send
from points.models import BirthdayGift, CategoryRate, Coupon
from points.services import LineInput, purchase_record, return_record
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import MemberTier, TierHistory, TierLevel, TierNotice, TierPolicy
from tiers.selectors import member_tier, member_tier_progress
from tiers.services import TierError, tier_evaluate, tier_override_set

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(
        datetime.date.fromisoformat(day), datetime.time(hour), tzinfo=SHANGHAI
    )


@pytest.fixture
def store(db):
    return StoreFactory(code="SH001")


@pytest.fixture
def member(db):
    return MemberFactory(consent_sms=True, birthday=datetime.date(1990, 3, 15))


class Till:
    def __init__(self, store):
        self.store = store
        self.receipts = 0

    def buy(self, member, amount, when, lines=()):
        self.receipts += 1
        return purchase_record(
            member=member,
            store=self.store,
            receipt_no=f"R{self.receipts}",
            occurred_at=when,
            now=when,
            amount=Decimal(amount),
            lines=list(lines),
        ).purchase


@pytest.fixture
def till(store):
    return Till(store)


def tier_code(member) -> str:
    return member_tier(member=member).level.code


def reasons(member) -> list[tuple[str, str]]:
    return [
        (h.reason, h.to_level.code)
        for h in TierHistory.objects.filter(member=member).order_by("at", "id")
    ]


def evaluate(day: str):
    return tier_evaluate(business_day=datetime.date.fromisoformat(day))


def test_upgrade_by_spend_is_immediate_and_lasts_twelve_months(
    till, member, sms_outbox, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(at("2026-02-01", 12), tick=False)  # not quiet hours
    till.buy(member, "1500", at("2026-01-10"))
    assert tier_code(member) == "regular"
    # The message goes out after the purchase commits.
    with django_capture_on_commit_callbacks(execute=True):
        till.buy(member, "600", at("2026-02-01"))
    info = member_tier(member=member)
    assert info.level.code == "silver"
    assert info.valid_until == datetime.date(2027, 1, 31)
    assert reasons(member) == [("upgrade", "silver")]
    # The member is told once, by SMS (the channel they agreed to).
    assert len([m for m in sms_outbox if "银卡会员" in m.text]) == 1
    assert TierNotice.objects.get(member=member).sent_at is not None
    # The next purchase earns at Silver's ×1.2.
    assert till.buy(member, "100", at("2026-02-02")).points_earned == 120


def test_spend_older_than_twelve_months_does_not_count(till, member):
    till.buy(member, "1500", at("2026-01-10"))
    till.buy(member, "600", at("2027-01-11"))
    assert tier_code(member) == "regular"


def test_upgrade_by_points_earned(till, member):
    CategoryRate.objects.create(category="cosmetics", rate=Decimal(3))
    purchase = till.buy(
        member,
        "700",
        at("2026-05-01"),
        [LineInput(sku="SKU1", amount=Decimal(700), category="cosmetics")],
    )
    assert purchase.points_earned == 2100
    assert tier_code(member) == "silver"


def test_one_purchase_can_jump_two_levels(till, member):
    till.buy(member, "8500", at("2026-05-20"))
    assert tier_code(member) == "gold"
    assert reasons(member) == [("upgrade", "gold")]
    history = TierHistory.objects.get(member=member)
    assert history.from_level.code == "regular"


def test_retention_met_renews_for_twelve_months(till, member):
    till.buy(member, "2000", at("2026-01-10"))
    till.buy(member, "1700", at("2026-06-01"))
    assert member_tier(member=member).valid_until == datetime.date(2027, 1, 9)
    evaluate("2027-01-09")  # the last day is not over yet: nothing to decide
    assert member_tier(member=member).valid_until == datetime.date(2027, 1, 9)
    result = evaluate("2027-01-10")
    assert (result.retained, result.downgraded) == (1, 0)
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until) == ("silver", datetime.date(2028, 1, 9))
    assert reasons(member)[-1] == ("retained", "silver")


def test_the_purchase_that_earned_a_tier_does_not_also_keep_it(till, member):
    till.buy(member, "8000", at("2026-01-10"))  # Gold; retention needs 6,400 *after* this
    till.buy(member, "3000", at("2026-09-01"))
    evaluate("2027-01-10")
    info = member_tier(member=member)
    # One level down (soft landing), though 3,000 only qualifies for Silver anyway.
    assert (info.level.code, info.valid_until) == ("silver", datetime.date(2028, 1, 9))
    assert reasons(member)[-1] == ("downgrade", "silver")


def test_retention_missed_drops_one_level_even_with_little_spend(till, member):
    till.buy(member, "20000", at("2026-01-10"))  # Platinum
    evaluate("2027-01-10")
    assert tier_code(member) == "gold"  # not straight to regular
    evaluate("2028-01-10")
    assert tier_code(member) == "silver"
    evaluate("2029-01-10")
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until) == ("regular", None)
    assert [r for r, _ in reasons(member)] == ["upgrade", "downgrade", "downgrade", "downgrade"]


def test_drop_to_the_qualified_level_is_the_alternative_setting(till, member):
    TierPolicy.objects.create(downgrade=TierPolicy.Downgrade.QUALIFIED)
    till.buy(member, "20000", at("2026-01-10"))
    till.buy(member, "2500", at("2026-10-01"))
    evaluate("2027-01-10")
    assert tier_code(member) == "silver"  # what 2,500 in 12 months qualifies for


def test_a_return_that_pushes_spend_below_retention_downgrades_at_the_anniversary(till, member):
    till.buy(member, "2000", at("2026-01-10"))
    # ¥1,500 at Silver's ×1.2 earns 1,800 points: retention (1,600 spend or points) is met.
    till.buy(member, "1500", at("2026-06-01"))
    assert member_tier_progress(member=member, now=at("2026-07-01")).retain_goal.met
    return_record(
        store=till.store,
        receipt_no="RET1",
        original_receipt_no="R2",
        amount=Decimal(300),
        occurred_at=at("2026-07-01"),
    )
    # Now ¥1,200 spent and 1,800 − 360 = 1,440 points earned: short on both.
    progress = member_tier_progress(member=member, now=at("2026-07-02"))
    assert progress.retain_goal.spend_needed == Decimal(400)
    assert progress.retain_goal.points_needed == 160
    assert tier_code(member) == "silver"  # nothing changes before the anniversary
    evaluate("2027-01-10")
    assert tier_code(member) == "regular"


def test_a_late_run_decides_as_of_the_anniversary(till, member):
    till.buy(member, "2000", at("2026-01-10"))
    till.buy(member, "1000", at("2026-06-01"))
    # Spent after the anniversary: too late to keep Silver, though the run is later still.
    till.buy(member, "900", at("2027-01-12"))
    evaluate("2027-01-20")
    assert reasons(member)[1] == ("downgrade", "regular")
    assert TierHistory.objects.filter(reason="downgrade").get().at == at("2027-01-10", 0)


def test_a_run_years_late_decides_every_anniversary_in_turn(till, member):
    till.buy(member, "2000", at("2026-01-10"))
    till.buy(member, "1700", at("2026-06-01"))
    till.buy(member, "1700", at("2027-06-01"))
    evaluate("2029-02-01")
    assert [r for r, _ in reasons(member)] == ["upgrade", "retained", "retained", "downgrade"]
    assert tier_code(member) == "regular"


def test_a_second_run_for_the_same_date_changes_nothing(till, member):
    till.buy(member, "8000", at("2026-01-10"))
    first = evaluate("2027-01-10")
    history = TierHistory.objects.count()
    second = evaluate("2027-01-10")
    assert first.changed == 1 and second.changed == 0
    assert TierHistory.objects.count() == history


def test_spend_that_failed_to_keep_a_tier_does_not_win_it_back(till, member):
    till.buy(member, "8000", at("2026-01-10"))
    till.buy(member, "500", at("2026-12-01"))
    evaluate("2027-01-10")
    assert tier_code(member) == "silver"
    # The rolling 12 months still hold ¥8,500, but that spend has had its year.
    till.buy(member, "100", at("2027-01-11"))
    assert tier_code(member) == "silver"
    evaluate("2027-01-12")
    assert tier_code(member) == "silver"


def test_nightly_sweep_upgrades_members_whose_purchases_came_in_bulk(member):
    from tiers.models import QualifyingActivity

    QualifyingActivity.objects.create(
        member=member, occurred_at=at("2026-04-01"), spend=Decimal(9000), source="import"
    )
    result = evaluate("2026-04-02")
    assert result.upgraded == 1
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until) == ("gold", datetime.date(2027, 4, 1))


def test_lowering_a_level_requirement_upgrades_members_at_the_next_run(till, member):
    till.buy(member, "1500", at("2026-04-01"))
    silver = TierLevel.objects.get(code="silver")
    silver.qualify_spend = silver.qualify_points = 1000
    silver.save()
    assert tier_code(member) == "regular"  # not silently, not before the run
    evaluate("2026-04-02")
    assert tier_code(member) == "silver"


def test_a_manual_tier_lasts_until_its_end_date_then_follows_the_spend(till, member, time_machine):
    staff = UserFactory(is_staff=True)
    till.buy(member, "2500", at("2026-05-01"))
    assert tier_code(member) == "silver"
    time_machine.move_to(at("2026-05-05"), tick=False)
    tier_override_set(
        member=member,
        level=TierLevel.objects.get(code="platinum"),
        until=datetime.date(2026, 5, 31),
        reason="VIP complaint handled",
        actor=staff,
    )
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until, info.is_override) == (
        "platinum",
        datetime.date(2026, 5, 31),
        True,
    )
    assert AuditEntry.objects.filter(action="tier.override", member=member).count() == 1
    assert till.buy(member, "100", at("2026-05-06")).points_earned == 180  # Platinum ×1.8
    evaluate("2026-05-31")
    assert tier_code(member) == "platinum"
    evaluate("2026-06-01")
    info = member_tier(member=member)
    assert (info.level.code, info.is_override) == ("silver", False)
    # Back to the Silver earned on 2026-05-01, valid as before.
    assert info.valid_until == datetime.date(2027, 4, 30)
    assert reasons(member)[-2:] == [("manual", "platinum"), ("downgrade", "silver")]


def test_a_manual_tier_needs_a_reason_and_a_future_end(member, time_machine):
    time_machine.move_to(at("2026-03-05"), tick=False)
    staff = UserFactory(is_staff=True)
    gold = TierLevel.objects.get(code="gold")
    with pytest.raises(TierError):
        tier_override_set(
            member=member, level=gold, until=datetime.date(2026, 4, 1), reason=" ", actor=staff
        )
    with pytest.raises(TierError):
        tier_override_set(
            member=member, level=gold, until=datetime.date(2026, 3, 4), reason="x", actor=staff
        )
    assert not MemberTier.objects.filter(member=member).exists()
    assert not TierHistory.objects.exists()


def test_birthday_coupon_once_a_year_for_silver_and_above(
    till, member, store, sms_outbox, time_machine
):
    regular = MemberFactory(birthday=datetime.date(1985, 3, 2))
    other_month = MemberFactory(birthday=datetime.date(1985, 4, 2))
    till.buy(member, "2000", at("2026-02-10"))
    till.buy(other_month, "2000", at("2026-02-10"))
    sms_outbox.clear()
    time_machine.move_to(at("2026-03-01", 9), tick=False)
    assert birthday_gifts_issue(business_date=datetime.date(2026, 3, 1)) == 1
    assert birthday_notices_send(year=2026) == 1
    # The job runs every day: the 2nd changes nothing, and nobody is told twice.
    assert birthday_gifts_issue(business_date=datetime.date(2026, 3, 2)) == 0
    assert birthday_notices_send(year=2026) == 0
    coupon = Coupon.objects.get(source=Coupon.Source.BIRTHDAY)
    assert coupon.member == member
    assert coupon.valid_until == at("2026-04-01", 0)
    assert not Coupon.objects.filter(member__in=[regular, other_month]).exists()
    assert len([m for m in sms_outbox if "生日" in m.text or "birthday" in m.text]) == 1
    # Next year, another one.
    till.buy(member, "2000", at("2026-12-01"))
    time_machine.move_to(at("2027-03-01", 9), tick=False)
    assert birthday_gifts_issue(business_date=datetime.date(2027, 3, 1)) == 1


def test_a_birthday_member_without_consent_gets_the_coupon_and_no_message(
    till, store, sms_outbox, time_machine
):
    quiet = MemberFactory(consent_sms=False, birthday=datetime.date(1992, 3, 8))
    told = MemberFactory(consent_sms=True, birthday=datetime.date(1993, 3, 9))
    for silver in (quiet, told):
        till.buy(silver, "2000", at("2026-02-10"))
    sms_outbox.clear()
    time_machine.move_to(at("2026-03-01", 9), tick=False)
    assert birthday_gifts_issue(business_date=datetime.date(2026, 3, 1)) == 2
    assert birthday_notices_send(year=2026) == 2  # both settled, one of them by SMS
    assert [m.phone for m in sms_outbox] == [told.phone]
    assert not BirthdayGift.objects.filter(notified_at__isnull=True).exists()
    assert Coupon.objects.filter(member=quiet, source=Coupon.Source.BIRTHDAY).exists()
    assert birthday_notices_send(year=2026) == 0


def test_after_a_downgrade_the_spend_since_the_lost_upgrade_still_counts(till, member):
    till.buy(member, "8000", at("2026-01-10"))  # Gold
    # ¥4,000 (6,000 points at ×1.5): short of the 6,400 that keep Gold.
    till.buy(member, "4000", at("2026-06-01"))
    evaluate("2027-01-10")
    assert tier_code(member) == "silver"
    # ¥4,000 + ¥4,000 in the rolling 12 months, not counting the purchase that won Gold.
    till.buy(member, "4000", at("2027-02-01"))
    assert tier_code(member) == "gold"


def test_when_a_manual_tier_ends_the_earned_tier_comes_back(till, member, time_machine):
    till.buy(member, "2000", at("2026-01-10"))  # Silver until 2027-01-09
    time_machine.move_to(at("2026-05-05"), tick=False)
    tier_override_set(
        member=member,
        level=TierLevel.objects.get(code="gold"),
        until=datetime.date(2026, 5, 31),
        reason="store opening event",
        actor=UserFactory(is_staff=True),
    )
    evaluate("2026-06-01")
    info = member_tier(member=member)
    # Not Regular (what the last 12 months after the upgrade hold): Silver, as it was.
    assert (info.level.code, info.valid_until, info.is_override) == (
        "silver",
        datetime.date(2027, 1, 9),
        False,
    )
    till.buy(member, "1700", at("2026-07-01"))
    evaluate("2027-01-10")
    assert reasons(member)[-1] == ("retained", "silver")


def test_a_merge_keeps_the_better_tier_and_all_the_spend(till, member):
    from django.db import transaction

    from points.services import member_merge

    duplicate = MemberFactory()
    till.buy(duplicate, "8000", at("2026-04-01"))  # the duplicate is Gold
    till.buy(member, "1500", at("2026-04-02"))
    with transaction.atomic():
        member_merge(source=duplicate, target=member, actor=UserFactory(is_staff=True))
    info = member_tier(member=member)
    assert (info.level.code, info.valid_until) == ("gold", datetime.date(2027, 3, 31))
    assert not MemberTier.objects.filter(member=duplicate).exists()


def test_an_upgrade_during_quiet_hours_is_told_at_nine(
    till, member, sms_outbox, time_machine, django_capture_on_commit_callbacks
):
    from tiers.services import tier_notices_send

    time_machine.move_to(at("2026-05-01", 22), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        till.buy(member, "2500", at("2026-05-01", 22))
    assert tier_code(member) == "silver"
    assert not sms_outbox
    assert tier_notices_send() == 1
    assert tier_notices_send() == 0
    assert len(sms_outbox) == 1


def test_a_nightly_change_for_a_member_without_consent_is_settled_without_a_message(
    till, member, sms_outbox
):
    from tiers.models import TierNotice
    from tiers.services import tier_notices_send

    quiet = MemberFactory(consent_sms=False)
    for buyer in (quiet, member):
        till.buy(buyer, "2500", at("2026-01-10"))  # Silver, valid to 2027-01-09
    assert tier_notices_send() == 2  # the upgrades
    evaluate("2027-01-10")  # nothing spent since: both drop to the base level
    assert tier_code(quiet) == tier_code(member) == "regular"
    sms_outbox.clear()
    assert tier_notices_send() == 2
    assert [m.phone for m in sms_outbox] == [member.phone]
    notices = TierNotice.objects.filter(history__reason="downgrade")
    assert dict(notices.values_list("member_id", "channels")) == {quiet.pk: [], member.pk: ["sms"]}
    assert not TierNotice.objects.filter(sent_at__isnull=True).exists()
    assert tier_notices_send() == 0
