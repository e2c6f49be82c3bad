"""Back-office forms for points: purchases, returns, coupons at the till, adjustments.

The forms check what a cashier can fix by re-typing (formats, lines adding up, steps of
100 points, the adjustment limit, a purchase's cap and time window) so every field's problem
shows at once; the services
check the rest again under the account lock and the views turn their refusals into
messages on the same form.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core import validators
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.money import money_format
from members.models import Member, Store
from members.selectors import member_search, store_list
from members.staff_forms import store_field_limit

from .ledger import BUSINESS_TZ
from .models import LedgerTransaction
from .purchase_limits import (
    AmountOverLimit,
    OccurredAtOutOfRange,
    limit_message,
    purchase_amount_check,
    purchase_time_bounds,
    purchase_time_check,
)
from .selectors import category_list
from .services import LineInput

LINE_ROWS = 5
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _now_minute() -> datetime.datetime:
    return timezone.localtime(timezone.now(), BUSINESS_TZ).replace(second=0, microsecond=0)


def _datetime_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        initial=_now_minute,
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
    )


def _money_field(label: str, *, required: bool = True) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )


def _store_field(label: str, *, required: bool = True) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(label=label, queryset=Store.objects.none(), required=required)


def _not_in_future(value: datetime.datetime) -> datetime.datetime:
    _earliest, latest = purchase_time_bounds(now=timezone.now())
    if value > latest:
        raise forms.ValidationError(_("This time is in the future."))
    return value


def member_for_till(text: str) -> tuple[Member | None, str]:
    """The member a cashier means by a phone, a member number or a scanned card, else why not.

    The staff search's own lookup (`member_search`), so both read the field alike; a name
    is not enough to record a purchase against.
    """
    found = member_search(query=text)
    if found.problem == "bad_check_digit":
        return None, _(
            "This is not a valid member number (check digit wrong) — re-type or scan it."
        )
    if found.problem == "invalid_phone":
        return None, _("This is neither a mobile phone number nor a member number.")
    if found.kind == "name":
        return None, _("Enter the member's mobile phone or member number, or scan the card.")
    if not found.members:
        if found.kind == "phone":
            return None, _("No member with this phone number.")
        return None, _("No member with this number.")
    return found.members[0], ""


class PurchaseRecordForm(forms.Form):
    """A purchase typed in at the till: the receipt, the amount and, optionally, its lines."""

    member = forms.CharField(
        label=_("Member: phone, member number or card scan"),
        max_length=64,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    store = _store_field(_("Store"))
    receipt_no = forms.CharField(
        label=_("Receipt number"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    occurred_at = _datetime_field(_("Time of purchase"))
    amount = _money_field(_("Amount (¥)"))
    points_to_use = forms.IntegerField(
        label=_("Points used as payment"),
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "100", "min": "0", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, user: Any, points_per_yuan: int = 100, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.points_per_yuan = points_per_yuan
        self.member_obj: Member | None = None
        store_field_limit(self.fields["store"], user=user)
        self.fields["points_to_use"].widget.attrs["step"] = str(points_per_yuan)
        # htmx: show who the member is and what the points are worth while typing.
        url = reverse("staff:purchase-record")
        self.fields["member"].widget.attrs.update(
            {
                "hx-get": url,
                "hx-trigger": "input changed delay:400ms",
                "hx-target": "#purchase-member",
                "hx-swap": "outerHTML",
            }
        )
        self.fields["points_to_use"].widget.attrs.update(
            {
                "hx-get": url,
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "#points-value",
                "hx-swap": "outerHTML",
            }
        )
        # The managed category list (points.Category): a code not on it is refused, as the
        # purchase import refuses it, rather than silently earning at the base rate.
        categories = [("", "—"), *((c.code, f"{c.name} ({c.code})") for c in category_list())]
        for row in range(1, LINE_ROWS + 1):
            self.fields[f"line{row}_sku"] = forms.CharField(
                label=_("SKU, line %(row)s") % {"row": row}, max_length=64, required=False
            )
            self.fields[f"line{row}_category"] = forms.ChoiceField(
                label=_("Category, line %(row)s") % {"row": row},
                choices=categories,
                required=False,
                error_messages={
                    "invalid_choice": _(
                        "“%(value)s” is not a category of the list: pick one from the list."
                    )
                },
            )
            self.fields[f"line{row}_amount"] = _money_field(
                _("Amount (¥), line %(row)s") % {"row": row}, required=False
            )

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("member", "store", "receipt_no", "occurred_at", "amount")]

    def line_rows(self) -> list[tuple[int, list[forms.BoundField]]]:
        return [
            (row, [self[f"line{row}_{part}"] for part in ("sku", "category", "amount")])
            for row in range(1, LINE_ROWS + 1)
        ]

    def clean_member(self) -> str:
        self.member_obj, problem = member_for_till(self.cleaned_data["member"])
        if self.member_obj is None:
            raise forms.ValidationError(problem)
        return self.member_obj.member_no

    def clean_receipt_no(self) -> str:
        receipt_no = self.cleaned_data["receipt_no"].strip()
        if not receipt_no:
            raise forms.ValidationError(_("This field is required."))
        return receipt_no

    def clean_occurred_at(self) -> datetime.datetime:
        # The service's own rule, checked here too so it shows beside the other fields.
        occurred_at = self.cleaned_data["occurred_at"]
        try:
            purchase_time_check(occurred_at=occurred_at, now=timezone.now())
        except OccurredAtOutOfRange as error:
            raise forms.ValidationError(limit_message(error)) from error
        return occurred_at

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        try:
            purchase_amount_check(amount=amount)
        except AmountOverLimit as error:
            raise forms.ValidationError(limit_message(error)) from error
        return amount

    def clean_points_to_use(self) -> int:
        points = self.cleaned_data["points_to_use"] or 0
        if points % self.points_per_yuan:
            raise forms.ValidationError(
                _("Points are used in steps of %(step)s.") % {"step": self.points_per_yuan}
            )
        return points

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        lines = []
        for row in range(1, LINE_ROWS + 1):
            sku = (cleaned.get(f"line{row}_sku") or "").strip()
            category = (cleaned.get(f"line{row}_category") or "").strip()
            amount = cleaned.get(f"line{row}_amount")
            if f"line{row}_amount" in self.errors:
                continue
            if not (sku or category or amount is not None):
                continue
            if not sku:
                self.add_error(f"line{row}_sku", _("A line needs a SKU."))
            if amount is None:
                self.add_error(f"line{row}_amount", _("A line needs an amount."))
            if sku and amount is not None:
                lines.append(LineInput(sku=sku, category=category, amount=amount))
        cleaned["lines"] = lines
        amount = cleaned.get("amount")
        if lines and amount is not None and not self.errors:
            total = sum(line.amount for line in lines)
            if total != amount:
                self.add_error(
                    None,
                    _("The lines add up to %(lines)s, not the amount of %(amount)s.")
                    % {"lines": money_format(total), "amount": money_format(amount)},
                )
        points = cleaned.get("points_to_use") or 0
        if amount is not None and points and Decimal(points) / self.points_per_yuan > amount:
            self.add_error(
                "points_to_use",
                _("%(points)s points pay %(value)s, more than the amount.")
                % {
                    "points": points,
                    "value": money_format(Decimal(points) / self.points_per_yuan),
                },
            )
        return cleaned


class ReturnRecordForm(forms.Form):
    store = _store_field(_("Store"))
    receipt_no = forms.CharField(
        label=_("Return receipt number"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    original_receipt_no = forms.CharField(
        label=_("Original receipt number"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    original_store = _store_field(_("Store of the original purchase"), required=False)
    amount = _money_field(_("Amount returned (¥)"))
    occurred_at = _datetime_field(_("Time of return"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The return is recorded at one of the user's stores; the purchase may be anywhere.
        store_field_limit(self.fields["store"], user=user)
        self.fields["original_store"].queryset = store_list()
        self.fields["original_store"].empty_label = _("Same store")
        # htmx: look the original purchase up as soon as its receipt number is typed.
        lookup = {
            "hx-get": reverse("staff:return-record"),
            "hx-target": "#original-purchase",
            "hx-swap": "outerHTML",
            "hx-include": "[name=store],[name=original_store],[name=original_receipt_no]",
        }
        self.fields["original_receipt_no"].widget.attrs.update(
            {**lookup, "hx-trigger": "input changed delay:400ms"}
        )
        self.fields["original_store"].widget.attrs.update({**lookup, "hx-trigger": "change"})

    def clean_receipt_no(self) -> str:
        receipt_no = self.cleaned_data["receipt_no"].strip()
        if not receipt_no:
            raise forms.ValidationError(_("This field is required."))
        return receipt_no

    def clean_original_receipt_no(self) -> str:
        receipt_no = self.cleaned_data["original_receipt_no"].strip()
        if not receipt_no:
            raise forms.ValidationError(_("This field is required."))
        return receipt_no

    def clean_occurred_at(self) -> datetime.datetime:
        return _not_in_future(self.cleaned_data["occurred_at"])


def coupon_code_from_scan(value: str) -> str:
    """The coupon code from what was typed or scanned.

    The portal's QR code holds the bare code; a scanner may add spaces, or a URL-ish
    prefix (`…/coupon/CODE`, `coupon:CODE`), so the last part is taken.
    """
    text = (value or "").strip()
    for separator in ("/", ":", "="):
        text = text.rstrip(separator).rsplit(separator, 1)[-1]
    return "".join(text.split()).replace("-", "").upper()


class CouponLookupForm(forms.Form):
    code = forms.CharField(
        label=_("Coupon code or QR scan"),
        max_length=200,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = coupon_code_from_scan(self.cleaned_data["code"])
        if not code:
            raise forms.ValidationError(_("This field is required."))
        return code


class CouponUseForm(forms.Form):
    code = forms.CharField(widget=forms.HiddenInput, max_length=200)
    store = _store_field(_("Store"))
    receipt_no = forms.CharField(
        label=_("Receipt number"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        store_field_limit(self.fields["store"], user=user)

    def clean_code(self) -> str:
        return coupon_code_from_scan(self.cleaned_data["code"])


class PointsAdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points (+ to add, − to take away)"),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        error_messages={"required": _("Give a reason: it is kept in the audit log.")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    # Made when the form is shown: a double-clicked submit posts the same key, and the
    # service returns the first posting instead of adjusting twice.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)
    # The second submit, from the confirmation ("balance X → Y"); the first only asks.
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4())
        super().__init__(*args, **kwargs)
        self.user = user
        # The field's bounds are the service's absolute ceiling (POINTS_ADJUST_MAX).
        ceiling = settings.POINTS_ADJUST_MAX
        field = self.fields["points"]
        field.min_value, field.max_value = -ceiling, ceiling
        field.validators.extend(
            [validators.MinValueValidator(-ceiling), validators.MaxValueValidator(ceiling)]
        )
        field.widget.attrs.update({"min": -ceiling, "max": ceiling})

    def clean_points(self) -> int:
        # Only the shape here; the limits of the one who asks are the service's
        # (`adjustment_check`), shown on this field by the view.
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("Enter the points to add or take away (not 0)."))
        return points

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give a reason: it is kept in the audit log."))
        return reason


class RedemptionVoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for voiding"),
        max_length=300,
        error_messages={"required": _("Give a reason: it is kept with the refund.")},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    confirm = forms.BooleanField(
        label=_("Yes, void this coupon and refund the points"),
        error_messages={"required": _("Tick the box to confirm.")},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give a reason: it is kept with the refund."))
        return reason


class AdjustmentDecisionForm(forms.Form):
    note = forms.CharField(
        label=_("Note (optional)"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("All kinds")), *LedgerTransaction.Kind.choices]
