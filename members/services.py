"""Writes for members: enrolment, profile, consent, phone reveal, closing an account.

Every function here runs in its own transaction and writes its audit entry in it.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import AuditEntry, ConsentEvent, Member, Store, User
from .numbers import InvalidPhone, member_no_generate, phone_normalize

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes


class MemberError(Exception):
    """A domain error with a message fit to show to the person who caused it."""


class MemberAlreadyExists(MemberError):
    def __init__(self, member: Member, field: str = "phone") -> None:
        self.member = member
        self.field = field
        super().__init__(f"A member with this {field} already exists: {member.member_no}")


class InvalidMemberData(MemberError):
    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def audit_log(
    *,
    actor: User | None,
    action: str,
    target: Any = None,
    member: Member | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record one audit entry; call inside the transaction of the change it describes."""
    actor_label = ""
    if actor is not None and actor.is_authenticated:
        actor_label = str(actor)
    else:
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=actor_label,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        member=member,
        details=details or {},
    )


def referral_code_generate() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class Consents:
    """What a shopper agreed to at enrolment. None means "not asked": nothing is recorded."""

    privacy_version: str | None = None
    sms: bool | None = None
    email: bool | None = None


def _consent_events(
    *, member: Member, consents: Consents, source: str, actor: User | None
) -> list[ConsentEvent]:
    now = timezone.now()
    events = []
    if consents.privacy_version:
        member.privacy_notice_version = consents.privacy_version
        member.privacy_accepted_at = now
        events.append(
            ConsentEvent(
                member=member,
                kind=ConsentEvent.Kind.PRIVACY_NOTICE,
                granted=True,
                version=consents.privacy_version,
                source=source,
                actor=actor,
                recorded_at=now,
            )
        )
    for kind, value in ((ConsentEvent.Kind.SMS, consents.sms), (ConsentEvent.Kind.EMAIL, consents.email)):
        if value is None:
            continue
        setattr(member, f"consent_{kind}", value)
        events.append(
            ConsentEvent(
                member=member, kind=kind, granted=value, source=source, actor=actor, recorded_at=now
            )
        )
    return events


def _clean_enrolment(
    *, phone: str, name: str, email: str | None, gender: str, birthday: datetime.date | None
) -> tuple[str, str, str | None]:
    errors: dict[str, str] = {}
    try:
        phone_e164 = phone_normalize(phone)
    except InvalidPhone:
        phone_e164 = ""
        errors["phone"] = "invalid_phone"
    name = (name or "").strip()
    if not name:
        errors["name"] = "required"
    elif len(name) > 100:
        errors["name"] = "too_long"
    email = (email or "").strip().lower() or None
    if email and ("@" not in email or len(email) > 254):
        errors["email"] = "invalid_email"
    if gender not in Member.Gender.values:
        errors["gender"] = "invalid_gender"
    if birthday is not None and not (datetime.date(1900, 1, 1) <= birthday <= timezone.localdate()):
        errors["birthday"] = "invalid_birthday"
    if errors:
        raise InvalidMemberData(errors)
    return phone_e164, name, email


def member_enroll(
    *,
    phone: str,
    name: str,
    channel: str,
    store: Store | None = None,
    email: str | None = None,
    gender: str = "",
    birthday: datetime.date | None = None,
    city: str = "",
    referrer: Member | None = None,
    consents: Consents = Consents(),  # noqa: B008 - frozen dataclass, safe as a default
    actor: User | None = None,
    user: User | None = None,
) -> Member:
    """Enrol a shopper, the one way in for the till, the API and online sign-up.

    With `user` (online sign-up, phone already verified) a member already enrolled with that
    phone and no login yet is linked to the user rather than duplicated. Otherwise a phone
    or e-mail that is already a member raises `MemberAlreadyExists` and nothing is written.
    """
    phone_e164, name, email = _clean_enrolment(
        phone=phone, name=name, email=email, gender=gender, birthday=birthday
    )
    source = {
        Member.Channel.STORE: ConsentEvent.Source.STORE,
        Member.Channel.ONLINE: ConsentEvent.Source.SIGNUP,
        Member.Channel.IMPORT: ConsentEvent.Source.IMPORT,
    }.get(channel, ConsentEvent.Source.API)

    with transaction.atomic():
        existing = Member.objects.select_for_update().filter(phone=phone_e164).first()
        if existing is not None:
            if user is not None and existing.user_id is None:
                return _member_link_user(
                    member=existing, user=user, email=email, consents=consents, source=source
                )
            raise MemberAlreadyExists(existing)
        if email:
            taken = Member.objects.filter(email=email).first()
            if taken is not None:
                raise MemberAlreadyExists(taken, field="email")

        member = Member(
            phone=phone_e164,
            name=name,
            email=email,
            gender=gender,
            birthday=birthday,
            city=city,
            home_store=store,
            enrolment_store=store,
            enrolment_channel=channel,
            enrolled_by=actor if actor is not None and actor.is_authenticated else None,
            referrer=referrer,
            user=user,
        )
        events = _consent_events(member=member, consents=consents, source=source, actor=actor)
        _save_with_fresh_numbers(member)
        for event in events:
            event.member = member
        ConsentEvent.objects.bulk_create(events)
        audit_log(
            actor=actor or user,
            action="member.enrol",
            target=member,
            member=member,
            details={"channel": channel, "store": store.code if store else None},
        )
    return member


