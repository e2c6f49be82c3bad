"""Back-office forms for members: enrolment at the till and the audit log filter."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .forms import birthday_validate
from .models import Member, Store
from .numbers import InvalidPhone, member_no_is_valid, phone_normalize
from .selectors import audit_action_choices, staff_store_ids, staff_stores
from .services import Consents

# What the enrolment service's error codes mean to the cashier who typed the data.
ENROL_ERRORS = {
    "invalid_phone": _("Enter a valid mobile number, e.g. 138 1234 5678."),
    "required": _("This field is required."),
    "too_long": _("This is too long."),
    "invalid_email": _("Enter a valid e-mail address."),
    "invalid_gender": _("Choose one of the options."),
    "invalid_birthday": _("Enter a real birthday (not in the future)."),
}

# Shown to a store staff member or manager whose login has no store (staff_store_ids).
NO_STORE_MESSAGE = _(
    "Your login is not linked to any store yet, so you cannot record anything for a store. "
    "Ask an administrator to add your store to your account."
)
STORE_NOT_YOURS_MESSAGE = _(
    "You can only do this for your own stores. Choose one of the stores listed."
)


def no_store_message(*, user: Any) -> str:
    """NO_STORE_MESSAGE for a login that acts for no store at all (pages show it on top),
    else ""."""
    return str(NO_STORE_MESSAGE) if staff_store_ids(user=user) == frozenset() else ""


def store_field_limit(field: forms.ModelChoiceField, *, user: Any) -> None:
    """Offer only the stores `user` may act for; a store posted from outside them (another
    store's id, a tampered form) is refused with a message saying why, never recorded."""
    stores = staff_stores(user=user)
    field.queryset = stores
    field.empty_label = None
    if stores.exists():
        field.error_messages = {**field.error_messages, "invalid_choice": STORE_NOT_YOURS_MESSAGE}
    else:
        field.error_messages = {
            **field.error_messages,
            "invalid_choice": NO_STORE_MESSAGE,
            "required": NO_STORE_MESSAGE,
        }


class MemberEnrolForm(forms.Form):
    """The till's enrolment form: the fields a cashier can fill in well under 30 seconds."""

    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        widget=forms.TextInput(
            attrs={"type": "tel", "inputmode": "tel", "autocomplete": "off", "autofocus": True}
        ),
    )
    name = forms.CharField(
        label=_("Name"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    birthday = forms.DateField(
        label=_("Birthday"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=Member.Gender.choices, required=False)
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none())
    consent_sms = forms.BooleanField(label=_("Agrees to offers by SMS"), required=False)
    consent_email = forms.BooleanField(label=_("Agrees to offers by e-mail"), required=False)
    accept_privacy = forms.BooleanField(
        label=_("Privacy notice shown to the shopper and accepted"),
        error_messages={
            "required": _("The shopper must see and accept the privacy notice to join.")
        },
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        store_field_limit(self.fields["store"], user=user)

    def clean_phone(self) -> str:
        # Checked here as well as in the service so every field's error shows at once.
        phone = self.cleaned_data["phone"]
        try:
            phone_normalize(phone)
        except InvalidPhone:
            raise forms.ValidationError(ENROL_ERRORS["invalid_phone"]) from None
        return phone

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(ENROL_ERRORS["required"])
        return name

    def clean_birthday(self) -> datetime.date | None:
        birthday = self.cleaned_data["birthday"]
        if birthday is not None:
            birthday_validate(birthday)
        return birthday

    def consents(self) -> Consents:
        return Consents(
            privacy_version=settings.PRIVACY_NOTICE_VERSION,
            sms=self.cleaned_data["consent_sms"],
            email=self.cleaned_data["consent_email"],
        )


class AuditFilterForm(forms.Form):
    """Filters for the audit log, read from the query string; every field is optional."""

    action = forms.ChoiceField(label=_("Action"), required=False)
    actor = forms.CharField(label=_("Actor"), max_length=150, required=False)
    member_no = forms.CharField(
        label=_("Member number"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    since = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    until = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("All actions")), *audit_action_choices()]

    def clean_actor(self) -> str:
        return self.cleaned_data["actor"].strip()

    def clean_member_no(self) -> str:
        member_no = "".join(self.cleaned_data["member_no"].split())
        if member_no and not member_no_is_valid(member_no):
            raise forms.ValidationError(
                _("This is not a valid member number (check digit wrong) — re-type or scan it.")
            )
        return member_no

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned
