"""The marketer's campaign forms: one form per kind (its own fields, then the message and the
measurement every kind shares), the launch confirmation and the list's filter.

The forms type and parse; whether a campaign may be saved or launched is decided by
campaigns/services.py, whose refusals the views put back on these forms' fields.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.selectors import store_list
from points.models import Category, Reward
from tiers.selectors import tier_levels

from .models import Campaign, Segment

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"

# The fields of each kind, before the message and measurement every kind has.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    Campaign.Kind.BONUS: ("segment", "bonus_points"),
    Campaign.Kind.MULTIPLIER: (
        "segment",
        "tiers",
        "stores",
        "categories",
        "multiplier",
        "starts_at",
        "ends_at",
    ),
    Campaign.Kind.COUPON: ("segment", "reward"),
    Campaign.Kind.MESSAGE: ("segment",),
}
MESSAGE_FIELDS = (
    "send_sms",
    "send_email",
    "send_portal",
    "message_subject_zh",
    "message_body_zh",
    "message_subject_en",
    "message_body_en",
)
MEASURE_FIELDS = ("holdout_percent", "conversion_window_days", "revenue_cap_percentile")


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs=attrs, format=DATETIME_FORMAT)


def _coupon_rewards():
    # Every reward but a donation is redeemed as a coupon (Reward.is_coupon).
    return Reward.objects.filter(is_active=True).exclude(kind=Reward.Kind.DONATION)


class RewardChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Reward) -> str:
        from django.utils.translation import get_language

        name = obj.name_zh if (get_language() or "zh").startswith("zh") else obj.name_en
        return f"{obj.code} · {name}"


class CampaignForm(forms.Form):
    """A campaign of one kind (`kind`, fixed when the draft is made)."""

    name = forms.CharField(label=_("Name"), max_length=100)
    segment = forms.ModelChoiceField(
        label=_("Segment"),
        queryset=Segment.objects.filter(is_archived=False),
        required=False,
        empty_label=_("— choose a segment —"),
    )
    tiers = forms.MultipleChoiceField(
        label=_("Tiers"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Without a segment: members of these tiers; none ticked: every member."),
    )
    stores = forms.ModelMultipleChoiceField(
        label=_("Stores"),
        queryset=store_list(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Purchases at these stores; none ticked: every store."),
    )
    categories = forms.MultipleChoiceField(
        label=_("Categories"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Purchases in these categories; none ticked: every purchase."),
    )
    bonus_points = forms.IntegerField(label=_("Bonus points per member"), min_value=1)
    multiplier = forms.DecimalField(
        label=_("Multiplier"),
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("1.01"),
        help_text=_("For example 2 for double points."),
    )
    starts_at = forms.DateTimeField(label=_("Promotion starts"), widget=DateTimeLocalInput())
    ends_at = forms.DateTimeField(label=_("Promotion ends"), widget=DateTimeLocalInput())
    reward = RewardChoiceField(
        label=_("Reward from the catalogue"),
        queryset=Reward.objects.none(),
        empty_label=_("— choose a reward —"),
        help_text=_("Issued as coupons without spending points; stock and limits hold."),
    )

    send_sms = forms.BooleanField(label=_("SMS"), required=False)
    send_email = forms.BooleanField(label=_("E-mail"), required=False)
    send_portal = forms.BooleanField(label=_("In-portal notice"), required=False)
    message_subject_zh = forms.CharField(
        label=_("Subject (Chinese)"), max_length=150, required=False
    )
    message_body_zh = forms.CharField(
        label=_("Message (Chinese)"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    message_subject_en = forms.CharField(
        label=_("Subject (English)"), max_length=150, required=False
    )
    message_body_en = forms.CharField(
        label=_("Message (English)"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    holdout_percent = forms.DecimalField(
        label=_("Holdout %"),
        min_value=Decimal(0),
        max_value=Decimal(50),
        max_digits=5,
        decimal_places=2,
        initial=Decimal(10),
        help_text=_("This share of the audience gets nothing, to measure the uplift."),
    )
    conversion_window_days = forms.IntegerField(
        label=_("Conversion window (days)"), min_value=1, max_value=365, initial=14
    )
    revenue_cap_percentile = forms.DecimalField(
        label=_("Revenue cap percentile"),
        min_value=Decimal(50),
        max_value=Decimal(100),
        max_digits=5,
        decimal_places=2,
        initial=Decimal("99.9"),
        help_text=_("Each member's revenue is capped at this percentile in the results."),
    )

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        keep = {"name", *KIND_FIELDS[kind], *MESSAGE_FIELDS, *MEASURE_FIELDS}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if kind != Campaign.Kind.MULTIPLIER:
            # Every kind but the promotion is for a segment.
            self.fields["segment"].required = True
        if "tiers" in self.fields:
            self.fields["tiers"].choices = [(t.code, t.name) for t in tier_levels()]
        if "categories" in self.fields:
            self.fields["categories"].choices = [
                (c.code, f"{c.code} · {c.name}") for c in Category.objects.order_by("code")
            ]
        if "reward" in self.fields:
            self.fields["reward"].queryset = _coupon_rewards()

    def field_groups(self) -> dict[str, list]:
        """The bound fields in the sections the page shows."""
        return {
            "kind": [self[name] for name in ("name", *KIND_FIELDS[self.kind])],
            "channels": [self[name] for name in MESSAGE_FIELDS[:3]],
            "texts": [self[name] for name in MESSAGE_FIELDS[3:]],
            "measure": [self[name] for name in MEASURE_FIELDS],
        }

    def campaign_fields(self) -> dict[str, Any]:
        """The cleaned values as the services take them."""
        data = dict(self.cleaned_data)
        for name in ("tiers", "categories"):
            if name in data:
                data[name] = list(data[name])
        return data

    @classmethod
    def initial_from(cls, campaign: Campaign) -> dict[str, Any]:
        initial: dict[str, Any] = {
            name: getattr(campaign, name) for name in ("name", *MESSAGE_FIELDS, *MEASURE_FIELDS)
        }
        initial.update(
            segment=campaign.segment_id,
            tiers=campaign.tiers,
            stores=list(campaign.stores.values_list("pk", flat=True)),
            categories=campaign.categories,
            bonus_points=campaign.bonus_points,
            multiplier=campaign.multiplier,
            starts_at=_local(campaign.starts_at),
            ends_at=_local(campaign.ends_at),
            reward=campaign.reward_id,
        )
        return initial


def _local(value: datetime.datetime | None) -> datetime.datetime | None:
    return timezone.localtime(value) if value is not None else None


class LaunchForm(forms.Form):
    """When to launch: now, or at a date and time (Asia/Shanghai)."""

    WHEN_CHOICES = [("now", _("Now")), ("later", _("At a date and time"))]

    when = forms.ChoiceField(
        label=_("When"), choices=WHEN_CHOICES, widget=forms.RadioSelect, initial="now"
    )
    at = forms.DateTimeField(label=_("Date and time"), required=False, widget=DateTimeLocalInput())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("when") == "later" and data.get("at") is None and "at" not in self.errors:
            self.add_error("at", _("Give the date and time to launch at."))
        return data

    def launch_at(self) -> datetime.datetime | None:
        return self.cleaned_data["at"] if self.cleaned_data["when"] == "later" else None


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All statuses")), *Campaign.Status.choices],
    )


class WinBackForm(forms.Form):
    """The alert's filters (0: all), carried from the dashboard to the confirmation."""

    store = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    tier = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
