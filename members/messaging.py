"""Messages to members through the channels they agreed to (SMS, e-mail).

Called after commit (`transaction.on_commit`) or from jobs, never inside a transaction that
holds locks: a slow gateway must not hold up the ledger.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.utils import translation

from .models import Member
from .sms import sms_send

logger = logging.getLogger(__name__)


def member_notify(*, member: Member, subject: str, text: str) -> list[str]:
    """Send by every channel the member consented to; return the channels used."""
    channels = []
    with translation.override("zh-hans"):
        if member.consent_sms and member.phone:
            try:
                sms_send(phone=member.phone, text=text)
                channels.append("sms")
            except Exception:
                logger.exception("SMS to member %s failed", member.pk)
        if member.consent_email and member.email:
            try:
                send_mail(subject, text, None, [member.email])
                channels.append("email")
            except Exception:
                logger.exception("e-mail to member %s failed", member.pk)
    return channels
