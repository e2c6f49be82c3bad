"""allauth adapter: phones live on our User; codes go out through members.sms.

allauth hands us phone numbers as the shopper typed them (13800000001, +86 138 0000 0001);
everything here normalises to E.164 first so sign-up, log-in, rate limits and look-ups all
agree on one spelling of a number.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.stages import PhoneVerificationStage
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.ratelimit import RateLimited, respond_429
from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Member, User
from .numbers import InvalidPhone, phone_normalize
from .permissions import BACKOFFICE_PERMISSION
from .services import MemberError, user_phone_set
from .sms import sms_budget_take, sms_send


class StaffFriendlyPhoneVerificationStage(PhoneVerificationStage):
    """allauth's phone stage, letting logins without any phone through.

    ACCOUNT_SIGNUP_FIELDS makes the phone required, and allauth then aborts every log-in of
    a user who has none, which would lock out staff accounts created with an e-mail only.
    Sign-ups still always have a phone (the form requires it), so shoppers are unaffected.
    """

    def handle(self):
        user = self.login.user
        if user is not None and not self.login.signup and not getattr(user, "phone", None):
            return None, True
        try:
            return super().handle()
        except RateLimited:
            # Sending the code is limited per number (one per 30 s); allauth lets the
            # exception escape as a server error here, so answer 429 ourselves.
            return respond_429(self.request), False


class AccountAdapter(DefaultAccountAdapter):
    def phone_form_field(self, **kwargs: Any) -> Any:
        # allauth's field insists on +country E.164 before we see the value; shoppers type
        # 13812345678, so validation happens in clean_phone (libphonenumber) instead.
        kwargs.setdefault("validators", [])
        kwargs.setdefault("help_text", gettext_lazy("A mobile number, e.g. 13812345678."))
        return super().phone_form_field(**kwargs)

    def clean_phone(self, phone: str) -> str:
        try:
            return phone_normalize(phone)
        except InvalidPhone:
            raise forms.ValidationError(
                _("Enter a valid mobile phone number, e.g. 13812345678."), code="invalid_phone"
            ) from None

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # Where each role works: staff roles in the back office, members in the portal.
        # allauth only asks when the log-in came without a ?next= to honour.
        if request.user.has_perm(BACKOFFICE_PERMISSION):
            return reverse("staff:home")
        return super().get_login_redirect_url(request)

    def get_login_stages(self) -> list[str]:
        return [
            "members.adapters.StaffFriendlyPhoneVerificationStage"
            if path == "allauth.account.stages.PhoneVerificationStage"
            else path
            for path in super().get_login_stages()
        ]

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth counts failed log-ins per typed e-mail (and would put every phone log-in
        # under one empty key). Count them per account instead, so a login's e-mail and its
        # phone share one counter: five wrong passwords in all, not five by each. A login
        # that names no account is counted by what was typed (the number normalised).
        user = self._login_account(credentials)
        if user is not None:
            key = f"user:{user.pk}"
        elif credentials.get("phone") and not credentials.get("email"):
            key = "phone:" + _normalise_or_keep(credentials["phone"])
        else:
            return super()._get_login_attempts_cache_key(request, **credentials)
        return super()._get_login_attempts_cache_key(request, email=key)

    def _login_account(self, credentials: dict[str, Any]) -> User | None:
        """The account a log-in attempt names, as allauth's authentication would find it."""
        from allauth.account.utils import filter_users_by_email

        if credentials.get("email"):
            users = filter_users_by_email(credentials["email"], prefer_verified=True)
            return users[0] if users else None
        if credentials.get("phone"):
            return self.get_user_by_phone(credentials["phone"])
        return None

    def send_verification_code_sms(self, user: Any, phone: str, code: str, **kwargs: Any) -> None:
        self._sms_budget_take()
        sms_send(
            phone=phone, text=_("Your 会员 Loyalty verification code is %(code)s.") % {"code": code}
        )

    def send_unknown_account_sms(self, phone: str, **kwargs: Any) -> None:
        # Nothing goes to a number without an account: anyone can type any number, and its
        # owner asked for nothing. The page answers as for a member ("code sent"), and the
        # request counts against the budget like one that sends, so neither the page nor
        # the budget tells which numbers are members.
        self._sms_budget_take()

    def send_account_already_exists_sms(self, phone: str) -> None:
        self._sms_budget_take()
        sms_send(
            phone=phone,
            text=_(
                "Someone tried to join 会员 Loyalty with this number, but it already has an "
                "account. Log in instead, or ignore this message."
            ),
        )

    def _sms_budget_take(self) -> None:
        """Count one text of the log-in and sign-up pages; answer 429 once the hour's is spent."""
        request = context.request
        if request is None:
            return
        if not sms_budget_take(ip=self.get_client_ip(request)):
            raise ImmediateHttpResponse(respond_429(request))

    def set_phone(self, user: User, phone: str, verified: bool) -> None:
        member = Member.objects.filter(user_id=user.pk).only("phone").first() if user.pk else None
        if member is not None and member.phone != phone:
            # The member record's phone is what tills look up; it changes at a store, with
            # the shopper present, not through allauth's "change phone" page.
            raise PermissionDenied(_("To change your phone number, please ask at a store."))
        try:
            user_phone_set(user=user, phone=phone, verified=verified)
        except MemberError as error:
            # E.g. the number is on a member whose login has another number; nothing was
            # written (one transaction), and only a store can sort out whose number it is.
            raise PermissionDenied(
                _("This number belongs to another membership. Please ask at a store.")
            ) from error

    def get_phone(self, user: User) -> tuple[str, bool] | None:
        if not user.phone:
            return None
        return user.phone, user.phone_verified

    def set_phone_verified(self, user: User, phone: str) -> None:
        self.set_phone(user, phone, True)

    def get_user_by_phone(self, phone: str) -> User | None:
        # Called with the raw log-in text too (allauth does not clean it first).
        try:
            e164 = phone_normalize(phone)
        except InvalidPhone:
            return None
        # Only a verified phone belongs to a login: an unverified one (a sign-up never
        # finished, or someone typing another person's number) must not block the real owner
        # nor let them, by logging in with a code, verify the number into a stranger's account.
        return User.objects.filter(phone=e164, phone_verified=True).order_by("pk").first()


def _normalise_or_keep(phone: str) -> str:
    try:
        return phone_normalize(phone)
    except InvalidPhone:
        return phone.strip()
