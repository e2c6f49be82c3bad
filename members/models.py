"""Members, their stores, accounts, consent and the audit log.

`User` is the login (allauth: phone or e-mail + password). `Member` is the loyalty identity
and exists without a login when a cashier enrols a shopper at the till; online sign-up later
attaches a `User` to that same member once the phone is verified. Personal data lives on
`Member` so closing an account can blank it while keeping the row (and so the ledger) under
its pseudonymous member number. Consent is recorded as append-only `ConsentEvent`s; the
flags on `Member` are the current state that message sending reads. `AuditEntry` is one
table that every service writes to for changes a person made or data a person revealed.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .numbers import phone_mask


class BlankAsNullEmailField(models.EmailField):
    """An optional, unique e-mail that is stored as NULL when blank, whichever path wrote it.

    Both e-mail columns are unique, so one stored '' would refuse every other login or
    member without an e-mail (allauth's sign-up and "remove e-mail" write '' for "none").
    Converting here, where every INSERT and UPDATE passes, makes NULL the one spelling of
    "no e-mail"; the check constraints in Meta refuse '' from anything that bypasses the ORM.
    """

    def get_db_prep_save(self, value, connection):
        if isinstance(value, str) and not value.strip():
            value = None
        return super().get_db_prep_save(value, connection)


def _email_not_blank(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=~Q(email=""), name=name)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str | None, password: str | None, **extra) -> User:
        user = self.model(email=self.normalize_email(email) or None, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str | None = None, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login. Members log in with phone or e-mail; staff usually with e-mail."""

    email = BlankAsNullEmailField(_("e-mail"), unique=True, null=True, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=20, unique=True, null=True, blank=True)
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    name = models.CharField(_("name"), max_length=100, blank=True)
    is_staff = models.BooleanField(
        _("Django admin access"),
        default=False,
        help_text=_("Can log in to the Django admin site. Back-office access comes from roles."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # What the shopper chose at sign-up, applied once the phone is verified and the member
    # record exists (or is found, for a shopper enrolled at the till).
    pending_enrolment = models.JSONField(
        default=dict, blank=True, verbose_name=_("pending enrolment")
    )
    # The stores a store staff member or manager acts for (members.selectors.staff_store_ids
    # is the one place that reads it); roles with `members.all_stores` act for every store.
    stores = models.ManyToManyField(
        "Store",
        blank=True,
        related_name="staff",
        verbose_name=_("stores"),
        help_text=_(
            "The stores this member of staff records purchases, returns, coupons and "
            "enrolments for, and sees the figures of. Administrators, marketers and auditors "
            "see every store."
        ),
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [_email_not_blank("members_user_email_not_blank")]

    def __str__(self) -> str:
        # Shown in audit trails and staff pages: a phone only ever masked (138****1234).
        if self.email:
            return self.email
        return phone_mask(self.phone) if self.phone else f"user {self.pk}"

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name


class Store(models.Model):
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        permissions = [("all_stores", _("Can act for and see every store"))]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Member(models.Model):
    class Gender(models.TextChoices):
        UNKNOWN = "", _("Not given")
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        OTHER = "O", _("Other")

    class Channel(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online")
        APP = "app", _("App")
        MINI_PROGRAM = "mini_program", _("Mini-program")
        IMPORT = "import", _("Import")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        CLOSED = "closed", _("Closed")
        ANONYMISED = "anonymised", _("Anonymised")
        MERGED = "merged", _("Merged into another member")

    member_no = models.CharField(_("member number"), max_length=12)
    user = models.OneToOneField(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="member",
        verbose_name=_("login"),
    )
    # Null once anonymised: the number is free for someone else, the row stays for the ledger.
    phone = models.CharField(_("mobile phone"), max_length=20, null=True)  # noqa: DJ001
    email = BlankAsNullEmailField(_("e-mail"), null=True, blank=True)
    name = models.CharField(_("name"), max_length=100)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    preferred_categories = models.JSONField(_("preferred categories"), default=list, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    # No index: nothing looks members up by home store yet, and every index is paid for on
    # each enrolment and import row. Add one with the first report that filters by it.
    home_store = models.ForeignKey(
        Store,
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.PROTECT,
        related_name="home_members",
        verbose_name=_("home store"),
    )
    enrolment_channel = models.CharField(
        _("enrolment channel"), max_length=20, choices=Channel.choices
    )
    enrolment_store = models.ForeignKey(
        Store,
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.PROTECT,
        related_name="enrolled_members",
        verbose_name=_("enrolment store"),
    )
    enrolled_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("enrolled by"),
    )
    referral_code = models.CharField(_("referral code"), max_length=12)
    # Indexed by partial indexes in Meta (non-NULL only): most members have neither.
    referrer = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.SET_NULL,
        related_name="referees",
        verbose_name=_("referred by"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE
    )
    privacy_notice_version = models.CharField(
        _("privacy notice version"), max_length=20, blank=True
    )
    privacy_accepted_at = models.DateTimeField(_("privacy notice accepted"), null=True, blank=True)
    consent_sms = models.BooleanField(_("SMS marketing"), default=False)
    consent_email = models.BooleanField(_("e-mail marketing"), default=False)
    # The language messages reach the member in (settings.LANGUAGES codes).
    language = models.CharField(
        _("language"), max_length=10, default="zh-hans", choices=settings.LANGUAGES
    )
    # Set by CSV import: re-running the same file must find the row it wrote before.
    import_source_id = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, verbose_name=_("import source ID")
    )
    enrolled_at = models.DateTimeField(_("enrolled"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.PROTECT,
        related_name="merged_members",
        verbose_name=_("merged into"),
    )

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        permissions = [
            ("use_backoffice", _("Can use the back office")),
            ("reveal_phone", _("Can reveal a member's full phone number")),
            ("import_members", _("Can import members from CSV")),
            ("merge_members", _("Can merge duplicate members")),
        ]
        # Few indexes on purpose: every one is paid for on each enrolment and import row.
        indexes = [
            # varchar_pattern_ops lets PostgreSQL use the index for name prefix searches.
            models.Index(
                fields=["name"], name="members_member_name_idx", opclasses=["varchar_pattern_ops"]
            ),
            # Partial: the NULLs (nearly every member) stay out of the btree.
            models.Index(
                fields=["referrer"],
                name="members_member_referrer_idx",
                condition=Q(referrer__isnull=False),
            ),
            models.Index(
                fields=["merged_into"],
                name="members_member_merged_into_idx",
                condition=Q(merged_into__isnull=False),
            ),
            # The few members a campaign cannot target: a segment over the nightly figures
            # alone leaves these out with an anti-join instead of joining every member.
            models.Index(
                fields=["id"],
                name="members_untargetable_idx",
                condition=~Q(status="active"),
            ),
        ]
        # Uniques as constraints rather than unique=True: PostgreSQL then builds one index
        # each, not a second varchar_pattern_ops one that only LIKE queries would use.
        constraints = [
            models.UniqueConstraint(fields=["member_no"], name="members_member_member_no_unique"),
            models.UniqueConstraint(fields=["phone"], name="members_member_phone_unique"),
            # Partial (non-NULL only) for the nullable ones: NULLs never clash, and leaving
            # them out of the index saves its upkeep on every member without one.
            models.UniqueConstraint(
                fields=["email"],
                name="members_member_email_unique",
                condition=Q(email__isnull=False),
            ),
            _email_not_blank("members_member_email_not_blank"),
            models.UniqueConstraint(
                fields=["referral_code"], name="members_member_referral_code_unique"
            ),
            models.UniqueConstraint(
                fields=["import_source_id"],
                name="members_member_import_source_unique",
                condition=Q(import_source_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["closed", "anonymised", "merged"]) | Q(phone__isnull=False),
                name="members_member_active_has_phone",
            ),
            models.CheckConstraint(
                condition=(Q(status="merged") & Q(merged_into__isnull=False))
                | (~Q(status="merged") & Q(merged_into__isnull=True)),
                name="members_member_merged_has_target",
            ),
            models.CheckConstraint(
                condition=Q(member_no__regex=r"^8[0-9]{11}$"),
                name="members_member_member_no_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_no} {self.name}"

    @property
    def phone_masked(self) -> str:
        return phone_mask(self.phone) if self.phone else ""

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.FROZEN)


class ConsentEvent(models.Model):
    """Append-only history of privacy-notice acceptance and marketing consent (PIPL)."""

    class Kind(models.TextChoices):
        PRIVACY_NOTICE = "privacy_notice", _("Privacy notice")
        SMS = "sms", _("SMS marketing")
        EMAIL = "email", _("E-mail marketing")

    class Source(models.TextChoices):
        SIGNUP = "signup", _("Online sign-up")
        PORTAL = "portal", _("Member portal")
        STORE = "store", _("In store")
        API = "api", _("POS API")
        IMPORT = "import", _("Import")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")

    # Not indexed alone: members_consent_member_idx starts with member and serves its lookups.
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        db_index=False,
        related_name="consent_events",
        verbose_name=_("member"),
    )
    kind = models.CharField(_("consent"), max_length=20, choices=Kind.choices)
    granted = models.BooleanField(_("granted"))
    version = models.CharField(_("version"), max_length=20, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    # Indexed in Meta for the non-NULL rows only (a user's deletion sets it NULL).
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        db_index=False,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [
            models.Index(fields=["member", "-recorded_at"], name="members_consent_member_idx"),
            models.Index(
                fields=["actor"],
                name="members_consent_actor_idx",
                condition=Q(actor__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {'+' if self.granted else '-'}"


class AuditEntry(models.Model):
    """Who did what to which record, and when. Written by services, never updated."""

    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Kept as text too, so the entry still names the actor after the user is deleted.
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=50)
    target_type = models.CharField(_("target type"), max_length=50, blank=True)
    target_id = models.CharField(_("target"), max_length=64, blank=True)
    member = models.ForeignKey(
        Member,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
        verbose_name=_("member"),
    )
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [
            models.Index(fields=["action", "-created_at"], name="members_audit_action_idx"),
            models.Index(fields=["member", "-created_at"], name="members_audit_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class ApiToken(models.Model):
    """A bearer token for a POS or e-shop system, bound to one store. Only its hash is kept."""

    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="api_tokens", verbose_name=_("store")
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, verbose_name=_("token hash"))
    prefix = models.CharField(max_length=8, verbose_name=_("prefix"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked"))
    # PIPL: a till needs a member's number, not their phone; the API shows 138****1234
    # unless an administrator allows this token whole numbers (audited).
    full_phone = models.BooleanField(
        _("sees full phone numbers"),
        default=False,
        help_text=_(
            "Off: the API shows members' phones masked (138****1234). Turn on only for a "
            "system that must contact members itself."
        ),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.store.code})"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()
