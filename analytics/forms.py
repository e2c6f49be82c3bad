"""The dashboard's filters: months, a store and a tier, limited to what the reader may see."""

from __future__ import annotations

import datetime
import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from members.selectors import staff_store_ids, staff_stores, store_list
from tiers.selectors import add_months, tier_levels

from .selectors import Scope, month_of

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# A range longer than this is a typo, not a question: ten years of months.
MAX_MONTHS = 120
DEFAULT_MONTHS = 12


def _month(value: str) -> datetime.date:
    match = MONTH.match(value.strip())
    # Up to 2999: the panels step month by month past the end, which date() cannot do
    # near year 9999.
    if (
        match is None
        or not 1 <= int(match.group(2)) <= 12
        or not 1900 <= int(match.group(1)) <= 2999
    ):
        raise forms.ValidationError(_("Enter a month as YYYY-MM, e.g. 2026-03."), code="month")
    return datetime.date(int(match.group(1)), int(match.group(2)), 1)


class MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value: Any) -> datetime.date | None:
        value = super().to_python(value)
        return _month(value) if value else None


def store_choices(*, user: Any) -> list[tuple[int, str]]:
    """The stores `user` may filter by; 0 ("all stores") only for those who see every store,
    or for a manager whose one store is the whole chain (then it is the same figure)."""
    stores = [(store.pk, str(store)) for store in staff_stores(user=user)]
    store_ids = staff_store_ids(user=user)
    everything = store_ids is None or (
        len(store_ids) == 1 and set(store_list().values_list("pk", flat=True)) == set(store_ids)
    )
    return ([(0, _("All stores"))] if everything else []) + stores


class DashboardFilterForm(forms.Form):
    start = MonthField(label=_("From month"), required=False)
    end = MonthField(label=_("To month"), required=False)
    store = forms.TypedChoiceField(label=_("Store"), coerce=int, required=False)
    tier = forms.TypedChoiceField(label=_("Tier"), coerce=int, required=False)

    def __init__(self, *args: Any, user: Any, today: datetime.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["store"].choices = store_choices(user=user)
        self.fields["tier"].choices = [(0, _("All tiers"))] + [
            (level.pk, level.name) for level in tier_levels()
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # No figures exist after the day of the last run: a later month shows as that one,
        # so no panel draws months that have not happened as zeros.
        end = min(data.get("end") or month_of(self.today), month_of(self.today))
        start = data.get("start") or add_months(end, 1 - DEFAULT_MONTHS)
        if "start" in self.errors or "end" in self.errors:
            return data
        if start > end:
            raise forms.ValidationError(_("The first month comes after the last."), code="order")
        if (end.year - start.year) * 12 + end.month - start.month >= MAX_MONTHS:
            raise forms.ValidationError(
                _("Choose at most %(months)s months.") % {"months": MAX_MONTHS}, code="long"
            )
        data["start"], data["end"] = start, end
        return data

    def scope(self) -> Scope:
        """The valid filters as a Scope; the first store offered when none was chosen."""
        data = self.cleaned_data
        store = data.get("store")
        if store in (None, ""):
            store = self.fields["store"].choices[0][0] if self.fields["store"].choices else 0
        return Scope(
            start=data["start"], end=data["end"], store_key=store, tier_key=data.get("tier") or 0
        )