def _save_with_fresh_numbers(member: Member) -> None:
    """Save a new member, drawing another random number on the rare collision."""
    for _attempt in range(10):
        member.member_no = member_no_generate()
        member.referral_code = referral_code_generate()
        try:
            with transaction.atomic():
                member.save()
            return
        except IntegrityError:
            if Member.objects.filter(phone=member.phone).exists():
                raise
            continue
    raise RuntimeError("could not allocate a member number")


def _member_link_user(
    *, member: Member, user: User, email: str | None, consents: Consents, source: str
) -> Member:
    member.user = user
    if email and not member.email and not Member.objects.filter(email=email).exists():
        member.email = email
    events = _consent_events(member=member, consents=consents, source=source, actor=user)
    member.save()
    ConsentEvent.objects.bulk_create(events)
    audit_log(actor=user, action="member.link_login", target=member, member=member)
    return member


def member_signup_complete(*, user: User) -> Member:
    """Called once the sign-up phone is verified: enrol, or find the till enrolment."""
    if hasattr(user, "member") and user.member is not None:
        return user.member
    pending = user.pending_enrolment or {}
    consents = Consents(
        privacy_version=pending.get("privacy_version") or settings.PRIVACY_NOTICE_VERSION,
        sms=bool(pending.get("consent_sms")),
        email=bool(pending.get("consent_email")),
    )
    member = member_enroll(
        phone=user.phone or "",
        name=user.name or pending.get("name", ""),
        email=user.email,
        channel=Member.Channel.ONLINE,
        consents=consents,
        user=user,
    )
    User.objects.filter(pk=user.pk).update(pending_enrolment={})
    return member


PROFILE_FIELDS = ("name", "email", "gender", "birthday", "city", "home_store")


def member_update_profile(*, member: Member, actor: User, **changes: Any) -> Member:
    """Change profile fields; the audit entry lists which fields changed (not their values)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    if "email" in changes:
        changes["email"] = (changes["email"] or "").strip().lower() or None
        if (
            changes["email"]
            and Member.objects.filter(email=changes["email"]).exclude(pk=member.pk).exists()
        ):
            raise InvalidMemberData({"email": "email_taken"})
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        changed = [field for field, value in changes.items() if getattr(member, field) != value]
        for field in changed:
            setattr(member, field, changes[field])
        if changed:
            member.save()
            audit_log(
                actor=actor,
                action="member.update_profile",
                target=member,
                member=member,
                details={"fields": changed},
            )
    return member


def member_set_consent(
    *, member: Member, kind: str, granted: bool, source: str, actor: User | None
) -> Member:
    """Grant or withdraw marketing consent for one channel; records history when it changes."""
    if kind not in (ConsentEvent.Kind.SMS, ConsentEvent.Kind.EMAIL):
        raise ValueError(f"not a marketing channel: {kind}")
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if getattr(member, f"consent_{kind}") == granted:
            return member
        setattr(member, f"consent_{kind}", granted)
        member.save(update_fields=[f"consent_{kind}", "updated_at"])
        ConsentEvent.objects.create(
            member=member, kind=kind, granted=granted, source=source, actor=actor
        )
        audit_log(
            actor=actor,
            action="member.consent",
            target=member,
            member=member,
            details={"kind": kind, "granted": granted, "source": source},
        )
    return member


def member_reveal_phone(*, member: Member, actor: User) -> str:
    """Return the full phone for a staff user, logging that it was shown."""
    with transaction.atomic():
        audit_log(actor=actor, action="member.reveal_phone", target=member, member=member)
    return member.phone or ""


def member_close(*, member: Member, actor: User) -> Member:
    """Close the account: anonymise personal data, keep the row and its number.

    The ledger and purchases keep pointing at the same row, now pseudonymous; the login is
    deactivated and stripped of phone and e-mail so both can be used for a new sign-up.
    """
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.status == Member.Status.ANONYMISED:
            return member
        user = member.user
        member.phone = None
        member.email = None
        member.name = ""
        member.gender = ""
        member.birthday = None
        member.city = ""
        member.preferred_categories = []
        member.tags = []
        member.consent_sms = False
        member.consent_email = False
        member.status = Member.Status.ANONYMISED
        member.closed_at = timezone.now()
        member.user = None
        member.save()
        if user is not None:
            user.email = None
            user.phone = None
            user.phone_verified = False
            user.name = ""
            user.is_active = False
            user.set_unusable_password()
            user.save()
            user.emailaddress_set.all().delete()
        audit_log(actor=actor, action="member.close", target=member, member=member)
    return member
