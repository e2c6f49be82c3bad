"""Reads for members: the staff search, member lookups, exports and the audit log."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from core.config import config_cached
from core.db import CompiledRead

from .models import ApiToken, AuditEntry, ConsentEvent, Member, Store
from .numbers import (
    InvalidPhone,
    looks_like_member_no,
    member_no_from_qr_payload,
    member_no_is_valid,
    phone_normalize,
)

SEARCH_LIMIT = 20

StrOrPromise = str | Promise


@dataclass(frozen=True)
class MemberSearchResult:
    members: list[Member]
    # What the query was taken to be: "member_no", "phone", "name" or "" for nothing typed.
    kind: str
    # A reason the query cannot match anyone, to show instead of "no results".
    problem: str = ""
    # How many members match in all (a name search shows them `limit` to a page).
    total: int = 0
    page: int = 1
    limit: int = SEARCH_LIMIT

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.limit + 1 if self.members else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.limit + len(self.members)


def member_search(*, query: str, limit: int = SEARCH_LIMIT, page: int = 1) -> MemberSearchResult:
    """One box for the till: a scanned card, a member number, a phone or a name.

    A 12-digit number with a wrong check digit is reported, never matched to someone else.
    A name search returns `page` (from 1) of `limit` members and how many match in all.
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
        found = list(members.filter(member_no=number))
        return MemberSearchResult(members=found, kind="member_no", total=len(found))

    if digits.lstrip("+").isdigit():
        try:
            phone = phone_normalize(digits)
        except InvalidPhone:
            return MemberSearchResult(members=[], kind="phone", problem="invalid_phone")
        found = list(members.filter(phone=phone))
        return MemberSearchResult(members=found, kind="phone", total=len(found))

    named = members.filter(name__startswith=text)
    page = max(1, page)
    offset = (page - 1) * limit
    # One row more than shown tells whether there are more; only then (or past the first
    # page) is a COUNT needed for the true total.
    found = list(named[offset : offset + limit + 1])
    if page == 1 and len(found) <= limit:
        total = len(found)
    else:
        total = named.count()
        if not found and total:  # a page past the end: show the last one
            page = -(-total // limit)
            offset = (page - 1) * limit
            found = list(named[offset : offset + limit])
    return MemberSearchResult(
        members=found[:limit], kind="name", total=total, page=page, limit=limit
    )


def member_get_by_phone(*, phone: str, for_summary: bool = False) -> Member | None:
    try:
        e164 = phone_normalize(phone)
    except InvalidPhone:
        return None
    return _member_by(field="phone", value=e164, for_summary=for_summary)


def member_get_by_number(*, member_no: str, for_summary: bool = False) -> Member | None:
    if not member_no_is_valid(member_no):
        return None
    return _member_by(field="member_no", value=member_no, for_summary=for_summary)


def _member_by(*, field: str, value: Any, for_summary: bool) -> Member | None:
    # `for_summary`: with what `member_summary` shows, in the same (compiled) query.
    if for_summary:
        return _member_for_summary(field=field, value=value)
    return Member.objects.select_related("home_store").filter(**{field: value}).first()


def referral_code_clean(code: str) -> str:
    """A referral code as typed or linked (spaces, dashes, lower case) in its stored form."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def member_get_by_referral_code(*, code: str) -> Member | None:
    """The active member whose referral code this is; closed and frozen members refer no one."""
    code = referral_code_clean(code)
    if not code:
        return None
    return Member.objects.filter(referral_code=code, status=Member.Status.ACTIVE).first()


def member_referral_count(*, member: Member) -> int:
    """How many members joined with this member's referral code."""
    return Member.objects.filter(referrer=member).count()


def member_get_for_staff(*, member_no: str) -> Member | None:
    """A member with everything the staff 360 page shows about them, in one query."""
    if not member_no_is_valid(member_no):
        return None
    member = (
        member_summary_queryset(at=timezone.now())
        .select_related("home_store", "enrolment_store", "enrolled_by", "user")
        .filter(member_no=member_no)
        .first()
    )
    return _read_for_summary(member)  # the panels' tier and points come with it


def member_consent_history(*, member: Member) -> list[ConsentEvent]:
    """The member's consent events, newest first; each refusal says whether it took back a
    consent given before (`withdrawn`) or was a "no" from the start, as at a till enrolment
    without consent."""
    events = list(member.consent_events.select_related("actor").order_by("recorded_at", "id"))
    granted_before: set[str] = set()
    for event in events:
        event.withdrawn = not event.granted and event.kind in granted_before
        if event.granted:
            granted_before.add(event.kind)
    return events[::-1]


def member_audit_trail(*, member: Member, limit: int = 50) -> QuerySet[AuditEntry]:
    return member.audit_entries.select_related("actor").order_by("-created_at", "-id")[:limit]


# The apps to the right of members (points, tiers) add their part of "download my data":
# each contributor returns {section name: JSON-able data} for one member.
_member_export_contributors: list[Callable[[Member], dict[str, Any]]] = []


def member_export_contributor_register(
    contributor: Callable[[Member], dict[str, Any]],
) -> Callable[[Member], dict[str, Any]]:
    if contributor not in _member_export_contributors:
        _member_export_contributors.append(contributor)
    return contributor


def member_export(*, member: Member) -> dict[str, Any]:
    """Everything held about a member, for "download my data" (PIPL access right)."""
    data = _member_export_own(member=member)
    for contributor in _member_export_contributors:
        data.update(contributor(member))
    return data


def _member_export_own(*, member: Member) -> dict[str, Any]:
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


# Administrators, marketers and auditors have it (migrations/0008_staff_stores.py).
ALL_STORES_PERMISSION = "members.all_stores"


def staff_store_ids(*, user: Any) -> frozenset[int] | None:
    """The stores a back-office user may act for and see the figures of; None for all.

    The one home of the rule "store staff and managers act for their stores only": a login
    with `members.all_stores` (administrators, marketers, auditors, superusers) acts for
    every store; anyone else only for the stores on their login, which may be none.
    """
    if user.has_perm(ALL_STORES_PERMISSION):
        return None
    if not user.is_authenticated:
        return frozenset()
    return frozenset(user.stores.values_list("id", flat=True))


def staff_store_allowed(*, user: Any, store: Store) -> bool:
    """Whether `user` may act for `store` (`staff_store_ids`); the services ask this of the
    person who records a purchase, return, coupon or enrolment, whatever page sent it."""
    store_ids = staff_store_ids(user=user)
    return store_ids is None or store.pk in store_ids


def staff_stores(*, user: Any) -> QuerySet[Store]:
    """The active stores a back-office user may choose on a form (`staff_store_ids`)."""
    store_ids = staff_store_ids(user=user)
    stores = store_list()
    return stores if store_ids is None else stores.filter(pk__in=store_ids)


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


# What each audit action means to a person reading the log. Apps to the right of members
# (points, tiers, campaigns) add theirs with `audit_action_register` from AppConfig.ready(),
# as they cannot be imported from here; an action nobody registered shows as its code.
_audit_action_labels: dict[str, StrOrPromise] = {
    "member.enrol": gettext_lazy("Member enrolled"),
    "member.link_login": gettext_lazy("Online login linked to member"),
    "member.update_profile": gettext_lazy("Profile changed"),
    "member.consent": gettext_lazy("Marketing consent changed"),
    "member.reveal_phone": gettext_lazy("Full phone number shown"),
    "member.close": gettext_lazy("Account closed"),
    "member.import": gettext_lazy("Members imported from CSV"),
    "job.rerun": gettext_lazy("Nightly job run again"),
    "api_token.create": gettext_lazy("API token issued"),
    "api_token.revoke": gettext_lazy("API token revoked"),
    "api_token.full_phone": gettext_lazy("Full phone numbers for an API token changed"),
    "store.create": gettext_lazy("Store created"),
    "user.create": gettext_lazy("Login created"),
    "user.stores": gettext_lazy("Stores of a login changed"),
    "user.password_set_after_code": gettext_lazy("Password set after a code login"),
}


def audit_action_register(*, action: str, label: StrOrPromise) -> None:
    _audit_action_labels[action] = label


def audit_action_label(action: str) -> StrOrPromise:
    return _audit_action_labels.get(action, action)


def audit_action_choices() -> list[tuple[str, StrOrPromise]]:
    """(code, label) of every known action, by code so related actions sit together."""
    return sorted(_audit_action_labels.items())


# What each key of an audit entry's details means to a reader, and how values read: a person
# sees "Points 20", "Granted Yes", never `granted True`. Apps to the right register theirs
# with `audit_detail_register`; a key nobody registered shows as itself.
_audit_detail_labels: dict[str, StrOrPromise] = {
    "after": pgettext_lazy("audit detail", "After"),
    "already_imported": gettext_lazy("Already imported"),
    "amount": gettext_lazy("Amount"),
    "bad_rows": gettext_lazy("Rows with problems"),
    "before": pgettext_lazy("audit detail", "Before"),
    "birthday": gettext_lazy("Birthday"),
    "category": gettext_lazy("Category"),
    "channel": gettext_lazy("Channel"),
    "city": gettext_lazy("City"),
    "code": pgettext_lazy("audit detail", "Code"),
    "coupon": gettext_lazy("Coupon"),
    "coupons": gettext_lazy("Coupons"),
    "created": gettext_lazy("Created"),
    "date": gettext_lazy("Date"),
    "email": gettext_lazy("E-mail"),
    "failure": gettext_lazy("Failure"),
    "fields": gettext_lazy("Fields"),
    "file_name": gettext_lazy("File"),
    "from": pgettext_lazy("audit detail", "From"),
    "full_phone": gettext_lazy("Sees full phone numbers"),
    "gender": gettext_lazy("Gender"),
    "granted": gettext_lazy("Granted"),
    "home_store": gettext_lazy("Home store"),
    "imported": gettext_lazy("Imported"),
    "job": gettext_lazy("Job"),
    "kind": gettext_lazy("Kind"),
    "name": gettext_lazy("Name"),
    "phone": gettext_lazy("Mobile phone"),
    "points": gettext_lazy("Points"),
    "points_price": gettext_lazy("Price in points"),
    "prefix": gettext_lazy("Prefix"),
    "purchases": gettext_lazy("Purchases"),
    "rate": gettext_lazy("Rate"),
    "reason": gettext_lazy("Reason"),
    "receipt_no": gettext_lazy("Receipt"),
    "redemptions": gettext_lazy("Redemptions"),
    "reward": gettext_lazy("Reward"),
    "roles": gettext_lazy("Roles"),
    "rows": gettext_lazy("Rows"),
    "seconds": gettext_lazy("Seconds"),
    "sha256": gettext_lazy("SHA-256"),
    "source": gettext_lazy("Source"),
    "status": gettext_lazy("Status"),
    "store": gettext_lazy("Store"),
    "stores": gettext_lazy("Stores"),
    "superuser": gettext_lazy("Superuser"),
    "target": gettext_lazy("Target"),
    "to": pgettext_lazy("audit detail", "To"),
    "until": gettext_lazy("Until"),
}


def audit_detail_register(
    *, key: str, label: StrOrPromise, choices: Mapping[str, StrOrPromise] | None = None
) -> None:
    """Name a details key; `choices` names its coded values ("staff" → "Store staff")."""
    _audit_detail_labels[key] = label
    if choices is not None:
        _audit_value_choices[key] = dict(choices)


def audit_detail_label(key: str) -> StrOrPromise:
    return _audit_detail_labels.get(key, key)


# Coded values of some keys, as their choices name them ("portal" → "Member portal").
_audit_value_choices: dict[str, dict[str, StrOrPromise]] = {
    "kind": dict(ConsentEvent.Kind.choices),
    "source": dict(ConsentEvent.Source.choices),
    "channel": dict(Member.Channel.choices),
}


def _job_titles() -> dict[str, StrOrPromise]:
    from core.jobs import nightly_jobs

    return {job.name: job.title for job in nightly_jobs()}


def audit_detail_value(value: Any, *, key: str = "") -> str:
    """A details value as text: yes/no for booleans, lists joined, nested keys labelled."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, str) and value in _audit_value_choices.get(key, {}):
        return str(_audit_value_choices[key][value])
    if key == "job" and isinstance(value, str):
        # A nightly job by its name ("Ledger reconcile"), not its code.
        return str(_job_titles().get(value, value))
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list | tuple):
        return ", ".join(str(audit_detail_label(str(item))) for item in value)
    if isinstance(value, dict):
        return "; ".join(
            f"{audit_detail_label(key)}: {audit_detail_value(item)}" for key, item in value.items()
        )
    return str(value)


# How members.services names an API token as an actor; stored in English ("API token
# hyl_iMct (SH001)") so the actor filter finds it whatever the language it was written in.
API_TOKEN_ACTOR = "API token {prefix} ({store})"
_API_TOKEN_ACTOR = re.compile(r"^API token (?P<prefix>\S+) \((?P<store>[^()]*)\)$")


def audit_actor_label(actor_label: str) -> str:
    """An entry's actor as the reader's language says it: an API token's stored label is
    translated ("API 令牌 hyl_iMct (SH001)"); a person's name or e-mail is as stored."""
    match = _API_TOKEN_ACTOR.match(actor_label or "")
    if match is None:
        return actor_label
    return gettext("API token %(prefix)s (%(store)s)") % match.groupdict()


@dataclass(frozen=True)
class AuditDetail:
    key: str
    label: str
    value: str


def audit_details(entry: AuditEntry) -> list[AuditDetail]:
    details = entry.details if isinstance(entry.details, dict) else {}
    return [
        AuditDetail(
            key=key, label=str(audit_detail_label(key)), value=audit_detail_value(value, key=key)
        )
        for key, value in details.items()
    ]


@lru_cache(maxsize=1)
def _models_by_name() -> dict[str, Any]:
    return {model._meta.model_name: model for model in apps.get_models()}


def audit_target_label(target_type: str) -> str:
    """The model named by an entry's `target_type` ("ledgertransaction"), as people say it."""
    model = _models_by_name().get(target_type) if target_type else None
    return str(model._meta.verbose_name) if model is not None else target_type


# --- The member as the POS sees it ------------------------------------------------------


@dataclass(frozen=True)
class TierSummary:
    code: str
    name: str
    # Percent off that the till gives this tier (0 for none).
    discount_rate: Decimal = Decimal("0.00")
    valid_until: datetime.date | None = None


@dataclass(frozen=True)
class PointsSummary:
    available: int = 0
    pending: int = 0


@dataclass(frozen=True)
class PromotionSummary:
    """A points promotion the member earns in now (campaigns fills these in)."""

    title: str
    multiplier: Decimal
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    # Store codes and category codes it is limited to; empty: every store, every purchase.
    stores: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberSummary:
    """A member for a till or an e-shop: who they are, their tier, their points and the
    promotions they earn in."""

    member_no: str
    phone: str
    name: str
    tier: TierSummary
    points: PointsSummary
    promotions: tuple[PromotionSummary, ...] = ()


MemberSummaryContributor = Callable[[Member, MemberSummary], MemberSummary]


@dataclass(frozen=True)
class MemberSummaryReads:
    """What an app's contributor reads, for reading it with the member in one query:
    one-to-one relations to follow (`select_related`) and annotations (name → expression at
    a time, `OuterRef` naming the member's columns), which the contributor then finds on
    the member."""

    select_related: tuple[str, ...] = ()
    annotations: Callable[[datetime.datetime], Mapping[str, Any]] | None = None


_member_summary_reads: dict[str, MemberSummaryReads] = {}


def member_summary_reads_register(*, name: str, reads: MemberSummaryReads) -> None:
    """Read these with the member wherever a summary is wanted (by name: idempotent)."""
    _member_summary_reads[name] = reads
    _summary_reads_compiled.clear()


def member_summary_queryset(*, at: datetime.datetime) -> QuerySet[Member]:
    """Members with what `member_summary` shows of them at `at`, as the ORM reads them: the
    reference of the compiled read (`member_find_open(for_summary=True)`)."""
    related = [name for reads in _member_summary_reads.values() for name in reads.select_related]
    members = Member.objects.select_related(*related)
    for reads in _member_summary_reads.values():
        if reads.annotations is not None:
            members = members.annotate(**reads.annotations(at))
    return members


# A time and a value no query is ever made with: where they land among the parameters of
# the compiled summary read is where each request's own go.
_SAMPLE_AT = datetime.datetime(1901, 2, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
_SAMPLE_VALUE = {
    "member_no": "\x00member_no",
    "phone": "\x00phone",
    "pk": -190102030405,
    "user_id": -190102030406,
}
_summary_reads_compiled: dict[str, CompiledRead] = {}


def _member_for_summary(*, field: str, value: Any) -> Member | None:
    """The member whose `field` is `value`, read with what `member_summary` shows: one
    query, compiled once per process (`core.db.CompiledRead`)."""
    read = _summary_reads_compiled.get(field)
    if read is None:
        read = _summary_reads_compiled[field] = CompiledRead(
            lambda value, at: member_summary_queryset(at=at).filter(**{field: value})[:1],
            value=_SAMPLE_VALUE[field],
            at=_SAMPLE_AT,
        )
    found = read.fetch(value=value, at=timezone.now())
    return _read_for_summary(found[0] if found else None)


def _read_for_summary(member: Member | None) -> Member | None:
    if member is not None:
        member._read_for_summary = True
    return member


def member_read_for_summary(member: Member) -> bool:
    """Whether this instance was read with what the summary shows (its relations and
    annotations are of that read): elsewhere a relation cached on an instance may be older
    than the rows (an account made at enrolment, before the sign-up bonus)."""
    return getattr(member, "_read_for_summary", False)


# tiers and points import members, never the reverse, so they fill in their part of the
# summary by registering a contributor here (from their AppConfig.ready()). Each receives
# the summary so far and returns it with its part replaced (dataclasses.replace).
_member_summary_contributors: list[MemberSummaryContributor] = []


def member_summary_contributor_register(
    contributor: MemberSummaryContributor,
) -> MemberSummaryContributor:
    """Add a contributor to every `member_summary`; usable as a decorator, idempotent."""
    if contributor not in _member_summary_contributors:
        _member_summary_contributors.append(contributor)
    return contributor


def member_summary_contributor_unregister(contributor: MemberSummaryContributor) -> None:
    """Take a contributor out again (tests that register one of their own)."""
    if contributor in _member_summary_contributors:
        _member_summary_contributors.remove(contributor)


def member_summary_contributors() -> list[MemberSummaryContributor]:
    """The registered contributors, in the order they run."""
    return list(_member_summary_contributors)


def member_summary(*, member: Member) -> MemberSummary:
    """The member object of the POS API; "regular" with no points until a contributor says
    otherwise."""
    summary = MemberSummary(
        member_no=member.member_no,
        phone=member.phone or "",
        name=member.name,
        tier=TierSummary(code="regular", name=gettext("Regular")),
        points=PointsSummary(),
    )
    for contributor in _member_summary_contributors:
        summary = contributor(member, summary)
    return summary


def member_find_open(
    *, phone: str = "", member_no: str = "", for_summary: bool = False
) -> Member | None:
    """The open (active or frozen) member with this phone or number, or None.

    A member number with a wrong check digit finds nobody rather than a near miss; closed
    and anonymised members are not found. `for_summary`: read with the member what
    `member_summary` shows (the apps' `member_summary_reads_register`), in the same query.
    """
    if member_no:
        member = member_get_by_number(member_no=member_no, for_summary=for_summary)
    else:
        member = member_get_by_phone(phone=phone, for_summary=for_summary)
    if member is None or not member.is_open:
        return None
    return member


def member_get_for_summary(
    *, member_id: int | None = None, user_id: int | None = None
) -> Member | None:
    """The member (by id, or by their login's id) with what `member_summary` shows, in
    one query."""
    if user_id is not None:
        return _member_for_summary(field="user_id", value=user_id)
    return _member_for_summary(field="pk", value=member_id)


# --- POS API tokens ---------------------------------------------------------------------

API_TOKEN_MAX_LENGTH = 200  # far above what api_token_create issues; longer is not ours


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token whose raw value this is: not revoked, and its store still active.

    Every till request asks, so each process keeps the live tokens (core.config: a token
    issued or revoked, or a store closed, reaches every process within
    CONFIG_VERSION_CHECK_SECONDS; at once in the one that did it). Read only."""
    if not raw or len(raw) > API_TOKEN_MAX_LENGTH:
        return None
    return _live_tokens().get(ApiToken.hash(raw))


@config_cached
def _live_tokens() -> dict[str, ApiToken]:
    tokens = ApiToken.objects.select_related("store").filter(
        revoked_at__isnull=True, store__is_active=True
    )
    return {token.token_hash: token for token in tokens}


@dataclass(frozen=True)
class DuplicateGroup:
    """Members that are probably one shopper: the same name and birthday, or a login whose
    phone or e-mail is another member's."""

    reason: str
    members: list[Member]


def member_duplicate_groups(*, limit: int = 100) -> list[DuplicateGroup]:
    """Likely duplicates among open members, in a fixed number of queries however many."""
    open_members = Member.objects.filter(status__in=[Member.Status.ACTIVE, Member.Status.FROZEN])
    pairs = list(
        open_members.exclude(birthday__isnull=True)
        .exclude(name="")
        .values_list("name", "birthday")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("name", "birthday")[:limit]
    )
    groups = []
    if pairs:
        twins = Q()
        for name, birthday, _count in pairs:
            twins |= Q(name=name, birthday=birthday)
        by_pair: dict[tuple, list[Member]] = {}
        for member in (
            open_members.filter(twins).select_related("home_store").order_by("enrolled_at", "id")
        ):
            by_pair.setdefault((member.name, member.birthday), []).append(member)
        groups = [
            DuplicateGroup(reason="name_birthday", members=by_pair[(name, birthday)])
            for name, birthday, _count in pairs
        ]
    # A login that carries another member's phone or e-mail (e.g. a shopper who joined
    # online with an e-mail the till had put on an older card).
    crossed = list(
        open_members.filter(user__isnull=False)
        .select_related("user", "home_store")
        .filter(
            Q(user__email__in=open_members.exclude(email=None).values("email"))
            | Q(user__phone__in=open_members.values("phone"))
        )[:limit]
    )
    if crossed:
        contacts = Q()
        for member in crossed:
            if member.user.email:
                contacts |= Q(email=member.user.email)
            if member.user.phone:
                contacts |= Q(phone=member.user.phone)
        others = list(open_members.filter(contacts).select_related("home_store"))
        for member in crossed:
            matching = [
                other
                for other in others
                if other.pk != member.pk
                and (
                    (member.user.email and other.email == member.user.email)
                    or (member.user.phone and other.phone == member.user.phone)
                )
            ]
            if matching:
                groups.append(DuplicateGroup(reason="login_contact", members=[member, *matching]))
    return groups
