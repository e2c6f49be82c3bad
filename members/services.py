"""Writes for members: enrolment, profile, consent, phone reveal, closing an account.

Every function here runs in its own transaction and writes its audit entry in it.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.jobs import nightly_job_get

from .hooks import member_enrolled, member_profile_changed
from .models import ApiToken, AuditEntry, ConsentEvent, Member, Store, User
from .numbers import InvalidPhone, member_no_generate, phone_normalize
from .selectors import API_TOKEN_ACTOR, member_get_by_referral_code, staff_store_allowed

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes


class MemberError(Exception):
    """A domain error with a message fit to show to the person who caused it."""


class MemberAlreadyExists(MemberError):
    def __init__(self, member: Member, field: str = "phone") -> None:
        self.member = member
        self.field = field
        super().__init__(f"A member with this {field} already exists: {member.member_no}")


class StoreNotYours(MemberError):
    """A member of staff acting for a store that is not on their login."""


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
    actor_label: str = "",
) -> AuditEntry:
    """Record one audit entry; call inside the transaction of the change it describes.

    `actor_label` names a non-person actor (an API token) when there is no user, or names
    the user another way (a closed account's pseudonym).
    """
    if actor is not None and actor.is_authenticated:
        actor_label = actor_label or str(actor)
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
    for kind, value in (
        (ConsentEvent.Kind.SMS, consents.sms),
        (ConsentEvent.Kind.EMAIL, consents.email),
    ):
        if value is None:
            continue
        setattr(member, f"consent_{kind}", value)
        events.append(
            ConsentEvent(
                member=member, kind=kind, granted=value, source=source, actor=actor, recorded_at=now
            )
        )
    return events


# The oldest birthday anyone may enter: not before 1900, nor more than 120 years ago.
BIRTHDAY_EARLIEST = datetime.date(1900, 1, 1)
BIRTHDAY_MAX_AGE_YEARS = 120


def birthday_earliest(*, today: datetime.date | None = None) -> datetime.date:
    today = today or timezone.localdate()
    try:
        years_ago = today.replace(year=today.year - BIRTHDAY_MAX_AGE_YEARS)
    except ValueError:  # 29 February
        years_ago = today.replace(year=today.year - BIRTHDAY_MAX_AGE_YEARS, day=28)
    return max(BIRTHDAY_EARLIEST, years_ago)


def birthday_problem(*, birthday: datetime.date, today: datetime.date | None = None) -> str:
    """ "birthday_in_future", "birthday_too_early" or "" for a birthday one may enter."""
    today = today or timezone.localdate()
    if birthday > today:
        return "birthday_in_future"
    if birthday < birthday_earliest(today=today):
        return "birthday_too_early"
    return ""


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
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = "invalid_email"
    if gender not in Member.Gender.values:
        errors["gender"] = "invalid_gender"
    problem = birthday_problem(birthday=birthday) if birthday is not None else ""
    if problem:
        # The API has always called a birthday in the future "invalid_birthday".
        errors["birthday"] = "invalid_birthday" if problem == "birthday_in_future" else problem
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
    consents: Consents = Consents(),
    actor: User | None = None,
    user: User | None = None,
    api_token: ApiToken | None = None,
    welcome_sms: bool = False,
    enrolled_at: datetime.datetime | None = None,
) -> Member:
    """Enrol a shopper, the one way in for the till, the API and online sign-up.

    With `user` (online sign-up, phone already verified) a member already enrolled with that
    phone and no login yet is linked to the user rather than duplicated. Otherwise a phone
    or e-mail that is already a member raises `MemberAlreadyExists` and nothing is written.
    `welcome_sms` (enrolment at a till) texts the new member how to log in, once committed.
    `enrolled_at` dates a shopper who joined before (demo data with a history); now if None.
    """
    if actor is not None and store is not None and not staff_store_allowed(user=actor, store=store):
        raise StoreNotYours(
            _("You can only do this for your own stores. Choose one of the stores listed.")
        )
    phone_e164, name, email = _clean_enrolment(
        phone=phone, name=name, email=email, gender=gender, birthday=birthday
    )
    source = {
        Member.Channel.STORE: ConsentEvent.Source.STORE,
        Member.Channel.ONLINE: ConsentEvent.Source.SIGNUP,
        Member.Channel.IMPORT: ConsentEvent.Source.IMPORT,
    }.get(channel, ConsentEvent.Source.API)
    if api_token is not None:
        source = ConsentEvent.Source.API

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
            enrolled_at=enrolled_at or timezone.now(),
        )
        events = _consent_events(member=member, consents=consents, source=source, actor=actor)
        _save_with_fresh_numbers(member)
        for event in events:
            event.member = member
        ConsentEvent.objects.bulk_create(events)
        details: dict[str, Any] = {"channel": channel, "store": store.code if store else None}
        if api_token is not None:
            details["api_token"] = api_token.prefix
        audit_log(
            actor=actor or user,
            action="member.enrol",
            target=member,
            member=member,
            details=details,
            actor_label=_api_token_label(api_token) if api_token is not None else "",
        )
        # In the same transaction: a sign-up bonus commits with the enrolment or not at all.
        member_enrolled(member=member)
        if welcome_sms and user is None:
            # After commit, and through the task queue: a rolled-back enrolment must not
            # have been welcomed, and a slow SMS gateway must not hold up the till's answer.
            # Robust: a broker that is down costs the welcome text (logged), never an error
            # answer for a member who is enrolled.
            from .tasks import member_welcome_send_task

            transaction.on_commit(lambda: member_welcome_send_task.delay(member.pk), robust=True)
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
            # Another request enrolled this phone or e-mail between our check and our insert
            # (a POS retry, a double click): answer as the check would have.
            clash = Member.objects.filter(phone=member.phone).first()
            if clash is not None:
                raise MemberAlreadyExists(clash) from None
            clash = Member.objects.filter(email=member.email).first() if member.email else None
            if clash is not None:
                raise MemberAlreadyExists(clash, field="email") from None
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
    # The login may have added the e-mail that completes the profile.
    member_profile_changed(member=member)
    return member


def member_signup_complete(*, user: User) -> Member:
    """Called once the sign-up phone is verified: enrol, or find the till enrolment."""
    if hasattr(user, "member") and user.member is not None:
        return user.member
    pending = user.pending_enrolment or {}
    if pending.get(TILL_MEMBER_LOGIN_KEY):
        # A till member's first code login: they chose at the till, nothing was asked now.
        # That member must still be there to attach to (not closed, merged or linked since
        # the code was sent): this login never accepted a privacy notice to enrol afresh.
        if not Member.objects.filter(
            member_no=pending[TILL_MEMBER_LOGIN_KEY],
            phone=user.phone,
            user__isnull=True,
            status__in=[Member.Status.ACTIVE, Member.Status.FROZEN],
        ).exists():
            raise MemberError("the membership this code login was made for has changed")
        consents = Consents()
    else:
        consents = Consents(
            privacy_version=pending.get("privacy_version") or settings.PRIVACY_NOTICE_VERSION,
            sms=bool(pending.get("consent_sms")),
            email=bool(pending.get("consent_email")),
        )
    email = user.email
    # The login's e-mail may already be on another member (given at a till, say). The phone
    # is what was verified, so enrol by phone and leave the e-mail off rather than refuse.
    if email and Member.objects.filter(email=email.lower()).exclude(phone=user.phone).exists():
        email = None
    # Looked up again now: the code was checked at sign-up, but its member may have closed
    # the account since. A member already enrolled at a till keeps having no referrer: the
    # friend did not bring them in (member_enroll only sets it on a new member).
    referrer = member_get_by_referral_code(code=pending.get("referral_code") or "")
    with transaction.atomic():
        member = member_enroll(
            phone=user.phone or "",
            name=user.name or pending.get("name", ""),
            email=email,
            channel=Member.Channel.ONLINE,
            referrer=referrer,
            consents=consents,
            user=user,
        )
        User.objects.filter(pk=user.pk).update(pending_enrolment={})
    user.pending_enrolment = {}
    return member


# Marks the login made for a till member's first code login (pending_enrolment).
TILL_MEMBER_LOGIN_KEY = "till_member_no"


def user_for_member_code_login(*, phone: str) -> User | None:
    """The login that a member enrolled at the till, without one, logs in with by SMS code.

    allauth sends log-in codes to logins only, and a till enrolment has none. The login made
    here has no phone, e-mail or password: it opens only with a code sent to the member's
    own number, and proving that code attaches it to the member (`user_phone_set` →
    `member_signup_complete` finds the till enrolment by phone). Until then it is bound to
    nobody, so an online sign-up with the number still gets the member. Asking again reuses
    it, so requests for codes do not pile up logins.
    """
    try:
        phone_e164 = phone_normalize(phone)
    except InvalidPhone:
        return None
    member = (
        Member.objects.filter(
            phone=phone_e164,
            user__isnull=True,
            status__in=[Member.Status.ACTIVE, Member.Status.FROZEN],
        )
        .only("member_no", "name")
        .first()
    )
    if member is None:
        return None
    with transaction.atomic():
        user = (
            User.objects.filter(
                member__isnull=True,
                phone__isnull=True,
                email__isnull=True,
                is_active=True,
                **{f"pending_enrolment__{TILL_MEMBER_LOGIN_KEY}": member.member_no},
            )
            .order_by("pk")
            .first()
        )
        if user is None:
            user = User(
                name=member.name, pending_enrolment={TILL_MEMBER_LOGIN_KEY: member.member_no}
            )
            user.set_unusable_password()
            user.save()
    return user


def user_signup_prepare(
    *, user: User, name: str, consent_sms: bool, consent_email: bool, referral_code: str = ""
) -> User:
    """Keep what the shopper chose at sign-up until the phone is verified.

    No member exists yet: an unverified phone must not claim (or create) a member record,
    so the choices (and the friend's referral code) wait on the login and
    `member_signup_complete` applies them.
    """
    user.name = name.strip()
    user.pending_enrolment = {
        "privacy_version": settings.PRIVACY_NOTICE_VERSION,
        "consent_sms": bool(consent_sms),
        "consent_email": bool(consent_email),
        "referral_code": referral_code,
    }
    user.save(update_fields=["name", "pending_enrolment"])
    return user


def user_phone_set(*, user: User, phone: str, verified: bool) -> Member | None:
    """Store a login's phone (allauth's hook); a verified phone completes the sign-up.

    One transaction, so a login is never marked verified without its member record.
    """
    with transaction.atomic():
        # Whoever proves the number (or signs up with it now) takes it from logins that
        # only ever typed it and never verified it.
        User.objects.filter(phone=phone, phone_verified=False).exclude(pk=user.pk).update(
            phone=None
        )
        user.phone = phone
        user.phone_verified = verified
        if user.pk:
            user.save(update_fields=["phone", "phone_verified"])
        if verified and user.pk:
            return member_signup_complete(user=user)
    return None


PROFILE_FIELDS = ("name", "email", "gender", "birthday", "city", "home_store")
# Not a profile field for the admin: the member's own choice, made on the portal profile.
MESSAGE_LANGUAGE_FIELD = "language"


def member_update_profile(*, member: Member, actor: User, **changes: Any) -> Member:
    """Change profile fields; the audit entry lists which fields changed (not their values)."""
    unknown = set(changes) - {*PROFILE_FIELDS, MESSAGE_LANGUAGE_FIELD}
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
            member_profile_changed(member=member)
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


def user_password_set_after_code(*, user: User, password: str) -> User:
    """Set a new password without the old one, for a login that just proved a code.

    The caller checks the recent login by code (SMS or e-mail) and runs the password
    validators: the code proves what allauth's reset by e-mail code proves, which is the
    only way a shopper who joined with a phone alone can replace a forgotten password.
    Changing the hash logs out the user's other sessions (Django checks it per request).
    """
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_log(
            actor=user,
            action="user.password_set_after_code",
            target=user,
            member=Member.objects.filter(user_id=user.pk).first(),
        )
    return user


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
        member.import_source_id = None  # the old system's id could identify the person again
        member.save()
        pseudonym = f"member {member.member_no} (closed)"
        if user is not None:
            from allauth.mfa.models import Authenticator

            user.email = None
            user.phone = None
            user.phone_verified = False
            user.name = ""
            user.pending_enrolment = {}
            user.is_active = False
            user.set_unusable_password()
            user.save()
            user.emailaddress_set.all().delete()
            Authenticator.objects.filter(user=user).delete()
            # Earlier entries named the member by e-mail: name them by the pseudonym now.
            AuditEntry.objects.filter(actor=user).update(actor_label=pseudonym)
        acting_for_self = actor is not None and user is not None and actor.pk == user.pk
        audit_log(
            actor=actor,
            action="member.close",
            target=member,
            member=member,
            actor_label=pseudonym if acting_for_self else "",
        )
    return member


# --- POS API tokens ---------------------------------------------------------------------

API_TOKEN_PREFIX = "hyl_"  # recognisable in logs and by secret scanners
# last_used_at is for "is this till still alive?", not an access log: one write a minute
# per token at most, instead of one write per request.
API_TOKEN_TOUCH_INTERVAL = datetime.timedelta(minutes=1)


def _api_token_label(token: ApiToken) -> str:
    # Stored in English; members.selectors.audit_actor_label translates it for the reader.
    return API_TOKEN_ACTOR.format(prefix=token.prefix, store=token.store.code)


def api_token_label(*, token: ApiToken) -> str:
    """How an API token is named as the actor of an audit entry."""
    return _api_token_label(token)


def api_token_create(
    *, store: Store, name: str = "", actor: User | None = None
) -> tuple[ApiToken, str]:
    """Issue a bearer token for a POS system at `store`; returns the token and its raw value.

    Only the SHA-256 of the raw value is stored, so the raw value exists only in the return
    value: show it once and forget it.
    """
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            store=store,
            name=name.strip(),
            token_hash=ApiToken.hash(raw),
            prefix=raw[: ApiToken._meta.get_field("prefix").max_length],
        )
        audit_log(
            actor=actor,
            action="api_token.create",
            target=token,
            details={"store": store.code, "name": token.name, "prefix": token.prefix},
        )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User | None = None) -> ApiToken:
    """Stop a token from authenticating; the row stays so the audit trail can name it."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_log(
            actor=actor,
            action="api_token.revoke",
            target=token,
            details={"store": token.store.code, "prefix": token.prefix},
        )
    return token


def api_token_set_full_phone(*, token: ApiToken, allowed: bool, actor: User | None) -> ApiToken:
    """Allow (or stop) a token seeing members' whole phone numbers in the API; audited."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("store").get(pk=token.pk)
        if token.full_phone == allowed:
            return token
        token.full_phone = allowed
        token.save(update_fields=["full_phone"])
        audit_log(
            actor=actor,
            action="api_token.full_phone",
            target=token,
            details={"store": token.store.code, "prefix": token.prefix, "full_phone": allowed},
        )
    return token


def api_token_mark_used(*, token: ApiToken) -> None:
    """Record that the token was used, at most once per API_TOKEN_TOUCH_INTERVAL."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < API_TOKEN_TOUCH_INTERVAL:
        return
    # The conditional UPDATE keeps concurrent requests from each writing in the same minute.
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_TOKEN_TOUCH_INTERVAL)
    ).update(last_used_at=now)
    token.last_used_at = now


# --- Stores and logins created by setup (seed_demo, an administrator's scripts) ---


class UserAlreadyExists(MemberError):
    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"A login with this e-mail already exists: {email}")


def store_ensure(*, code: str, name: str, city: str = "", address: str = "") -> Store:
    """Return the store with `code`, creating it first if there is none (safe to re-run).

    An existing store is returned unchanged: its name may have been edited since.
    """
    with transaction.atomic():
        store, created = Store.objects.get_or_create(
            code=code.strip().upper(), defaults={"name": name, "city": city, "address": address}
        )
        if created:
            audit_log(actor=None, action="store.create", target=store, details={"code": store.code})
    return store


