"""Forms for members: the sign-up extras, the portal profile and consent, staff enrolment."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.urls import reverse_lazy
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import User


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form does not have: name, privacy notice, marketing consent."""

    name = forms.CharField(label=_("Name"), max_length=100)
    accept_privacy = forms.BooleanField(
        label=_("I have read and accept the privacy notice"),
        error_messages={"required": _("You must accept the privacy notice to join.")},
    )
    consent_sms = forms.BooleanField(label=_("Send me offers by SMS"), required=False)
    consent_email = forms.BooleanField(label=_("Send me offers by e-mail"), required=False)

    field_order = ["phone", "name", "email", "password1", "password2"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["accept_privacy"].help_text = format_html(
            '<a href="{}" target="_blank">{}</a>',
            reverse_lazy("members:privacy-notice"),
            _("Read the privacy notice"),
        )

    def signup(self, request, user: User) -> None:
        # Applied by member_signup_complete once the phone is verified.
        user.name = self.cleaned_data["name"].strip()
        user.pending_enrolment = {
            "privacy_version": settings.PRIVACY_NOTICE_VERSION,
            "consent_sms": self.cleaned_data["consent_sms"],
            "consent_email": self.cleaned_data["consent_email"],
        }
        user.save(update_fields=["name", "pending_enrolment"])
