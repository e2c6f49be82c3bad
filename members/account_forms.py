"""allauth forms we change. Apart from members.forms: allauth's forms module imports our
sign-up form (ACCOUNT_SIGNUP_FORM_CLASS) while it loads, so it cannot be imported there."""

from __future__ import annotations

from allauth.account.forms import RequestLoginCodeForm as AllauthRequestLoginCodeForm

from .services import user_for_member_code_login


class RequestLoginCodeForm(AllauthRequestLoginCodeForm):
    """allauth's "send me a sign-in code", which also reaches members enrolled at a till.

    A till enrolment has no login, so allauth would find nobody to send a code to; the
    member's first verified code makes their online login (the same member record).
    """

    def clean_phone(self) -> str:
        phone = super().clean_phone()
        if phone and self._user is None:
            self._user = user_for_member_code_login(phone=phone)
        return phone