def user_create(
    *,
    email: str,
    password: str,
    name: str = "",
    phone: str | None = None,
    roles: tuple[str, ...] | list[str] = (),
    stores: Iterable[Store] = (),
    is_superuser: bool = False,
    actor: User | None = None,
) -> User:
    """Create a login with a verified primary e-mail, in the given role groups and stores.

    For staff accounts and demo logins made by an administrator, not for shoppers (they sign
    up and verify their phone themselves). A phone given here is taken as verified.
    `is_superuser` also opens the Django admin.
    """
    # Imported here: allauth's models and auth's Group are needed by this setup path only.
    from allauth.account.models import EmailAddress
    from django.contrib.auth.models import Group

    email = email.strip().lower()
    phone_e164 = None
    if phone:
        try:
            phone_e164 = phone_normalize(phone)
        except InvalidPhone:
            raise InvalidMemberData({"phone": "invalid_phone"}) from None
    groups = list(Group.objects.filter(name__in=roles))
    unknown = set(roles) - {group.name for group in groups}
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise UserAlreadyExists(email)
        if phone_e164 and User.objects.filter(phone=phone_e164).exists():
            raise InvalidMemberData({"phone": "phone_taken"})
        user = User(
            email=email,
            name=name.strip(),
            phone=phone_e164,
            phone_verified=phone_e164 is not None,
            is_staff=is_superuser,
            is_superuser=is_superuser,
        )
        user.set_password(password)
        user.save()
        user.groups.set(groups)
        stores = list(stores)
        user.stores.set(stores)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        audit_log(
            actor=actor,
            action="user.create",
            target=user,
            details={
                "roles": sorted(group.name for group in groups),
                "stores": sorted(store.code for store in stores),
                "superuser": is_superuser,
            },
        )
    return user


def user_stores_set(*, user: User, stores: Iterable[Store], actor: User | None = None) -> None:
    """Make `stores` the stores a staff login acts for (members.selectors.staff_store_ids)."""
    stores = list(stores)
    with transaction.atomic():
        before = sorted(user.stores.values_list("code", flat=True))
        after = sorted(store.code for store in stores)
        if before == after:
            return
        user.stores.set(stores)
        audit_log(
            actor=actor,
            action="user.stores",
            target=user,
            details={"before": before, "after": after},
        )


def job_rerun_request(*, name: str, business_date: datetime.date, actor: User) -> None:
    """Record that `actor` asked for job `name` to run again for `business_date`.

    The caller queues the run (core.tasks.nightly_job_task) after commit; the job runner
    records the run itself. Raises KeyError for a job nobody registered.
    """
    nightly_job_get(name)
    with transaction.atomic():
        audit_log(
            actor=actor,
            action="job.rerun",
            details={"job": name, "date": business_date.isoformat()},
        )
