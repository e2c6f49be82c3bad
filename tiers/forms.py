from __future__ import annotations

import datetime

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import TierLevel
from .selectors import override_last_day


class TierOverrideForm(forms.Form):
    level = forms.ModelChoiceField(
        label=_("Tier"),
        queryset=TierLevel.objects.filter(rank__gt=1).order_by("rank"),
        empty_label=None,
    )
    until = forms.DateField(
        label=_("Until (last day)"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("After this day the member returns to the tier their spending earns."),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def clean_until(self) -> datetime.date:
        until = self.cleaned_data["until"]
        if until < timezone.localdate():
            raise forms.ValidationError(_("The end date cannot be in the past."))
        last_day = override_last_day(today=timezone.localdate())
        if until > last_day:
            raise forms.ValidationError(
                _("A manual tier ends within %(months)s months: %(day)s at the latest.")
                % {"months": settings.TIER_OVERRIDE_MAX_MONTHS, "day": last_day.isoformat()}
            )
        return until
