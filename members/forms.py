"""Forms for members: the sign-up extras, the portal profile and consent, closing an account."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.urls import reverse_lazy
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import ConsentEvent, Member, User
from .selectors import member_get_by_referral_code, referral_code_clean, store_list
from .services import birthday_earliest, birthday_problem, user_signup_prepare


def birthday_validate(birthday: datetime.date) -> None:
    """A form's birthday check: one message for a date in the future, one for too early."""
    problem = birthday_problem(birthday=birthday)
    if problem == "birthday_in_future":
        raise forms.ValidationError(_("Enter a real birthday (not in the future)."))
    if problem:
        raise forms.ValidationError(
            _("This birthday is too early: enter a date from %(earliest)s on.")
            % {"earliest": birthday_earliest().isoformat()}
        )


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form does not have: name, privacy notice, marketing consent."""

    name = forms.CharField(
        label=_("Name"), max_length=100, error_messages={"required": _("Enter your name.")}
    )
    accept_privacy = forms.BooleanField(
        label=_("I have read and accept the privacy notice"),
        error_messages={"required": _("You must accept the privacy notice to join.")},
    )
    consent_sms = forms.BooleanField(label=_("Send me offers by SMS"), required=False)
    consent_email = forms.BooleanField(label=_("Send me offers by e-mail"), required=False)
    referral_code = forms.CharField(
        label=_("Friend's referral code"),
        max_length=20,
        required=False,
        help_text=_("If a friend invited you, their code: they get a thank-you in points."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )

    field_order = ["phone", "name", "email", "password1", "password2", "referral_code"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accept_privacy"].help_text = format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            reverse_lazy("portal:privacy-notice"),
            _("Read the privacy notice"),
        )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter your name."))
        return name

    def clean_referral_code(self) -> str:
        code = referral_code_clean(self.cleaned_data["referral_code"])
        if code and member_get_by_referral_code(code=code) is None:
            raise forms.ValidationError(
                _("No member has this referral code. Check it with your friend, or leave it empty.")
            )
        return code

    def signup(self, request, user: User) -> None:
        # Applied by member_signup_complete once the phone is verified.
        user_signup_prepare(
            user=user,
            name=self.cleaned_data["name"],
            consent_sms=self.cleaned_data["consent_sms"],
            consent_email=self.cleaned_data["consent_email"],
            referral_code=self.cleaned_data["referral_code"],
        )


class ProfileForm(forms.Form):
    """What a member may change about themselves. The phone is not here: stores change it."""

    name = forms.CharField(
        label=_("Name"), max_length=100, error_messages={"required": _("Enter your name.")}
    )
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        help_text=_("For receipts and, if you agree, offers. Your log-in e-mail is not changed."),
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=Member.Gender.choices, required=False)
    birthday = forms.DateField(
        label=_("Birthday"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Members get a birthday gift in their birthday month."),
    )
    city = forms.CharField(label=_("City"), max_length=50, required=False)
    home_store = forms.ModelChoiceField(
        label=_("Home store"), queryset=None, required=False, empty_label=_("No preference")
    )
    language = forms.ChoiceField(
        label=_("Language of our messages"),
        choices=settings.LANGUAGES,
        required=False,
        help_text=_("Texts, e-mails and notices reach you in this language."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["home_store"].queryset = store_list()

    @classmethod
    def initial_for(cls, member: Member) -> dict[str, Any]:
        return {
            "name": member.name,
            "email": member.email or "",
            "gender": member.gender,
            "birthday": member.birthday,
            "city": member.city,
            "home_store": member.home_store_id,
            "language": member.language,
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter your name."))
        return name

    def clean_city(self) -> str:
        return self.cleaned_data["city"].strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Not sent (an older page): the member's language stays as it was.
        if not cleaned.get("language"):
            cleaned.pop("language", None)
        return cleaned

    def clean_birthday(self) -> datetime.date | None:
        birthday = self.cleaned_data["birthday"]
        if birthday is not None:
            birthday_validate(birthday)
        return birthday


class ConsentForm(forms.Form):
    """One marketing channel switched on or off; each toggle is its own small form."""

    kind = forms.ChoiceField(
        choices=[
            (ConsentEvent.Kind.SMS, ConsentEvent.Kind.SMS.label),
            (ConsentEvent.Kind.EMAIL, ConsentEvent.Kind.EMAIL.label),
        ]
    )
    granted = forms.TypedChoiceField(
        choices=[("1", _("On")), ("0", _("Off"))], coerce=lambda value: value == "1"
    )


class AccountCloseForm(forms.Form):
    """Closing is final: the member ticks a box and, if they have one, types their password."""

    confirm = forms.BooleanField(
        label=_("I understand that closing my account cannot be undone"),
        error_messages={"required": _("Tick the box to confirm you want to close the account.")},
    )
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # A shopper who only ever logs in with SMS codes has no password to type.
        if not user.has_usable_password():
            del self.fields["password"]

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password
