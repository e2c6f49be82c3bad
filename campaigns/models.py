"""Segments, campaigns, their frozen audiences, the message outbox and campaign results.

A segment is a rule tree (JSON with a version) compiled to one SQL query over the members
and their nightly figures (`analytics.MemberFigures`). A campaign acts on a segment's
members: bonus points, a multiplier promotion, coupons or a message only; any kind may carry
a message too. At launch its audience is frozen into `CampaignMember` with each member's arm
(a deterministic random holdout gets nothing), so results refer to who was targeted. Every
message, marketing or service, is a row of `OutboxMessage` with its status.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Store
from points.models import Coupon, Reward


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    # {"version": 1, "rule": {"group": "and", "rules": [...]}}: campaigns/segments/.
    rules = models.JSONField(_("rules"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["-updated_at", "-id"]
        permissions = [("manage_segment", "Can build segments and campaigns")]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BONUS = "bonus", _("Bonus points")
        MULTIPLIER = "multiplier", _("Multiplier promotion")
        COUPON = "coupon", _("Coupon issuance")
        MESSAGE = "message", _("Message only")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT
    )
    # The audience: a segment, else (multiplier promotions) the tiers below, else everyone
    # open. Frozen into CampaignMember at launch.
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("segment"),
    )
    # Tier codes (tiers.TierLevel.code) a multiplier promotion is for; empty: all.
    tiers = models.JSONField(_("tiers"), default=list, blank=True)
    stores = models.ManyToManyField(Store, blank=True, related_name="+", verbose_name=_("stores"))
    # Category codes a multiplier promotion applies to; empty: every purchase.
    categories = models.JSONField(_("categories"), default=list, blank=True)

    bonus_points = models.PositiveIntegerField(_("bonus points"), null=True, blank=True)
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=4, decimal_places=2, null=True, blank=True
    )
    # A multiplier promotion applies to purchases made in [starts_at, ends_at).
    starts_at = models.DateTimeField(_("promotion starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("promotion ends"), null=True, blank=True)
    reward = models.ForeignKey(
        Reward,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reward"),
    )

    # The message any kind may carry: channels and a template per language with member fields.
    send_sms = models.BooleanField(_("SMS"), default=False)
    send_email = models.BooleanField(_("e-mail"), default=False)
    send_portal = models.BooleanField(_("in-portal notice"), default=False)
    message_subject_zh = models.CharField(_("subject (Chinese)"), max_length=150, blank=True)
    message_subject_en = models.CharField(_("subject (English)"), max_length=150, blank=True)
    message_body_zh = models.TextField(_("message (Chinese)"), blank=True)
    message_body_en = models.TextField(_("message (English)"), blank=True)

    # Measurement, fixed before launch (ANALYTICS.md, campaign holdouts).
    holdout_percent = models.DecimalField(
        _("holdout %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal(10),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(50))],
    )
    conversion_window_days = models.PositiveSmallIntegerField(
        _("conversion window (days)"),
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    revenue_cap_percentile = models.DecimalField(
        _("revenue cap percentile"), max_digits=5, decimal_places=2, default=Decimal("99.9")
    )
    salt = models.CharField(_("holdout salt"), max_length=32, blank=True)

    # Send at this time (None while a draft); beat starts due campaigns every minute.
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    launched_at = models.DateTimeField(_("launched"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    # A campaign whose points cost passes CAMPAIGN_APPROVAL_COST needs an administrator's yes.
    approval_required = models.BooleanField(_("needs approval"), default=False)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("approved by"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Audience counts at launch, and the sending's progress (rows of CampaignMember done).
    audience_size = models.PositiveIntegerField(_("audience"), default=0)
    control_size = models.PositiveIntegerField(_("holdout"), default=0)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("approve_campaign", "Can approve costly campaigns"),
            ("view_campaign_results", "Can read campaign results"),
        ]
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="campaigns_campaign_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="bonus") | Q(bonus_points__gt=0),
                name="campaigns_campaign_bonus_points",
            ),
            models.CheckConstraint(
                condition=~Q(kind="multiplier")
                | (
                    Q(multiplier__gt=1)
                    & Q(starts_at__isnull=False)
                    & Q(ends_at__gt=models.F("starts_at"))
                ),
                name="campaigns_campaign_multiplier_window",
            ),
            models.CheckConstraint(
                condition=~Q(kind="coupon") | Q(reward__isnull=False),
                name="campaigns_campaign_coupon_reward",
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lte=50),
                name="campaigns_campaign_holdout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """The audience frozen at launch, one row per member, with the arm (never changes) and
    what the campaign did for a treated member (set once, so a rerun does nothing twice)."""

    class Arm(models.TextChoices):
        TREATMENT = "treatment", _("Treatment")
        CONTROL = "control", _("Holdout")

    # No index of their own: the unique (campaign, member) and the (member, campaign) index
    # lead with them, and every index costs the launch's and the send's writes.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="audience",
        verbose_name=_("campaign"),
        db_index=False,
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member"), db_index=False
    )
    arm = models.CharField(_("arm"), max_length=10, choices=Arm.choices)
    # The hash of (salt, member id) in [0, 1): control when below the holdout share.
    draw = models.FloatField(_("draw"))
    # Bonus points posted / coupon issued / messages enqueued: None until done.
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    coupon = models.OneToOneField(
        Coupon,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("coupon"),
    )

    class Meta:
        verbose_name = _("campaign member")
        verbose_name_plural = _("campaign members")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member"], name="campaigns_campaignmember_once"
            ),
            models.CheckConstraint(
                condition=Q(draw__gte=0) & Q(draw__lt=1), name="campaigns_campaignmember_draw"
            ),
            models.CheckConstraint(
                condition=Q(arm="treatment") | (Q(done_at__isnull=True) & Q(coupon__isnull=True)),
                name="campaigns_campaignmember_control_gets_nothing",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "campaign"], name="campaigns_cm_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.member_id}"


class OutboxMessage(models.Model):
    """Every message to a member, marketing or service, with what became of it."""

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        PORTAL = "portal", _("In-portal notice")

    class Purpose(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        SERVICE = "service", _("Service")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to send")
        DELAYED = "delayed", _("Delayed (quiet hours)")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CAPPED = "capped", _("Over the frequency cap")
        NO_CONSENT = "no_consent", _("No consent")
        FAILED = "failed", _("Failed")

    # No index of their own: the unique (campaign, member, channel) and the (member,
    # created_at) index serve those lookups, and every index is paid for twice per message
    # (claimed, then sent).
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("campaign"),
    )
    member = models.ForeignKey(
        Member,
        db_index=False,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("member"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # Not before this time (quiet hours move it to 09:00 Asia/Shanghai).
    send_after = models.DateTimeField(_("send after"), default=timezone.now)
    # When a dispatch took it for sending: a row still SENDING long after (the worker died
    # mid-send) is marked failed, never sent again.
    claimed_at = models.DateTimeField(_("claimed for sending"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=200, blank=True)
    # In-portal notices: when the member read it.
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            # A campaign sends a member one message per channel: a rerun enqueues nothing twice.
            models.UniqueConstraint(
                fields=["campaign", "member", "channel"],
                condition=Q(campaign__isnull=False),
                name="campaigns_outbox_once_per_campaign",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="campaigns_outbox_sent_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "send_after"], name="campaigns_outbox_due_idx"),
            models.Index(fields=["member", "created_at"], name="campaigns_outbox_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} → {self.member_id} ({self.status})"


class CampaignResult(models.Model):
    """The latest results of a campaign (intention to treat, ANALYTICS.md), replaced when
    computed again (nightly and on demand)."""

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, related_name="result", verbose_name=_("campaign")
    )
    computed_at = models.DateTimeField(_("computed"), default=timezone.now)
    # Up to this time: the window's end, or the time computed while the window is open.
    window_end = models.DateTimeField(_("window ends"))
    figures = models.JSONField(_("figures"), default=dict)

    class Meta:
        verbose_name = _("campaign result")
        verbose_name_plural = _("campaign results")

    def __str__(self) -> str:
        return f"{self.campaign_id} @ {self.computed_at:%Y-%m-%d %H:%M}"
