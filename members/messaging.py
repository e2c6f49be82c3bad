"""Messages to members through the channels they agreed to (SMS, e-mail).

Called after commit (`transaction.on_commit`) or from jobs, never inside a transaction that
holds locks: a slow gateway must not hold up the ledger.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from .hooks import member_message_sent
from .models import Member
from .sms import sms_send

logger = logging.getLogger(__name__)


def member_reachable(*, path: str = "") -> Q:
    """Members `member_notify` would send something to (`path`: the lookup to the member,
    e.g. "member__"). Jobs settle everyone else's messages in one statement: nothing is sent
    to them, so there is nothing to send once."""
    return Q(**{f"{path}consent_sms": True, f"{path}phone__gt": ""}) | Q(
        **{f"{path}consent_email": True, f"{path}email__gt": ""}
    )


def _recorded(*, member: Member, channel: str, subject: str, text: str, error: str) -> None:
    # The message went out (or failed) already: a record that cannot be written is logged,
    # never raised, or the caller might think it unsent and send it again.
    try:
        member_message_sent(member=member, channel=channel, subject=subject, text=text, error=error)
    except Exception:
        logger.exception("recording the %s to member %s failed", channel, member.pk)


def member_notify(*, member: Member, subject: str, text: str) -> list[str]:
    """Send by every channel the member consented to; return the channels used."""
    channels = []
    with translation.override("zh-hans"):
        if member.consent_sms and member.phone:
            error = ""
            try:
                sms_send(phone=member.phone, text=text)
                channels.append("sms")
            except Exception as failure:
                logger.exception("SMS to member %s failed", member.pk)
                error = f"{type(failure).__name__}: {failure}"
            _recorded(member=member, channel="sms", subject="", text=text, error=error)
        if member.consent_email and member.email:
            error = ""
            try:
                send_mail(subject, text, None, [member.email])
                channels.append("email")
            except Exception as failure:
                logger.exception("e-mail to member %s failed", member.pk)
                error = f"{type(failure).__name__}: {failure}"
            _recorded(member=member, channel="email", subject=subject, text=text, error=error)
    return channels


def member_welcome_send(*, member: Member) -> bool:
    """Text a member enrolled at the till how to log in online; True when it went out.

    A service message, not marketing: it goes whatever the member chose about offers, and
    only to members without a login yet (whoever has one knows how to log in).
    """
    if not member.phone or member.user_id is not None:
        return False
    with translation.override("zh-hans"):
        text = _(
            "Welcome to 会员 Loyalty! Your member number is %(member_no)s. To log in online, "
            "choose “Send me a sign-in code” on the log-in page and enter this mobile "
            "number; no sign-up needed."
        ) % {"member_no": member.member_no}
        try:
            sms_send(phone=member.phone, text=text)
        except Exception as failure:
            logger.exception("welcome SMS to member %s failed", member.pk)
            error = f"{type(failure).__name__}: {failure}"
            _recorded(member=member, channel="sms", subject="", text=text, error=error)
            return False
        _recorded(member=member, channel="sms", subject="", text=text, error="")
    return True
