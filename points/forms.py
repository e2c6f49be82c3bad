"""Forms for the member portal's points pages: the history filter and the redeem confirmation."""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import LedgerTransaction

Kind = LedgerTransaction.Kind

# What a member can filter the history by; transfers (member merges) show under "All".
HISTORY_KINDS = [
    ("", _("All")),
    (Kind.EARN, Kind.EARN.label),
    (Kind.REDEEM, Kind.REDEEM.label),
    (Kind.EXPIRE, Kind.EXPIRE.label),
    (Kind.ADJUST, Kind.ADJUST.label),
    (Kind.REVERSE, Kind.REVERSE.label),
]


class HistoryFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Show"), choices=HISTORY_KINDS, required=False)

    def kind_or_all(self) -> str:
        """The chosen kind, or "" (everything) when the query string holds nonsense."""
        return self.cleaned_data["kind"] if self.is_valid() else ""


class RedeemForm(forms.Form):
    """Carries the idempotency key minted when the confirmation page was shown.

    The key travels with the form, so a double click, a refresh that re-posts or a retry
    after a dropped connection sends the same key and gets the first coupon back instead
    of spending the points twice.
    """

    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    @classmethod
    def fresh(cls) -> RedeemForm:
        return cls(initial={"idempotency_key": uuid.uuid4()})
