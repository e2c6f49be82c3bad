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
and debt change only in the transaction that writes the entries. System accounts keep no
running balance: every purchase would otherwise update the one issuance row and all tills
would queue on its lock; their balance is the sum of their entries, read when reported.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from members.models import Member, Store, User


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
        Member,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="points_account",
        verbose_name=_("member"),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    # Points reversed after they were spent: owed back before anything can be redeemed.
    debt = models.BigIntegerField(_("debt"), default=0)
    lifetime_earned = models.BigIntegerField(_("points earned"), default=0)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated"))

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        permissions = [
            ("adjust_points", _("Can adjust points (up to the staff limit)")),
            ("adjust_unlimited", _("Can adjust points up to the manager limit")),
            ("import_points", _("Can import purchases and opening balances from CSV")),
        ]
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
    # Unique by the constraint below: a unique=True field would also get a LIKE index
    # (varchar_pattern_ops) on PostgreSQL, as big as the unique one and never used.
    idempotency_key = models.CharField(max_length=200, verbose_name=_("idempotency key"))
    fingerprint = models.CharField(max_length=64, verbose_name=_("request fingerprint"))
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    source_ref = models.CharField(_("reference"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    occurred_at = models.DateTimeField(_("business time"))
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    # Both mostly empty (a job or a till posts with no actor; few postings reverse another):
    # indexed only where set, below, so the millions of empty ones cost no index entries.
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("actor"),
    )
    # The member whose account moves (the giving side of a transfer): the history query.
    # Indexed by points_txn_member_time_idx, which leads with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="ledger_transactions",
        db_index=False,
        verbose_name=_("member"),
    )
    # Points the member's account gained (positive) or lost (negative) in this transaction.
    member_amount = models.BigIntegerField(verbose_name=_("member's points"))
    # A return reverses part of an earning; several partial returns may reverse one earning,
    # never more than it earned in total (checked under the account lock).
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_index=False,
        verbose_name=_("reverses"),
    )

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        indexes = [
            models.Index(
                fields=["member", "-occurred_at", "-id"], name="points_txn_member_time_idx"
            ),
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="points_txn_actor_idx"
            ),
            models.Index(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="points_txn_reverses_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"], name="points_txn_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=~Q(kind="reverse") | Q(reverses__isnull=False),
                name="points_txn_reverse_names_original",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_amount:+d} ({self.idempotency_key})"


class Entry(models.Model):
    # Indexed by points_entry_one_per_account, which leads with it.
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        verbose_name=_("transaction"),
    )
    # Not indexed: nothing looks entries up by account (the reconcile scans them all), and
    # every posting would pay two more index entries for it.
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        verbose_name=_("account"),
    )
    amount = models.BigIntegerField(verbose_name=_("points"))

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
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="lots", verbose_name=_("account")
    )
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="lots",
        verbose_name=_("transaction"),
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
    # Not indexed: movements are found by their transaction (a reversal); none by lot.
    lot = models.ForeignKey(
        Lot,
        on_delete=models.PROTECT,
        related_name="movements",
        db_index=False,
        verbose_name=_("lot"),
    )
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="lot_movements",
        verbose_name=_("transaction"),
    )
    # Negative: taken from the lot; positive: given back (a voided redemption).
    amount = models.BigIntegerField(verbose_name=_("points"))

    class Meta:
        verbose_name = _("lot movement")
        verbose_name_plural = _("lot movements")
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="points_lotmovement_amount_nonzero"
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.lot_id} {self.amount:+d}"


