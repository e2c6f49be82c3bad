"""The campaign lifecycle: draft → scheduled → running → completed / cancelled.

A draft is built and edited freely (`campaign_create`, `campaign_update`). Launching
(`campaign_schedule`) checks everything a send needs, estimates the cost and either schedules
it or, when its points cost passes CAMPAIGN_APPROVAL_COST, leaves it a draft waiting for an
administrator (`campaign_approve`). Any campaign not yet finished can be cancelled
(`campaign_cancel`): a send stops between batches and a multiplier promotion stops applying,
because the send and the promotion read the status. Every launch, approval and cancellation
is written to the audit log in the same transaction as the change.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.models import RiskBand
from members.models import Store, User
from members.services import audit_log
from tiers.models import TierLevel

from .holdout import holdout_salt
from .messages import campaign_messages_withdraw, message_template_check
from .models import Campaign
from .promotions import promotions_cache_clear
from .results import CostEstimate, campaign_needs_approval
from .segments import SegmentRuleError, segment_create
from .selectors import campaign_preview
from .tasks import campaign_start_task

APPROVE_PERMISSION = "campaigns.approve_campaign"

# The fields a form may set; everything else (status, times, sizes, salt) is the lifecycle's.
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "segment",
        "tiers",
        "stores",
        "categories",
        "bonus_points",
        "multiplier",
        "starts_at",
        "ends_at",
        "reward",
        "send_sms",
        "send_email",
        "send_portal",
        "message_subject_zh",
        "message_subject_en",
        "message_body_zh",
        "message_body_en",
        "holdout_percent",
        "conversion_window_days",
        "revenue_cap_percentile",
    }
)
LANGUAGES = ("zh", "en")
NON_FIELD = "__all__"


class CampaignError(Exception):
    """A domain error with a message fit to show to the person who caused it."""


class CampaignInvalid(CampaignError):
    """The campaign cannot be saved or launched as it is: messages per form field
    (NON_FIELD for the campaign as a whole)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class CampaignNotEditable(CampaignError):
    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        super().__init__(
            _("Only a draft can be changed; this campaign is %(status)s.")
            % {"status": campaign.get_status_display()}
        )


class CampaignStateError(CampaignError):
    """The action does not fit the campaign's state (launching a cancelled one…)."""


class ApprovalRefused(CampaignError):
    """The actor may not approve this campaign (no permission, or their own campaign)."""


# --- Checks -------------------------------------------------------------------------------


def _problems_add(problems: dict[str, list[str]], field: str, message: str) -> None:
    problems.setdefault(field, []).append(message)


def carries_message(campaign: Campaign) -> bool:
    """A message-only campaign is its message; any other kind carries one when a channel
    is ticked or a text is written."""
    if campaign.kind == Campaign.Kind.MESSAGE:
        return True
    return any(
        (
            campaign.send_sms,
            campaign.send_email,
            campaign.send_portal,
            *(getattr(campaign, f"message_body_{lang}").strip() for lang in LANGUAGES),
            *(getattr(campaign, f"message_subject_{lang}").strip() for lang in LANGUAGES),
        )
    )


