from __future__ import annotations

import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import TierLevel
from .services import TierError, tier_override_until_check


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
        try:
            tier_override_until_check(until=until)
        except TierError as error:
            raise forms.ValidationError(str(error)) from error
        return until
