"""POS API for members: enrol a shopper at the till, look a member up by phone or number."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from .api_common import ErrorOut, InvalidOut, error_body, invalid_body, text_field
from .models import ApiToken, Member
from .numbers import phone_mask
from .selectors import MemberSummary, member_find_open, member_summary, store_get
from .services import (
    Consents,
    InvalidMemberData,
    MemberAlreadyExists,
    birthday_earliest,
    member_enroll,
)

router = Router(tags=["members"])


class TierOut(Schema):
    code: str
    name: str
    discount_rate: Decimal = Field(description="Percent off the till gives this tier, e.g. 5.00.")
    valid_until: datetime.date | None = Field(
        None, description="Last day of the tier (Asia/Shanghai); null for the base level."
    )


class PointsOut(Schema):
    available: int
    pending: int


class PromotionOut(Schema):
    title: str = Field(description="The promotion's name for the member; may be empty.")
    multiplier: Decimal = Field(description="Points multiplier, e.g. 2.00.")
    starts_at: datetime.datetime
    ends_at: datetime.datetime = Field(description="Purchases before this time earn it.")
    stores: list[str] = Field(description="Store codes it is limited to; empty: every store.")
    categories: list[str] = Field(
        description="Category codes a purchase needs a line in; empty: every purchase."
    )


class MemberOut(Schema):
    member_no: str
    phone: str = Field(
        ...,
        description=(
            "Masked, `138****1234`, unless an administrator allowed this API token whole "
            "numbers; then E.164, `+8613812341234`."
        ),
    )
    name: str
    tier: TierOut
    points: PointsOut
    promotions: list[PromotionOut] = Field(
        default_factory=list,
        description="Points promotions the member earns in now (the holdout sees none).",
    )


class MemberExistsOut(ErrorOut):
    member_no: str


# The longest values the API reads: the model's columns, and room for a phone typed with
# spaces and dashes or a member number typed in groups.
PHONE_MAX = 32
NAME_MAX = 100
STORE_CODE_MAX = 20
EMAIL_MAX = 254  # RFC 5321's longest address
MEMBER_NO_MAX = 32


class MemberEnrolIn(Schema):
    phone: str = text_field(min_length=1, max_length=PHONE_MAX)
    name: str = text_field(min_length=1, max_length=NAME_MAX)
    store: str = text_field(min_length=1, max_length=STORE_CODE_MAX)
    birthday: datetime.date | None = Field(
        None,
        description="`YYYY-MM-DD`, not in the future and at most 120 years ago (from 1900-01-01).",
    )
    email: str | None = text_field(None, max_length=EMAIL_MAX)
    gender: Literal["", "F", "M", "O"] | None = None
    # What the shopper agreed to at the till (PIPL): the privacy notice shown and accepted,
    # and marketing by SMS / e-mail. Left out, nothing is recorded for them.
    privacy_notice_accepted: bool = False
    consent_sms: bool | None = None
    consent_email: bool | None = None


class MemberLookupQuery(Schema):
    phone: str = text_field(
        "", max_length=PHONE_MAX, description="Give this or `member_no`, not both."
    )
    member_no: str = text_field(
        "", max_length=MEMBER_NO_MAX, description="Give this or `phone`, not both."
    )


def _member_body(member: Member, token: ApiToken) -> MemberSummary:
    """The member object as this token may see it: a till needs the member's number, not
    their phone (PIPL), so the phone is masked unless the token is allowed whole ones."""
    summary = member_summary(member=member)
    if token.full_phone or not summary.phone:
        return summary
    return dataclasses.replace(summary, phone=phone_mask(summary.phone))


def _enrol_field_messages() -> dict[str, str]:
    # The service reports codes; the POS shows these next to the field.
    return {
        "invalid_phone": _("Enter a valid mobile phone number."),
        "required": _("This field is required."),
        "too_long": _("This value is too long."),
        "invalid_email": _("Enter a valid e-mail address."),
        "invalid_gender": _("Choose F, M, O or leave it empty."),
        "invalid_birthday": _("Enter a real birthday (not in the future)."),
        "birthday_too_early": _("This birthday is too early: enter a date from %(earliest)s on.")
        % {"earliest": birthday_earliest().isoformat()},
        "email_taken": _("Another member already uses this e-mail address."),
    }


@router.post(
    "",
    response={
        201: MemberOut,
        400: InvalidOut,
        401: ErrorOut,
        403: ErrorOut,
        409: MemberExistsOut,
        413: ErrorOut,
    },
    summary="Enrol a member at the till",
    description=(
        "Enrols a shopper at the token's store (enrolment channel `store`).\n\n"
        "- `store` is a store code and must be the store the API token belongs to; another "
        "store's code gives **403** `forbidden_store`, a code that is not an active store "
        "gives **400** `invalid`.\n"
        "- `phone` is a mainland mobile number (+86 assumed) or any E.164 mobile number.\n"
        "- `gender` is `F`, `M`, `O` or empty; `birthday` is `YYYY-MM-DD`.\n"
        "- A phone that is already a member gives **409** `member_exists` with that member's "
        "`member_no`, so a retried request finds the member it created the first time.\n"
        "- An e-mail already used by another member gives **400** `invalid`.\n\n"
        "Nothing is written when the response is an error."
    ),
)
def member_enrol(request: HttpRequest, payload: MemberEnrolIn):
    token = request.auth
    store = store_get(code=payload.store.strip())
    if store is None:
        return Status(400, invalid_body({"store": _("There is no active store with this code.")}))
    if store.pk != token.store_id:
        return Status(
            403,
            error_body(
                "forbidden_store",
                _("This API token may only enrol members at store %(code)s.")
                % {"code": token.store.code},
            ),
        )
    try:
        member = member_enroll(
            phone=payload.phone,
            name=payload.name,
            email=payload.email,
            gender=payload.gender or "",
            birthday=payload.birthday,
            channel=Member.Channel.STORE,
            store=store,
            api_token=token,
            consents=Consents(
                privacy_version=(
                    settings.PRIVACY_NOTICE_VERSION if payload.privacy_notice_accepted else None
                ),
                sms=payload.consent_sms,
                email=payload.consent_email,
            ),
            welcome_sms=True,
        )
    except InvalidMemberData as exc:
        messages = _enrol_field_messages()
        return Status(
            400,
            invalid_body({field: messages.get(code, code) for field, code in exc.errors.items()}),
        )
    except MemberAlreadyExists as exc:
        if exc.field != "phone":
            return Status(400, invalid_body({exc.field: _enrol_field_messages()["email_taken"]}))
        return Status(
            409,
            error_body(
                "member_exists",
                _("This phone number is already a member."),
                member_no=exc.member.member_no,
            ),
        )
    return Status(201, _member_body(member, token))


@router.get(
    "/lookup",
    response={200: MemberOut, 400: InvalidOut, 401: ErrorOut, 404: ErrorOut},
    summary="Find a member by phone or member number",
    description=(
        "Give exactly one of `phone` or `member_no` (the 12 digits on the card). A member "
        "number with a wrong check digit, an unknown phone, or a closed account gives "
        "**404** `not_found`, never a different member."
    ),
)
def member_lookup(request: HttpRequest, query: Query[MemberLookupQuery]):
    phone, member_no = query.phone.strip(), query.member_no.strip()
    if bool(phone) == bool(member_no):
        message = _("Give exactly one of phone or member_no.")
        return Status(400, invalid_body({"phone": message, "member_no": message}, message))
    member = member_find_open(phone=phone, member_no=member_no, for_summary=True)
    if member is None:
        return Status(404, error_body("not_found", _("No member matches.")))
    return Status(200, _member_body(member, request.auth))