def _shape_problems(campaign: Campaign) -> dict[str, list[str]]:
    """What even a draft must have: the kind's own figures (the table's constraints), so a
    draft is never refused by the database."""
    problems: dict[str, list[str]] = {}
    if campaign.kind not in Campaign.Kind.values:
        _problems_add(problems, "kind", _("Choose the kind of campaign."))
    if not (campaign.name or "").strip():
        _problems_add(problems, "name", _("Give the campaign a name."))
    if campaign.kind == Campaign.Kind.BONUS and not (campaign.bonus_points or 0) > 0:
        _problems_add(problems, "bonus_points", _("Give each member more than 0 points."))
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        if campaign.multiplier is None or campaign.multiplier <= 1:
            _problems_add(problems, "multiplier", _("A multiplier must be more than 1."))
        if campaign.starts_at is None:
            _problems_add(problems, "starts_at", _("Give the promotion a start."))
        if campaign.ends_at is None:
            _problems_add(problems, "ends_at", _("Give the promotion an end."))
        elif campaign.starts_at is not None and campaign.ends_at <= campaign.starts_at:
            _problems_add(problems, "ends_at", _("The promotion must end after it starts."))
    if campaign.segment_id is not None and campaign.tiers:
        # The audience is the segment or the tiers, never both silently: a tier condition
        # belongs in the segment's rules.
        _problems_add(
            problems,
            "tiers",
            _("Choose a segment or tiers, not both: put the tiers in the segment's rules."),
        )
    if campaign.kind == Campaign.Kind.COUPON and campaign.reward_id is None:
        _problems_add(problems, "reward", _("Choose the reward to issue as coupons."))
    if not Decimal(0) <= Decimal(campaign.holdout_percent) <= Decimal(50):
        _problems_add(problems, "holdout_percent", _("The holdout is 0% to 50% of the audience."))
    if not 1 <= (campaign.conversion_window_days or 0) <= 365:
        _problems_add(
            problems, "conversion_window_days", _("The conversion window is 1 to 365 days.")
        )
    if not Decimal(50) <= Decimal(campaign.revenue_cap_percentile) <= Decimal(100):
        _problems_add(
            problems,
            "revenue_cap_percentile",
            _("Cap revenue at a percentile from 50 to 100."),
        )
    return problems


def _message_problems(campaign: Campaign, problems: dict[str, list[str]]) -> None:
    if not (campaign.send_sms or campaign.send_email or campaign.send_portal):
        _problems_add(problems, "send_sms", _("Choose at least one channel for the message."))
    written = [lang for lang in LANGUAGES if getattr(campaign, f"message_body_{lang}").strip()]
    if not written:
        _problems_add(problems, "message_body_zh", _("Write the message in at least one language."))
    for lang in written:
        if campaign.send_email and not getattr(campaign, f"message_subject_{lang}").strip():
            _problems_add(problems, f"message_subject_{lang}", _("An e-mail needs a subject."))
    for lang in LANGUAGES:
        for part in ("subject", "body"):
            field = f"message_{part}_{lang}"
            for problem in message_template_check(template=getattr(campaign, field)):
                _problems_add(problems, field, problem)


def launch_problems(*, campaign: Campaign, at: datetime.datetime | None, now: datetime.datetime):
    """Everything that stands between this campaign and its launch at `at` (None: now), per
    form field; empty when it may launch."""
    problems = _shape_problems(campaign)
    promotion = campaign.kind == Campaign.Kind.MULTIPLIER
    if campaign.segment_id is None and not promotion:
        _problems_add(problems, "segment", _("Choose the segment the campaign is for."))
    if campaign.segment_id is not None and campaign.segment.is_archived:
        _problems_add(problems, "segment", _("This segment is archived: choose another."))
    if promotion and campaign.ends_at is not None and campaign.ends_at <= (at or now):
        _problems_add(problems, "ends_at", _("The promotion would be over before it launches."))
    coupon = campaign.kind == Campaign.Kind.COUPON
    if coupon and campaign.reward_id is not None and not campaign.reward.is_active:
        _problems_add(problems, "reward", _("This reward is no longer active."))
    if carries_message(campaign):
        _message_problems(campaign, problems)
    if at is not None and at < now:
        _problems_add(problems, "scheduled_at", _("Choose a time that has not passed."))
    return problems


# --- Drafts ---------------------------------------------------------------------------------


def _fields_set(campaign: Campaign, fields: dict[str, Any]) -> list | None:
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    stores = fields.pop("stores", None)
    for name, value in fields.items():
        setattr(campaign, name, value)
    return stores


def _stores_set(campaign: Campaign, stores: Iterable | None) -> None:
    if stores is not None:
        campaign.stores.set(stores)


