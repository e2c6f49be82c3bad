"""Reads for members: the staff search, member lookups, exports and the audit log."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from .models import AuditEntry, ConsentEvent, Member, Store
from .numbers import (
    InvalidPhone,
    looks_like_member_no,
    member_no_from_qr_payload,
    member_no_is_valid,
    phone_normalize,
)

SEARCH_LIMIT = 20


@dataclass(frozen=True)
class MemberSearchResult:
    members: list[Member]
    # What the query was taken to be: "member_no", "phone", "name" or "" for nothing typed.
    kind: str
    # A reason the query cannot match anyone, to show instead of "no results".
    problem: str = ""


def member_search(*, query: str, limit: int = SEARCH_LIMIT) -> MemberSearchResult:
    """One box for the till: a scanned card, a member number, a phone or a name.

    A 12-digit number with a wrong check digit is reported, never matched to someone else.
    """
    text = (query or "").strip()
    if not text:
        return MemberSearchResult(members=[], kind="")
    members = Member.objects.select_related("home_store").order_by("name", "id")

    scanned = member_no_from_qr_payload(text)
    digits = text.replace(" ", "").replace("-", "")
    if scanned is not None or looks_like_member_no(digits):
        number = scanned if scanned is not None else digits
        if not member_no_is_valid(number):
            return MemberSearchResult(members=[], kind="member_no", problem="bad_check_digit")
        return MemberSearchResult(members=list(members.filter(member_no=number)), kind="member_no")

    if digits.lstrip("+").isdigit():
        try:
            phone = phone_normalize(digits)
        except InvalidPhone:
            return MemberSearchResult(members=[], kind="phone", problem="invalid_phone")
        return MemberSearchResult(members=list(members.filter(phone=phone)), kind="phone")

    return MemberSearchResult(
        members=list(members.filter(name__startswith=text)[:limit]), kind="name"
    )


def member_get_by_phone(*, phone: str) -> Member | None:
    try:
        e164 = phone_normalize(phone)
    except InvalidPhone:
        return None
    return Member.objects.select_related("home_store").filter(phone=e164).first()


def member_get_by_number(*, member_no: str) -> Member | None:
    if not member_no_is_valid(member_no):
        return None
    return Member.objects.select_related("home_store").filter(member_no=member_no).first()


def member_consent_history(*, member: Member) -> QuerySet[ConsentEvent]:
    return member.consent_events.select_related("actor").order_by("-recorded_at", "-id")


def member_audit_trail(*, member: Member, limit: int = 50) -> QuerySet[AuditEntry]:
    return member.audit_entries.select_related("actor").order_by("-created_at", "-id")[:limit]


def member_export(*, member: Member) -> dict[str, Any]:
    """Everything held about a member, for "download my data" (PIPL access right)."""

    def iso(value: datetime.date | datetime.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "member_no": member.member_no,
        "name": member.name,
        "phone": member.phone,
        "email": member.email,
        "gender": member.gender,
        "birthday": iso(member.birthday),
        "city": member.city,
        "preferred_categories": member.preferred_categories,
        "tags": member.tags,
        "home_store": member.home_store.code if member.home_store else None,
        "enrolment_channel": member.enrolment_channel,
        "enrolled_at": iso(member.enrolled_at),
        "referral_code": member.referral_code,
        "status": member.status,
        "privacy_notice_version": member.privacy_notice_version,
        "privacy_accepted_at": iso(member.privacy_accepted_at),
        "marketing_consent": {"sms": member.consent_sms, "email": member.consent_email},
        "consent_history": [
            {
                "kind": event.kind,
                "granted": event.granted,
                "version": event.version,
                "source": event.source,
                "recorded_at": iso(event.recorded_at),
            }
            for event in member_consent_history(member=member)
        ],
    }


def store_list(*, active_only: bool = True) -> QuerySet[Store]:
    stores = Store.objects.all()
    return stores.filter(is_active=True) if active_only else stores


def store_get(*, code: str) -> Store | None:
    return Store.objects.filter(code=code, is_active=True).first()


def audit_entry_list(
    *,
    action: str = "",
    actor: str = "",
    member_no: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("member").order_by("-created_at", "-id")
    if action:
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_label__icontains=actor)
    if member_no:
        entries = entries.filter(member__member_no=member_no)
    if since:
        entries = entries.filter(created_at__date__gte=since)
    if until:
        entries = entries.filter(created_at__date__lte=until)
    return entries
