"""Tier levels, each member's tier status and history, and the activity tiers qualify on.

Tiers sit left of points in the dependency order, so they cannot read the ledger or the
purchases. Instead points reports every qualifying movement here (`QualifyingActivity`: spend
of a purchase or a return, points earned or reversed) in the same transaction as the
posting, and every rolling-window figure is a sum over that one table.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from members.models import Member


class TierLevel(models.Model):
    """One rung of the ladder (普通 → 银卡 → 金卡 → 白金 → 钻石), configured by administrators."""

    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    code = models.SlugField(_("code"), max_length=20, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=50)
    # A member qualifies with either figure over the rolling 12 months; 0 means "not by this".
    qualify_spend = models.DecimalField(
        _("qualifying spend (¥)"), max_digits=12, decimal_places=2, default=Decimal(0)
    )
    qualify_points = models.PositiveIntegerField(_("qualifying points earned"), default=0)
    retain_spend = models.DecimalField(
        _("spend to retain (¥)"), max_digits=12, decimal_places=2, default=Decimal(0)
    )
    retain_points = models.PositiveIntegerField(_("points earned to retain"), default=0)
    earn_multiplier = models.DecimalField(
        _("earn multiplier"), max_digits=4, decimal_places=2, default=Decimal(1)
    )
    discount_rate = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    birthday_coupon = models.BooleanField(_("birthday coupon"), default=False)
    benefits_zh = models.TextField(_("benefits (Chinese)"), blank=True)
    benefits_en = models.TextField(_("benefits (English)"), blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier level")
        verbose_name_plural = _("tier levels")
        constraints = [
            models.CheckConstraint(condition=Q(rank__gte=1), name="tiers_level_rank_positive"),
            models.CheckConstraint(
                condition=Q(earn_multiplier__gt=0), name="tiers_level_multiplier_positive"
            ),
            models.CheckConstraint(
                condition=Q(discount_rate__gte=0, discount_rate__lt=100),
                name="tiers_level_discount_range",
            ),
            models.CheckConstraint(
                condition=Q(qualify_spend__gte=0, retain_spend__gte=0),
                name="tiers_level_spend_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh

    @property
    def benefits(self) -> str:
        return self.benefits_en if (get_language() or "").startswith("en") else self.benefits_zh

    @property
    def is_base(self) -> bool:
        return self.rank == 1


class TierPolicy(models.Model):
    """Programme-wide tier settings (one row; the defaults apply until one is saved)."""

    class Downgrade(models.TextChoices):
        ONE_LEVEL = "one_level", _("One level down (soft landing)")
        QUALIFIED = "qualified", _("Down to the level the last 12 months qualify for")

    downgrade = models.CharField(
        _("when retention is missed"),
        max_length=20,
        choices=Downgrade.choices,
        default=Downgrade.ONE_LEVEL,
    )
    valid_months = models.PositiveSmallIntegerField(_("a tier is valid for (months)"), default=12)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("tier policy")
        verbose_name_plural = _("tier policy")
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_months__gte=1), name="tiers_policy_valid_months_positive"
            )
        ]

    def __str__(self) -> str:
        return str(_("Tier policy"))


class MemberTier(models.Model):
    """A member's current tier. No row means the base level since enrolment.

    `valid_until` is the last day the tier holds (None for the base level). Retention at
    the anniversary counts activity after `period_start` up to the end of `valid_until`:
    after an upgrade that is the upgrade's own time, so the purchase that earned the tier
    does not also keep it. A manual override sets `override_until` (= `valid_until`); when
    it ends, the nightly job puts the member at the level the last 12 months qualify for.
    """

    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tier_status",
        verbose_name=_("member"),
    )
    level = models.ForeignKey(
        TierLevel, on_delete=models.PROTECT, related_name="+", verbose_name=_("tier")
    )
    achieved_at = models.DateTimeField(_("reached"))
    period_start = models.DateTimeField(_("retention counted after"))
    # After a downgrade (or the end of a manual tier) the spend of the tier's old period has
    # been used up: qualifying for an upgrade counts only what came after this.
    counts_from = models.DateTimeField(_("qualifying counted after"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    override_until = models.DateField(_("manual tier until"), null=True, blank=True)
    override_reason = models.CharField(_("reason for the manual tier"), max_length=200, blank=True)
    # The tier the member had earned before a manual tier: it comes back when the manual
    # tier ends, if it is still valid and better than what the last 12 months qualify for.
    prior_level = models.ForeignKey(
        TierLevel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("previous tier"),
    )
    prior_valid_until = models.DateField(
        null=True, blank=True, verbose_name=_("previous tier valid until")
    )
    prior_period_start = models.DateTimeField(
        null=True, blank=True, verbose_name=_("previous period start")
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        indexes = [
            # The nightly job finds anniversaries and ending overrides by date.
            # (and pages through one day's members by id)
            models.Index(fields=["valid_until", "member"], name="tiers_membertier_valid_idx"),
            models.Index(
                fields=["override_until"],
                name="tiers_membertier_override_idx",
                condition=Q(override_until__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(override_until__isnull=True) | Q(valid_until=F("override_until")),
                name="tiers_membertier_override_is_validity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.level_id} until {self.valid_until}"


class TierHistory(models.Model):
    """Append-only: every change of a member's tier (and every renewal) with its reason."""

    class Reason(models.TextChoices):
        UPGRADE = "upgrade", _("Upgrade")
        RETAINED = "retained", _("Retained")
        DOWNGRADE = "downgrade", _("Downgrade")
        MANUAL = "manual", _("Set by staff")
        IMPORT = "import", _("Import")

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="tier_history",
        db_index=False,
        verbose_name=_("member"),
    )
    from_level = models.ForeignKey(
        TierLevel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from tier"),
    )
    to_level = models.ForeignKey(
        TierLevel, on_delete=models.PROTECT, related_name="+", verbose_name=_("to tier")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    # Business time of the change (the purchase, the anniversary), not when it was written.
    at = models.DateTimeField(_("at"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        indexes = [models.Index(fields=["member", "-at"], name="tiers_history_member_idx")]
        permissions = [("override_tier", _("Can set a member's tier by hand"))]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_level_id} → {self.to_level_id} ({self.reason})"


class TierNotice(models.Model):
    """The message telling a member about a tier change: claimed before it is sent, once."""

    history = models.OneToOneField(
        TierHistory,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notice",
        verbose_name=_("tier change"),
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    channels = models.JSONField(_("sent by"), default=list, blank=True)

    class Meta:
        verbose_name = _("tier notice")
        verbose_name_plural = _("tier notices")
        indexes = [
            models.Index(
                fields=["history"],
                name="tiers_notice_unsent_idx",
                condition=Q(sent_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"notice {self.history_id}"


class QualifyingActivity(models.Model):
    """What a member spent and earned that counts towards tiers, one row per movement.

    Written by points in the transaction of the purchase, return or earning it belongs to:
    `spend` is money spent (negative for a return), `points` is points earned (negative when
    a return reverses them). Bulk loaders (imports, loadgen) write rows of their own.
    """

    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        RETURN = "return", _("Return")
        BONUS = "bonus", _("Bonus points")
        IMPORT = "import", _("Import")

    id = models.BigAutoField(primary_key=True)
    # Indexed by the composite index below, not on its own.
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("member")
    )
    occurred_at = models.DateTimeField(_("at"))
    spend = models.DecimalField(_("spend"), max_digits=12, decimal_places=2, default=Decimal(0))
    points = models.BigIntegerField(_("points earned"), default=0)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)

    class Meta:
        verbose_name = _("qualifying activity")
        verbose_name_plural = _("qualifying activities")
        indexes = [
            # Every rolling-window sum is a range scan of one member's rows (index-only on
            # PostgreSQL, which also stores the figures in the index).
            models.Index(
                fields=["member", "occurred_at"],
                include=["spend", "points"],
                name="tiers_activity_member_at_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.occurred_at:%Y-%m-%d}: ¥{self.spend} {self.points}"
