"""Sending text messages through the configured backend (settings.SMS_BACKEND).

Like Django's e-mail backends: `ConsoleBackend` prints (development), `LocmemBackend` keeps an
outbox that tests read, `HttpGatewayBackend` posts JSON to an SMS gateway.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

outbox: list[SmsMessage] = []


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str


class ConsoleBackend:
    def send(self, message: SmsMessage) -> None:
        sys.stdout.write(f"[SMS to {message.phone}] {message.text}\n")
        sys.stdout.flush()


class LocmemBackend:
    def send(self, message: SmsMessage) -> None:
        outbox.append(message)


class HttpGatewayBackend:
    """POSTs {"phone", "text"} to SMS_GATEWAY_URL with a bearer token."""

    def send(self, message: SmsMessage) -> None:
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's setting
            settings.SMS_GATEWAY_URL,
            data=json.dumps({"phone": message.phone, "text": message.text}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status >= 300:
                raise RuntimeError(f"SMS gateway answered {response.status}")


def sms_send(*, phone: str, text: str) -> None:
    backend = import_string(settings.SMS_BACKEND)()
    backend.send(SmsMessage(phone=phone, text=text))


# --- The hourly budget of the log-in and sign-up pages --------------------------------------
# Anyone can type any number into those pages, and each text costs money and bothers its
# owner: one address may ask for SMS_HOURLY_LIMIT_PER_IP texts an hour, everybody together
# for SMS_HOURLY_LIMIT_TOTAL. Counted in the cache (Redis in production, shared by every
# web process) per clock hour.


def sms_budget_take(*, ip: str) -> bool:
    """Count one text asked for from `ip`; False (nothing may be sent) once a budget is spent.

    The first refusal of each budget in an hour is logged as a warning: that is the moment an
    operator wants to hear about (an attack, or limits set too low for real traffic).
    """
    hour = int(time.time() // 3600)
    for key, limit, label in (
        (f"sms-budget:{hour}:ip:{ip}", settings.SMS_HOURLY_LIMIT_PER_IP, f"address {ip}"),
        (f"sms-budget:{hour}:total", settings.SMS_HOURLY_LIMIT_TOTAL, "all addresses"),
    ):
        # add() then incr(): atomic in Redis and in the local-memory cache alike.
        cache.add(key, 0, timeout=3600 + 60)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=3600 + 60)
            used = 1
        if used > limit:
            if used == limit + 1:
                logger.warning(
                    "SMS hourly budget reached for %s: %s texts; further requests this hour "
                    "are refused",
                    label,
                    limit,
                )
            return False
    return True
