"""Points that are not earned by spending: sign-up bonus, completed profile, referral.

Amounts and the referral cap come from the `EarningPolicy`; 0 turns a rule off. Each bonus
has an idempotency key naming its business identity (`rule:signup:<member id>`), so it is
posted at most once per member however often the triggering change is replayed.

The member services call `on_member_enrolled` / `on_member_profile_changed` through the
hooks in members/hooks.py (registered in points/apps.py), inside their own transaction:
the bonus commits with the enrolment or profile change. The referral bonus is posted by
`purchase_record` for the referee's first purchase, in the purchase's transaction.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from members.models import Member
from tiers.models import QualifyingActivity
from tiers.services import tier_activity_record, tier_upgrade_check

from .earning import policy_get
from .ledger import BUSINESS_TZ, account_lock, fingerprint, points_credit, transaction_replayed
from .models import Account, EarningPolicy, LedgerTransaction, Purchase

PROFILE_FIELDS = ("name", "birthday", "gender", "city", "email")


def _rule_credit(
    *,
    member: Member,
    rule: str,
    subject_id: int,
    points: int,
    occurred_at: datetime.datetime,
    source_ref: str,
) -> LedgerTransaction | None:
    """Post one rule bonus to `member`, unless the key `rule:<rule>:<subject>` was posted."""
    key = f"rule:{rule}:{subject_id}"
    # Only the rule and its subject: a retry after the policy amount changed is still a retry.
    request_fingerprint = fingerprint({"rule": rule, "subject": subject_id})
    account = account_lock(member=member)
    if transaction_replayed(key=key, request_fingerprint=request_fingerprint) is not None:
        return None
    txn = points_credit(
        account=account,
        points=points,
        kind=LedgerTransaction.Kind.EARN,
        counter_kind=Account.Kind.ISSUANCE,
        key=key,
        request_fingerprint=request_fingerprint,
        source=LedgerTransaction.Source.RULE,
        source_ref=source_ref,
        reason=rule,
        occurred_at=occurred_at,
    )
    # Bonus points are points earned: they count towards tiers like a purchase's.
    tier_activity_record(
        member=member,
        occurred_at=occurred_at,
        points=points,
        source=QualifyingActivity.Source.BONUS,
    )
    tier_upgrade_check(member=member, at=occurred_at)
    return txn


def profile_is_complete(*, member: Member) -> bool:
    return all(getattr(member, field) for field in PROFILE_FIELDS)


def signup_bonus_post(
    *, member: Member, policy: EarningPolicy | None = None
) -> LedgerTransaction | None:
    """The sign-up bonus, once per member; members brought in by a CSV import get none."""
    policy = policy or policy_get()
    if (
        not policy.signup_bonus
        or member.enrolment_channel == Member.Channel.IMPORT
        or member.status != Member.Status.ACTIVE
    ):
        return None
    return _rule_credit(
        member=member,
        rule="signup",
        subject_id=member.pk,
        points=policy.signup_bonus,
        occurred_at=member.enrolled_at or timezone.now(),
        source_ref="signup",
    )


def profile_bonus_post(
    *, member: Member, policy: EarningPolicy | None = None
) -> LedgerTransaction | None:
    """The completed-profile bonus, the first time name, birthday, gender, city and e-mail
    are all filled; emptying a field and filling it again earns nothing more."""
    policy = policy or policy_get()
    if (
        not policy.profile_bonus
        or member.status != Member.Status.ACTIVE
        or not profile_is_complete(member=member)
    ):
        return None
    return _rule_credit(
        member=member,
        rule="profile",
        subject_id=member.pk,
        points=policy.profile_bonus,
        occurred_at=timezone.now(),
        source_ref="profile",
    )


def referral_referrer(*, member: Member, policy: EarningPolicy) -> Member | None:
    """The referrer to pay if `member` is about to make a first purchase, else None.

    Read before the purchase's locks are taken, so `purchase_record` can lock the two
    accounts in member-id order; the purchase re-checks "first" under the lock.
    """
    if not policy.referral_bonus or not policy.referral_cap_per_year or not member.referrer_id:
        return None
    if Purchase.objects.filter(member=member).exists():
        return None
    return Member.objects.filter(pk=member.referrer_id, status=Member.Status.ACTIVE).first()


def _year_bounds(at: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    year = at.astimezone(BUSINESS_TZ).year
    start = datetime.datetime(year, 1, 1, tzinfo=BUSINESS_TZ)
    return start, start.replace(year=year + 1)


def referral_bonus_post(
    *,
    referrer: Member,
    referee: Member,
    occurred_at: datetime.datetime,
    policy: EarningPolicy | None = None,
) -> LedgerTransaction | None:
    """Pay the referrer for the referee's first purchase, within the yearly cap.

    Run with the referrer's account locked (taken here if the caller did not), so two
    referees buying at once cannot both take the last place under the cap.
    """
    policy = policy or policy_get()
    if not policy.referral_bonus or not policy.referral_cap_per_year:
        return None
    account_lock(member=referrer)
    start, end = _year_bounds(occurred_at)
    paid = LedgerTransaction.objects.filter(
        member=referrer,
        source=LedgerTransaction.Source.RULE,
        idempotency_key__startswith="rule:referral:",
        occurred_at__gte=start,
        occurred_at__lt=end,
    ).count()
    if paid >= policy.referral_cap_per_year:
        return None
    return _rule_credit(
        member=referrer,
        rule="referral",
        subject_id=referee.pk,
        points=policy.referral_bonus,
        occurred_at=occurred_at,
        source_ref=referee.member_no,
    )


def on_member_enrolled(*, member: Member) -> None:
    policy = policy_get()
    signup_bonus_post(member=member, policy=policy)
    profile_bonus_post(member=member, policy=policy)


def on_member_profile_changed(*, member: Member) -> None:
    profile_bonus_post(member=member)
