"""allauth adapter: phones live on our User; codes go out through members.sms."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.utils.translation import gettext as _

from .models import User
from .numbers import InvalidPhone, phone_normalize
from .services import member_signup_complete
from .sms import sms_send


class AccountAdapter(DefaultAccountAdapter):
    def clean_phone(self, phone: str) -> str:
        try:
            return phone_normalize(phone)
        except InvalidPhone:
            from django import forms

            raise forms.ValidationError(
                _("Enter a valid mobile phone number, e.g. 13812345678.")
            ) from None

    def send_verification_code_sms(self, user: Any, phone: str, code: str, **kwargs: Any) -> None:
        sms_send(phone=phone, text=_("Your 会员 Loyalty verification code is %(code)s.") % {"code": code})

    def send_unknown_account_sms(self, phone: str, **kwargs: Any) -> None:
        sms_send(
            phone=phone,
            text=_("Someone asked for a 会员 Loyalty code for this number, but it has no account."),
        )

    def set_phone(self, user: User, phone: str, verified: bool) -> None:
        user.phone = phone
        user.phone_verified = verified
        if user.pk:
            user.save(update_fields=["phone", "phone_verified"])
        if verified:
            member_signup_complete(user=user)

    def get_phone(self, user: User) -> tuple[str, bool] | None:
        if not user.phone:
            return None
        return user.phone, user.phone_verified

    def set_phone_verified(self, user: User, phone: str) -> None:
        self.set_phone(user, phone, True)

    def get_user_by_phone(self, phone: str) -> User | None:
        return User.objects.filter(phone=phone).order_by("pk").first()