@transaction.atomic
def campaign_create(*, actor: User | None, **fields: Any) -> Campaign:
    campaign = Campaign(created_by=actor if actor is not None and actor.pk else None)
    stores = _fields_set(campaign, dict(fields))
    problems = _shape_problems(campaign)
    if problems:
        raise CampaignInvalid(problems)
    campaign.save()
    _stores_set(campaign, stores)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, actor: User | None, **fields: Any) -> Campaign:
    """Change a draft. A draft waiting for approval goes back to a plain draft: what an
    administrator approves is what they saw, so a changed campaign is launched again."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignNotEditable(campaign)
    stores = _fields_set(campaign, dict(fields))
    problems = _shape_problems(campaign)
    if problems:
        raise CampaignInvalid(problems)
    campaign.approval_required = False
    campaign.scheduled_at = None
    campaign.save()
    _stores_set(campaign, stores)
    return campaign


# --- Launch, approval, cancellation --------------------------------------------------------


def _start_when_due(campaign: Campaign, now: datetime.datetime) -> None:
    """A campaign due now starts at once rather than at beat's next tick; after commit, so
    the task reads the scheduled row."""
    if campaign.scheduled_at is not None and campaign.scheduled_at <= now:
        pk = campaign.pk
        transaction.on_commit(lambda: campaign_start_task.delay(pk))


def _estimate_details(estimate: CostEstimate) -> dict[str, Any]:
    return {
        "treated": estimate.treated,
        "points": estimate.points,
        "points_cost": str(estimate.points_cost),
        "coupon_face_value": str(estimate.coupon_face_value),
        "sms": estimate.sms,
        "total_cost": str(estimate.total),
    }


@transaction.atomic
def campaign_schedule(
    *,
    campaign: Campaign,
    actor: User | None,
    at: datetime.datetime | None,
    now: datetime.datetime,
) -> Campaign:
    """Launch a draft now (`at` None) or at `at`. Refused with every problem at once
    (`CampaignInvalid`). A campaign whose cost needs an administrator's approval stays a
    draft, waiting (approval_required), with the time asked for kept in scheduled_at."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignStateError(
            _("Only a draft can be launched; this campaign is %(status)s.")
            % {"status": campaign.get_status_display()}
        )
    if campaign.approval_required:
        raise CampaignStateError(_("This campaign is already waiting for approval."))
    problems = launch_problems(campaign=campaign, at=at, now=now)
    if problems:
        raise CampaignInvalid(problems)
    try:
        estimate = campaign_preview(campaign=campaign, now=now).estimate
    except SegmentRuleError as error:
        # The segment's rules no longer compile (a segment it refers to was archived).
        raise CampaignInvalid({"segment": [error.detail]}) from error
    waiting = campaign.approved_at is None and campaign_needs_approval(estimate=estimate)
    campaign.scheduled_at = at or now
    if not campaign.salt:
        campaign.salt = holdout_salt()
    if waiting:
        campaign.approval_required = True
    else:
        campaign.status = Campaign.Status.SCHEDULED
    campaign.save()
    audit_log(
        actor=actor,
        action="campaign.launch",
        target=campaign,
        details={
            "campaign_name": campaign.name,
            "kind": campaign.kind,
            "scheduled_at": campaign.scheduled_at.isoformat(),
            "waiting_for_approval": waiting,
            **_estimate_details(estimate),
        },
    )
    if not waiting:
        _start_when_due(campaign, now)
    return campaign


def may_approve(*, campaign: Campaign, user: Any) -> bool:
    """An administrator other than the campaign's creator: no one approves their own cost."""
    return (
        user.has_perm(APPROVE_PERMISSION)
        and campaign.created_by_id is not None
        and campaign.created_by_id != user.pk
    )


