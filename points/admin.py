"""The Django admin for points: administrators configure earning rules, expiry and rewards.

Everything the ledger wrote (transactions, entries, lots, purchases, returns, coupons,
redemptions, reminders) is shown read-only: the ledger is append-only, and a correction is
a new posting (an adjustment in the back office), never an edit.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from members.admin import AdministratorAdmin, ReadOnlyAdmin

from .models import (
    Category,
    CategoryRate,
    Coupon,
    EarningPolicy,
    Entry,
    ExpiryReminder,
    LedgerTransaction,
    Lot,
    PointsAdjustment,
    Purchase,
    PurchaseLine,
    Redemption,
    Return,
    Reward,
    RewardTierPrice,
)


@admin.register(EarningPolicy)
class EarningPolicyAdmin(AdministratorAdmin):
    """One row: the retailer's settings. It can be created once and never deleted."""

    list_display = (
        "__str__",
        "base_rate",
        "birthday_multiplier",
        "pending_days",
        "signup_bonus",
        "profile_bonus",
        "referral_bonus",
        "referral_cap_per_year",
        "coupon_valid_days",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not EarningPolicy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Category)
class CategoryAdmin(AdministratorAdmin):
    """The list tills, the purchase form and imports use; members read the names."""

    list_display = ("code", "name_zh", "name_en")
    search_fields = ("code", "name_zh", "name_en")


class CategoryRateForm(forms.ModelForm):
    """A rate is for a category of the list, so the rules page can name it to members."""

    category = forms.ChoiceField(label=_("category"))

    class Meta:
        model = CategoryRate
        fields = ("category", "rate", "note")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [
            ("", "---------"),
            *((c.code, f"{c.code} · {c.name_zh} · {c.name_en}") for c in Category.objects.all()),
        ]


@admin.register(CategoryRate)
class CategoryRateAdmin(AdministratorAdmin):
    form = CategoryRateForm
    list_display = ("category", "rate", "note")
    search_fields = ("category", "note")


class RewardTierPriceInline(admin.TabularInline):
    model = RewardTierPrice
    extra = 0


@admin.register(Reward)
class RewardAdmin(AdministratorAdmin):
    list_display = ("code", "kind", "name_zh", "name_en", "points_price", "stock", "is_active")
    list_filter = ("kind", "is_active", "min_tier_rank")
    search_fields = ("code", "name_zh", "name_en")
    inlines = [RewardTierPriceInline]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        # Once redeemed (or given as a coupon), a coupon reward stays one and a donation a
        # donation: the coupons out there are used and voided as what they were issued as.
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and (obj.redemptions.exists() or obj.coupons.exists()):
            fields += ("kind",)
        return fields


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "recorded_at",
        "occurred_at",
        "kind",
        "source",
        "member",
        "member_amount",
        "idempotency_key",
    )
    list_filter = ("kind", "source")
    search_fields = ("idempotency_key", "source_ref", "member__member_no")
    list_select_related = ("member",)
    raw_id_fields = ("member", "actor", "reverses")
    inlines = [EntryInline]
    show_full_result_count = False


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "points", "remaining", "earned_at", "expires_at")
    search_fields = ("account__member__member_no",)
    raw_id_fields = ("account", "transaction")
    show_full_result_count = False


class PurchaseLineInline(admin.TabularInline):
    model = PurchaseLine
    fields = ("sku", "category", "quantity", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = (
        "receipt_no",
        "store",
        "member",
        "occurred_at",
        "amount",
        "points_earned",
        "points_used",
        "returned_amount",
    )
    list_filter = ("store", "channel")
    search_fields = ("receipt_no", "member__member_no")
    list_select_related = ("store", "member")
    raw_id_fields = ("member", "earn_transaction", "payment_transaction", "recorded_by")
    inlines = [PurchaseLineInline]
    show_full_result_count = False


@admin.register(Return)
class ReturnAdmin(ReadOnlyAdmin):
    list_display = ("receipt_no", "store", "purchase", "occurred_at", "amount", "points_reversed")
    list_filter = ("store",)
    search_fields = ("receipt_no", "purchase__receipt_no")
    list_select_related = ("store", "purchase")
    raw_id_fields = ("purchase", "transaction", "recorded_by")


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "reward", "member", "status", "issued_at", "valid_until", "used_at")
    list_filter = ("status", "source", "reward")
    search_fields = ("code", "member__member_no")
    list_select_related = ("reward", "member")
    raw_id_fields = ("member", "redemption", "used_by")


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "reward", "member", "points_spent", "status", "created_at")
    list_filter = ("status", "reward")
    search_fields = ("member__member_no", "reward__code")
    list_select_related = ("reward", "member")
    raw_id_fields = ("member", "transaction", "refund_transaction")


@admin.register(ExpiryReminder)
class ExpiryReminderAdmin(ReadOnlyAdmin):
    list_display = ("member", "expires_on", "days_before", "points", "channels", "sent_at")
    list_filter = ("days_before",)
    search_fields = ("member__member_no",)
    list_select_related = ("member",)
    raw_id_fields = ("member",)


@admin.register(PointsAdjustment)
class PointsAdjustmentAdmin(ReadOnlyAdmin):
    """Approved or rejected in the back office (/staff/adjustments/approvals/), never here."""

    list_display = ("requested_at", "member", "points", "authority", "status", "requested_by")
    list_filter = ("status", "authority")
    search_fields = ("member__member_no", "reason", "key")
    list_select_related = ("member", "requested_by")
    raw_id_fields = ("member", "requested_by", "decided_by", "transaction")
