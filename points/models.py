"""The points ledger: append-only, double-entry, in whole points.

Every movement of points is a `LedgerTransaction` with `Entry` rows that sum to zero across
accounts: a member's `Account` on one side, a system account (issuance, redemption, expiry,
adjustment, reversal) or another member on the other. A transaction's idempotency key comes
from its business identity (`purchase:SH001:R123`), so a retried request finds the first
result instead of posting twice; the fingerprint of the request tells a true retry from a
different request reusing the key.

Earned points sit in `Lot`s (one per earning) so they can expire 12 months on and so spending
takes the soonest-expiring points first; `LotMovement` says which transaction took or gave
back how much of which lot. A return can reverse points that were already spent: what the
lots cannot cover becomes `Account.debt`, which later earnings pay off first. So for every
member account: balance = Σ entries = Σ lot remaining − debt. The account's cached balance
and debt change only in the transaction that writes the entries.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, User


class Account(models.Model):
    class Kind(models.TextChoices):
        MEMBER = "member", _("Member")
        ISSUANCE = "issuance", _("Points issued")
        REDEMPTION = "redemption", _("Points redeemed")
        EXPIRY = "expiry", _("Points expired")
        ADJUSTMENT = "adjustment", _("Adjustments")
        REVERSAL = "reversal", _("Points reversed by returns")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    member = models.OneToOneField(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="points_account"
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    # Points reversed after they were spent: owed back before anything can be redeemed.
    debt = models.BigIntegerField(_("debt"), default=0)
    lifetime_earned = models.BigIntegerField(_("points earned"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="member") & Q(member__isnull=False))
                | (~Q(kind="member") & Q(member__isnull=True)),
                name="points_account_member_iff_member_kind",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=~Q(kind="member"),
                name="points_account_one_per_system_kind",
            ),
            models.CheckConstraint(
                condition=Q(debt__gte=0), name="points_account_debt_nonnegative"
            ),
            # Only debt can take a member below zero, and nothing but returns creates debt.
            models.CheckConstraint(
                condition=~Q(kind="member") | Q(balance__gte=-F("debt")),
                name="points_account_balance_covers_debt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.member_id or ''}".strip()


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        ADJUST = "adjust", _("Adjusted")
        REVERSE = "reverse", _("Reversed")
        TRANSFER = "transfer", _("Transferred")

    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        RETURN = "return", _("Return")
        REWARD = "reward", _("Reward")
        PAYMENT = "payment", _("Points as payment")
        RULE = "rule", _("Earning rule")
        CAMPAIGN = "campaign", _("Campaign")
        STAFF = "staff", _("Staff")
        EXPIRY = "expiry", _("Expiry")
        IMPORT = "import", _("Import")
        MERGE = "merge", _("Member merge")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    idempotency_key = models.CharField(max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    source_ref = models.CharField(_("reference"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    occurred_at = models.DateTimeField(_("business time"))
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The member whose account moves (the giving side of a transfer): the history query.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="ledger_transactions")
    # Points the member's account gained (positive) or lost (negative) in this transaction.
    member_amount = models.BigIntegerField()
    # A return reverses part of an earning; several partial returns may reverse one earning,
    # never more than it earned in total (checked under the account lock).
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        indexes = [
            models.Index(
                fields=["member", "-occurred_at", "-id"], name="points_txn_member_time_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="reverse") | Q(reverses__isnull=False),
                name="points_txn_reverse_names_original",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_amount:+d} ({self.idempotency_key})"


class Entry(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField()

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="points_entry_amount_nonzero"),
            models.UniqueConstraint(
                fields=["transaction", "account"], name="points_entry_one_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d}"


class LotQuerySet(models.QuerySet["Lot"]):
    def open(self) -> LotQuerySet:
        return self.filter(remaining__gt=0)

    def spendable(self, *, at) -> LotQuerySet:
        return self.open().filter(available_at__lte=at, expires_at__gt=at)

    def pending(self, *, at) -> LotQuerySet:
        return self.open().filter(available_at__gt=at)


class Lot(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots")
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="lots"
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    earned_at = models.DateTimeField(_("earned"))
    available_at = models.DateTimeField(_("available from"))
    expires_at = models.DateTimeField(_("expires"))

    objects = LotQuerySet.as_manager()

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        indexes = [
            models.Index(
                fields=["account", "expires_at", "id"],
                condition=Q(remaining__gt=0),
                name="points_lot_open_idx",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="points_lot_expiry_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="points_lot_points_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                name="points_lot_remaining_in_range",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("earned_at")), name="points_lot_expires_after_earned"
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.points} until {self.expires_at:%Y-%m-%d}"


class LotMovement(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="movements")
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="lot_movements"
    )
    # Negative: taken from the lot; positive: given back (a voided redemption).
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="points_lotmovement_amount_nonzero"
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.lot_id} {self.amount:+d}"
