"""The Django admin (/admin/) for members: logins, stores, and read-only views of the rest.

The admin is the administrators' tool (PRODUCT.md, Roles): it opens for logins with
`is_staff` that are superusers or in the administrator role. Model permissions still apply,
and the administrator role may also view what its group's permissions leave out (logins,
job runs, imports), so the role is the one switch. Member data changes only through the
member services, which audit them: profile edits here call `member_update_profile`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.models import ImportRun, JobRun

from . import roles
from .models import ApiToken, AuditEntry, Member, Store, User
from .numbers import InvalidPhone, phone_normalize
from .services import (
    PROFILE_FIELDS,
    api_token_set_full_phone,
    member_update_profile,
    user_stores_set,
)


def is_administrator(user) -> bool:
    """An active staff login in the administrator role (or a superuser); cached per request."""
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_administrator", None)
    if cached is None:
        cached = user.groups.filter(name=roles.ADMINISTRATOR).exists()
        user._is_administrator = cached
    return cached


class AdministratorAdmin(admin.ModelAdmin):
    """Viewing is open to administrators; adding and changing still need the permission."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or is_administrator(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) or is_administrator(request.user)


class ReadOnlyAdmin(AdministratorAdmin):
    """Records written by services only (the ledger, the audit log): look, never touch."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class _UserContactMixin:
    """Phone in E.164 and e-mail lower-case, as the services store them; blank is NULL so
    that many logins can have none (both columns are unique)."""

    def clean_phone(self):
        phone = (self.cleaned_data.get("phone") or "").strip()
        if not phone:
            return None
        try:
            return phone_normalize(phone)
        except InvalidPhone:
            raise forms.ValidationError(_("Enter a valid mobile phone number.")) from None

    def clean_email(self):
        return (self.cleaned_data.get("email") or "").strip().lower() or None


class UserCreationForm(_UserContactMixin, BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "phone")


class UserChangeForm(_UserContactMixin, DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AdministratorAdmin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "phone", "name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups", "stores")
    search_fields = ("email", "phone", "name")
    readonly_fields = ("last_login", "date_joined", "pending_enrolment")
    fieldsets = (
        (None, {"fields": ("email", "phone", "phone_verified", "name", "password")}),
        (_("Roles"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "stores")}),
        (_("Dates"), {"fields": ("last_login", "date_joined", "pending_enrolment")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "phone")}),
        (None, {"classes": ("wide",), "fields": ("password1", "password2")}),
    )
    filter_horizontal = ("groups", "stores")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Administrators manage staff accounts and their roles (PRODUCT.md, Roles).
        return super().has_change_permission(request, obj) or is_administrator(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) or is_administrator(request.user)

    def save_related(self, request: HttpRequest, form, formsets, change) -> None:
        # The stores a login acts for change through the audited service, not save_m2m.
        stores = form.cleaned_data.pop("stores", None)
        super().save_related(request, form, formsets, change)
        if stores is not None:
            user_stores_set(user=form.instance, stores=stores, actor=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        # Only a superuser makes another: the administrator role cannot raise itself above it.
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "is_superuser")


@admin.register(Store)
class StoreAdmin(AdministratorAdmin):
    list_display = ("code", "name", "city", "is_active")
    list_filter = ("is_active", "city")
    search_fields = ("code", "name", "city")


@admin.register(Member)
class MemberAdmin(AdministratorAdmin):
    """Read mostly: enrolment, merging and closing are in the back office; profile fields
    may be corrected here, through the same audited service as the back office."""

    list_display = (
        "member_no",
        "name",
        "phone_shown",
        "status",
        "enrolment_channel",
        "home_store",
    )
    list_filter = ("status", "enrolment_channel", "home_store")
    search_fields = ("member_no", "name", "phone", "email")
    list_select_related = ("home_store",)
    fields = (
        "member_no",
        *PROFILE_FIELDS,
        "status",
        "enrolment_channel",
        "enrolment_store",
        "enrolled_at",
        "referral_code",
        "referrer",
        "consent_sms",
        "consent_email",
        "privacy_notice_version",
        "merged_into",
    )
    show_full_result_count = False  # a COUNT(*) of every member on each page is slow

    @admin.display(description=_("mobile phone"))
    def phone_shown(self, member: Member) -> str:
        return member.phone_masked

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        return tuple(field for field in self.fields if field not in PROFILE_FIELDS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Member, form, change: bool) -> None:
        # Not obj.save(): the service audits the change and runs the profile hooks.
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        member_update_profile(member=obj, actor=request.user, **changes)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_id", "member")
    list_filter = ("action",)
    search_fields = ("actor_label", "action", "target_id", "member__member_no")
    list_select_related = ("member",)
    date_hierarchy = "created_at"


@admin.register(ApiToken)
class ApiTokenAdmin(AdministratorAdmin):
    """Tokens are created and revoked with `create_api_token` and the service; here an
    administrator only decides whether a token sees whole phone numbers (audited)."""

    # The hash stays out of sight too: only the prefix names a token.
    list_display = (
        "prefix",
        "store",
        "name",
        "full_phone",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("store", "full_phone")
    search_fields = ("prefix", "name")
    fields = list_display
    readonly_fields = ("prefix", "store", "name", "created_at", "last_used_at", "revoked_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        # Not obj.save(): the service writes the audit entry.
        api_token_set_full_phone(
            token=obj, allowed=form.cleaned_data["full_phone"], actor=request.user
        )


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "business_date", "status", "rows", "seconds", "started_at")
    list_filter = ("job", "status")
    date_hierarchy = "business_date"


# The import framework's runs (core): registered here, with the back office's admin rules.
@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = (
        "file_name",
        "kind",
        "status",
        "total_rows",
        "created_count",
        "bad_count",
        "created_at",
    )
    list_filter = ("kind", "status")
    exclude = ("content",)