@transaction.atomic
def campaign_approve(*, campaign: Campaign, actor: User, now: datetime.datetime) -> Campaign:
    """Approve a draft waiting for approval: it is scheduled for the time asked for, or now
    if that has passed while it waited."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not actor.has_perm(APPROVE_PERMISSION):
        raise ApprovalRefused(_("Only an administrator can approve a campaign."))
    if campaign.created_by_id is None or campaign.created_by_id == actor.pk:
        raise ApprovalRefused(
            _("Another administrator must approve this campaign, not the one who built it.")
        )
    if campaign.status != Campaign.Status.DRAFT or not campaign.approval_required:
        raise CampaignStateError(_("This campaign is not waiting for approval."))
    at = max(campaign.scheduled_at or now, now)
    problems = launch_problems(campaign=campaign, at=at, now=now)
    if problems:
        raise CampaignInvalid(problems)
    campaign.status = Campaign.Status.SCHEDULED
    campaign.scheduled_at = at
    campaign.approved_at = now
    campaign.approved_by = actor
    campaign.save()
    audit_log(
        actor=actor,
        action="campaign.approve",
        target=campaign,
        details={"campaign_name": campaign.name, "scheduled_at": at.isoformat()},
    )
    _start_when_due(campaign, now)
    return campaign


CANCELLABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: User | None, now: datetime.datetime) -> Campaign:
    """Cancel a campaign that has not finished. A send in progress reads `cancelled` before
    its next batch and stops; a multiplier promotion no longer applies to purchases from now
    on; its messages that have not gone out (waiting, or delayed by quiet hours) never do.
    What was already posted or sent stays."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in CANCELLABLE:
        raise CampaignStateError(
            _("This campaign is %(status)s: it can no longer be cancelled.")
            % {"status": campaign.get_status_display()}
        )
    previous = campaign.status
    campaign.status = Campaign.Status.CANCELLED
    campaign.cancelled_at = now
    campaign.save()
    withdrawn = campaign_messages_withdraw(campaign=campaign)
    audit_log(
        actor=actor,
        action="campaign.cancel",
        target=campaign,
        details={"campaign_name": campaign.name, "was": previous, "messages_withdrawn": withdrawn},
    )
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        # This process stops applying it at once; others when their cache expires.
        transaction.on_commit(promotions_cache_clear)
    return campaign


# --- Win-back from the analytics alert ------------------------------------------------------


def winback_rules(*, store: Store | None, tier: TierLevel | None) -> dict:
    """The early-warning alert's members as segment rules: high churn risk, within the
    alert's store and tier filters. The alert counts a member at their home store (else
    the store they enrolled at); the segment's store is the home store."""
    rules: list[dict] = [{"field": "churn_band", "op": "in", "value": [RiskBand.HIGH]}]
    if store is not None:
        rules.append({"field": "home_store", "op": "in", "value": [store.pk]})
    if tier is not None:
        rules.append({"field": "tier", "op": "in", "value": [tier.code]})
    return {"version": 1, "rule": {"group": "and", "rules": rules}}


@transaction.atomic
def campaign_winback_create(
    *, actor: User, store: Store | None, tier: TierLevel | None, now: datetime.datetime
) -> Campaign:
    """A segment of the alert's members and a message-only draft on it, for the marketer
    to finish (the message, or another kind's figures) and launch."""
    day = timezone.localdate(now).isoformat()
    scope = " · ".join(str(part) for part in (store, tier and tier.name) if part)
    name = _("Win-back %(date)s") % {"date": day} + (f" · {scope}" if scope else "")
    segment = segment_create(
        actor=actor,
        name=(_("High churn risk %(date)s") % {"date": day} + (f" · {scope}" if scope else ""))[
            :100
        ],
        description=_("Members at high risk of churn, from the analytics early warning."),
        rules=winback_rules(store=store, tier=tier),
    )
    return campaign_create(
        actor=actor, name=name[:100], kind=Campaign.Kind.MESSAGE, segment=segment
    )