class EarningPolicy(models.Model):
    """The retailer's earning and expiry settings: one row, edited by administrators."""

    base_rate = models.DecimalField(_("points per ¥1"), max_digits=6, decimal_places=2, default=1)
    birthday_multiplier = models.DecimalField(
        _("birthday-month multiplier"), max_digits=4, decimal_places=2, default=2
    )
    pending_days = models.PositiveSmallIntegerField(
        _("days before purchase points can be spent"), default=0
    )
    points_per_yuan = models.PositiveIntegerField(_("points that pay ¥1 at the till"), default=100)
    signup_bonus = models.PositiveIntegerField(_("sign-up bonus"), default=200)
    profile_bonus = models.PositiveIntegerField(_("profile completed bonus"), default=100)
    referral_bonus = models.PositiveIntegerField(_("referral bonus"), default=300)
    referral_cap_per_year = models.PositiveIntegerField(
        _("referral bonuses per member per year"), default=20
    )
    coupon_valid_days = models.PositiveSmallIntegerField(_("coupon validity (days)"), default=30)
    promotions_stack = models.BooleanField(_("promotion multipliers stack"), default=False)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated"))

    class Meta:
        verbose_name = _("earning policy")
        verbose_name_plural = _("earning policy")
        constraints = [
            models.CheckConstraint(
                condition=Q(base_rate__gte=0), name="points_policy_rate_nonnegative"
            ),
            models.CheckConstraint(
                condition=Q(points_per_yuan__gt=0), name="points_policy_ppy_positive"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Earning policy"))


class Category(models.Model):
    """A product category of the retailer's catalogue, by the code tills and files send.

    Purchase lines and category rates keep the code itself (a till may send a code before an
    administrator has named it); this list gives each code its zh/en names for members and
    is what the staff purchase form and the purchase import accept.
    """

    code = models.CharField(_("code"), max_length=50, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [
            models.CheckConstraint(condition=~Q(code=""), name="points_category_code_not_blank")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"

    @property
    def name(self) -> str:
        """The name in the language of the request: Chinese by default, else English."""
        return self.name_zh if (get_language() or "zh").startswith("zh") else self.name_en


class CategoryRate(models.Model):
    """A product category that earns at its own rate; rate 0 excludes it (gift cards, tobacco)."""

    category = models.CharField(_("category"), max_length=50, unique=True)
    rate = models.DecimalField(_("points per ¥1"), max_digits=6, decimal_places=2)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["category"]
        verbose_name = _("category rate")
        verbose_name_plural = _("category rates")
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0), name="points_categoryrate_nonnegative")
        ]

    def __str__(self) -> str:
        return f"{self.category} ×{self.rate}"


class Purchase(models.Model):
    class Channel(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online shop")
        APP = "app", _("App")
        MINI_PROGRAM = "mini_program", _("Mini-program")

    # Both indexed by the composite index and constraint below, which lead with them.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="purchases",
        db_index=False,
        verbose_name=_("member"),
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        related_name="purchases",
        db_index=False,
        verbose_name=_("store"),
    )
    channel = models.CharField(
        _("channel"), max_length=20, choices=Channel.choices, default=Channel.STORE
    )
    receipt_no = models.CharField(_("receipt number"), max_length=64)
    occurred_at = models.DateTimeField(_("time of purchase"))
    amount = models.DecimalField(_("amount (¥)"), max_digits=12, decimal_places=2)
    # 64-bit, as every points figure: one purchase at the cap can earn past 2^31 points with
    # the largest rates and multipliers an administrator can enter (points/purchase_limits.py).
    points_used = models.PositiveBigIntegerField(_("points used as payment"), default=0)
    # The spend at the base rate: a category rate scales it, up to 10^6 times the amount.
    eligible_amount = models.DecimalField(
        _("amount earning points (¥)"), max_digits=18, decimal_places=2
    )
    points_earned = models.PositiveBigIntegerField(_("points earned"), default=0)
    returned_amount = models.DecimalField(
        _("returned (¥)"), max_digits=12, decimal_places=2, default=0
    )
    earn_transaction = models.OneToOneField(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="earning_purchase",
        verbose_name=_("earning transaction"),
    )
    payment_transaction = models.OneToOneField(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="paid_purchase",
        verbose_name=_("payment transaction"),
    )
    fingerprint = models.CharField(max_length=64, verbose_name=_("request fingerprint"))
    # Empty for the API's and imports' purchases: indexed only where set, below.
    recorded_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(default=timezone.now, verbose_name=_("recorded"))
    # Imported from another system for tiers and analytics: it earned no points here.
    history = models.BooleanField(default=False, verbose_name=_("imported as history"))

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        indexes = [
            models.Index(fields=["member", "-occurred_at"], name="points_purchase_member_idx"),
            models.Index(
                fields=["recorded_by"],
                condition=Q(recorded_by__isnull=False),
                name="points_purchase_recorder_idx",
            ),
            # Segments' "bought at these stores (in the last N days)": the member ids of a
            # store's purchases in a window, read from the index alone (bench segments).
            models.Index(
                fields=["store", "occurred_at", "member"], name="points_purchase_store_time_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "receipt_no"], name="points_purchase_receipt_unique"
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="points_purchase_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(returned_amount__gte=0) & Q(returned_amount__lte=F("amount")),
                name="points_purchase_returned_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.receipt_no} ¥{self.amount}"

    @property
    def net_amount(self):
        return self.amount - self.returned_amount


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, related_name="lines", verbose_name=_("purchase")
    )
    sku = models.CharField(_("SKU"), max_length=64)
    category = models.CharField(_("category"), max_length=50, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=3, default=1)
    amount = models.DecimalField(_("amount (¥)"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="points_line_amount_nonnegative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sku} ¥{self.amount}"


class Return(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="returns", verbose_name=_("purchase")
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="returns", verbose_name=_("store")
    )
    receipt_no = models.CharField(_("return receipt number"), max_length=64)
    amount = models.DecimalField(_("amount returned (¥)"), max_digits=12, decimal_places=2)
    occurred_at = models.DateTimeField(_("time of return"))
    points_reversed = models.PositiveBigIntegerField(_("points reversed"), default=0)
    transaction = models.OneToOneField(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="purchase_return",
        verbose_name=_("transaction"),
    )
    fingerprint = models.CharField(max_length=64, verbose_name=_("request fingerprint"))
    recorded_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(default=timezone.now, verbose_name=_("recorded"))

    class Meta:
        verbose_name = _("return")
        verbose_name_plural = _("returns")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "receipt_no"], name="points_return_receipt_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="points_return_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.receipt_no} −¥{self.amount}"


class Reward(models.Model):
    """An item of the rewards catalogue (积分商城) that members buy with points."""

    class Kind(models.TextChoices):
        AMOUNT_OFF = "amount_off", _("Coupon: amount off")
        PERCENT_OFF = "percent_off", _("Coupon: percent off")
        SPEND_SAVE = "spend_save", _("Coupon: spend ¥X save ¥Y (满减)")
        GIFT = "gift", _("Gift picked up in store")
        TICKET = "ticket", _("Event ticket")
        DONATION = "donation", _("Charity donation")

    code = models.CharField(_("code"), max_length=30, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    image = models.FileField(_("image"), upload_to="rewards/", blank=True)
    points_price = models.PositiveIntegerField(_("points price"))
    amount_off = models.DecimalField(
        _("amount off (¥)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    percent_off = models.PositiveSmallIntegerField(_("percent off"), null=True, blank=True)
    min_spend = models.DecimalField(
        _("minimum spend (¥)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    # None means unlimited; the service takes one with a conditional UPDATE so it never oversells.
    stock = models.PositiveIntegerField(_("stock left"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), null=True, blank=True)
    available_from = models.DateTimeField(_("available from"), null=True, blank=True)
    available_until = models.DateTimeField(_("available until"), null=True, blank=True)
    # The lowest tier (by rank, 1 = regular) that may redeem it.
    min_tier_rank = models.PositiveSmallIntegerField(_("minimum tier rank"), default=1)
    coupon_valid_days = models.PositiveSmallIntegerField(
        _("coupon valid for (days)"), null=True, blank=True
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created"))

    class Meta:
        ordering = ["points_price", "code"]
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [
            models.CheckConstraint(
                condition=Q(points_price__gt=0), name="points_reward_price_positive"
            ),
            # Each coupon kind needs its figures. A NULL would pass a plain `amount_off > 0`
            # (a CHECK fails only on false), hence the explicit IS NOT NULL.
            models.CheckConstraint(
                condition=~Q(kind="amount_off") | Q(amount_off__isnull=False, amount_off__gt=0),
                name="points_reward_amount_off_needs_amount",
                violation_error_message=_("A coupon for an amount off needs the amount (above 0)."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent_off")
                | Q(percent_off__isnull=False, percent_off__gt=0, percent_off__lte=100),
                name="points_reward_percent_off_needs_percent",
                violation_error_message=_("A percent-off coupon needs a percent from 1 to 100."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="spend_save")
                | Q(
                    amount_off__isnull=False,
                    min_spend__isnull=False,
                    amount_off__gt=0,
                    min_spend__gt=F("amount_off"),
                ),
                name="points_reward_spend_save_needs_threshold",
                violation_error_message=_(
                    "A spend ¥X save ¥Y coupon needs the spend threshold and the amount saved, "
                    "the amount below the threshold."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"

    def clean(self) -> None:
        """The same rules as the constraints, said on the field to fill in (the admin)."""
        super().clean()
        errors: dict[str, str] = {}
        if self.kind == self.Kind.AMOUNT_OFF and not (self.amount_off and self.amount_off > 0):
            errors["amount_off"] = _("A coupon for an amount off needs the amount (above 0).")
        if self.kind == self.Kind.PERCENT_OFF and not (
            self.percent_off and 0 < self.percent_off <= 100
        ):
            errors["percent_off"] = _("A percent-off coupon needs a percent from 1 to 100.")
        if self.kind == self.Kind.SPEND_SAVE:
            if not (self.amount_off and self.amount_off > 0):
                errors["amount_off"] = _("A spend ¥X save ¥Y coupon needs the amount saved.")
            if not self.min_spend:
                errors["min_spend"] = _("A spend ¥X save ¥Y coupon needs the spend threshold.")
            elif self.amount_off and self.amount_off >= self.min_spend:
                errors["amount_off"] = _("The amount saved must be below the spend threshold.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_coupon(self) -> bool:
        """Redeeming it gives a coupon for the till (a donation gives a receipt instead)."""
        return self.kind != self.Kind.DONATION


class RewardTierPrice(models.Model):
    """A lower points price for members of a tier (by rank) and above."""

    reward = models.ForeignKey(
        Reward, on_delete=models.CASCADE, related_name="tier_prices", verbose_name=_("reward")
    )
    tier_rank = models.PositiveSmallIntegerField(_("tier rank"))
    points_price = models.PositiveIntegerField(_("points price"))

    class Meta:
        verbose_name = _("tier price")
        verbose_name_plural = _("tier prices")
        constraints = [
            models.UniqueConstraint(
                fields=["reward", "tier_rank"], name="points_rewardtierprice_unique"
            ),
            models.CheckConstraint(
                condition=Q(points_price__gt=0), name="points_rewardtierprice_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reward_id} rank {self.tier_rank}: {self.points_price}"


class Redemption(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        VOID = "void", _("Void")

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    points_spent = models.PositiveIntegerField(_("points spent"))
    transaction = models.OneToOneField(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="redemption",
        verbose_name=_("transaction"),
    )
    refund_transaction = models.OneToOneField(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunded_redemption",
        verbose_name=_("refund transaction"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("redeemed"), default=timezone.now)
    voided_at = models.DateTimeField(_("voided"), null=True, blank=True)
    void_reason = models.CharField(_("reason for voiding"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [
            models.Index(fields=["member", "reward", "status"], name="points_redemption_limit_idx")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.reward_id} {self.points_spent}"

    @property
    def donation_receipt_no(self) -> str:
        """The number on a donation's receipt: its day (Asia/Shanghai) and its id."""
        day = timezone.localtime(self.created_at).strftime("%Y%m%d")
        return f"DN{day}-{self.pk:06d}"


class PointsAdjustment(models.Model):
    """A correction of a member's points by hand, and the limit it was made under.

    Store staff, managers and administrators each have a limit per adjustment (settings
    POINTS_ADJUST_*); store staff also a total per member per business day, the sum of this
    table's `points` (absolute) for the member's posted store-staff adjustments of the day.
    An administrator's adjustment above the manager limit waits here (pending) until a
    second administrator approves it, and only then is it posted to the ledger.
    """

    class Authority(models.TextChoices):
        STAFF = "staff", _("Store staff")
        MANAGER = "manager", _("Store manager")
        ADMINISTRATOR = "administrator", _("Administrator")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        POSTED = "posted", _("Posted")
        REJECTED = "rejected", _("Rejected")

    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="points_adjustments",
        db_index=False,
        verbose_name=_("member"),
    )
    points = models.BigIntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=300)
    # The form's key: the ledger transaction's is `adjust:<key>`.
    key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    authority = models.CharField(_("limit"), max_length=20, choices=Authority.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    requested_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    decided_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("approved or rejected by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decision_note = models.CharField(_("note"), max_length=300, blank=True)
    transaction = models.OneToOneField(
        LedgerTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustment",
        verbose_name=_("ledger transaction"),
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("points adjustment")
        verbose_name_plural = _("points adjustments")
        permissions = [
            (
                "approve_adjustment",
                _("Can request and approve points adjustments above the manager limit"),
            ),
        ]
        indexes = [
            models.Index(fields=["member", "requested_at"], name="points_adjustment_day_idx"),
            models.Index(
                fields=["requested_at"],
                condition=Q(status="pending"),
                name="points_adjustment_pending_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="points_adjustment_points_nonzero"),
            models.CheckConstraint(
                condition=Q(status="posted", transaction__isnull=False)
                | (~Q(status="posted") & Q(transaction__isnull=True)),
                name="points_adjustment_posted_iff_transaction",
            ),
            # The second pair of eyes: whoever asked cannot decide.
            models.CheckConstraint(
                condition=~Q(decided_by=F("requested_by")),
                name="points_adjustment_decider_not_requester",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.points:+d} ({self.get_status_display()})"


class Coupon(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")
        VOID = "void", _("Void")

    class Source(models.TextChoices):
        REDEMPTION = "redemption", _("Rewards catalogue")
        CAMPAIGN = "campaign", _("Campaign")
        WELCOME = "welcome", _("Welcome gift")
        BIRTHDAY = "birthday", _("Birthday")

    code = models.CharField(_("code"), max_length=20, unique=True)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("reward")
    )
    redemption = models.OneToOneField(
        Redemption,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coupon",
        verbose_name=_("redemption"),
    )
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ISSUED
    )
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    valid_until = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    used_store = models.ForeignKey(
        Store,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("used at store"),
    )
    used_receipt_no = models.CharField(_("receipt number"), max_length=64, blank=True)
    used_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("accepted by"),
    )

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [
            models.Index(
                fields=["member", "status", "valid_until"], name="points_coupon_member_idx"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="used") | Q(used_at__isnull=False),
                name="points_coupon_used_has_time",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("issued_at")), name="points_coupon_valid_after_issue"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class ExpiryReminder(models.Model):
    """A reminder that points expire soon; the unique key makes each one go out once."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="expiry_reminders", verbose_name=_("member")
    )
    expires_on = models.DateField(_("last day of the points"))
    days_before = models.PositiveSmallIntegerField(_("days before"))
    points = models.BigIntegerField(_("points"))
    channels = models.JSONField(_("sent by"), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("expiry reminder")
        verbose_name_plural = _("expiry reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "expires_on", "days_before"], name="points_expiryreminder_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.expires_on} −{self.days_before}d"


class BirthdayGift(models.Model):
    """The birthday coupon of one member for one year: given once, told once."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="birthday_gifts",
        db_index=False,
        verbose_name=_("member"),
    )
    year = models.PositiveSmallIntegerField(_("year"))
    coupon = models.OneToOneField(
        Coupon, on_delete=models.PROTECT, related_name="birthday_gift", verbose_name=_("coupon")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created"))
    notified_at = models.DateTimeField(_("told"), null=True, blank=True)

    class Meta:
        verbose_name = _("birthday gift")
        verbose_name_plural = _("birthday gifts")
        constraints = [
            models.UniqueConstraint(fields=["member", "year"], name="points_birthdaygift_once")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.year}"
