"""POS API: enrolling a shopper at the till and looking members up, as a till sees it."""

from __future__ import annotations

import datetime
import json

import pytest
from django.conf import settings
from django.utils import timezone

from members.models import AuditEntry, ConsentEvent, Member
from members.numbers import member_no_is_valid
from members.selectors import (
    MemberSummary,
    PointsSummary,
    TierSummary,
    member_summary_contributor_register,
    member_summary_contributor_unregister,
    member_summary_contributors,
)
from members.services import api_token_create, member_close
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

ENROL_URL = "/api/v1/members"
LOOKUP_URL = "/api/v1/members/lookup"


@pytest.fixture
def token(store):
    _token, raw = api_token_create(store=store, name="till 1")
    return raw


@pytest.fixture
def pos(client, token):
    """A till: JSON requests with its bearer token, answers in English."""

    class Pos:
        def post(self, data, url=ENROL_URL):
            body = data if isinstance(data, str) else json.dumps(data)
            return client.post(
                url,
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
            )

        def lookup(self, **params):
            return client.get(
                LOOKUP_URL,
                params,
                headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
            )

    return Pos()


def written() -> tuple[int, int, int]:
    return Member.objects.count(), AuditEntry.objects.count(), ConsentEvent.objects.count()


@pytest.fixture
def before(pos, store):
    """What the database holds before the request under test (the token is audited)."""
    return written()


# --- Enrolment ----------------------------------------------------------------------------


def test_enrolling_a_shopper_returns_the_new_member_object(pos):
    response = pos.post({"phone": "138 1234 5678", "name": " 张伟 ", "store": "SH001"})

    assert response.status_code == 201
    body = response.json()
    member = Member.objects.get()
    assert body == {
        "member_no": member.member_no,
        "phone": "138****5678",  # a till sees the phone masked (PIPL)
        "name": "张伟",
        "tier": {
            "code": "regular",
            "name": "Regular",
            "discount_rate": "0.00",
            "valid_until": None,
        },
        # The sign-up bonus (EarningPolicy.signup_bonus, default 200), posted with the enrolment.
        "points": {"available": 200, "pending": 0},
        "promotions": [],
    }
    assert member_no_is_valid(body["member_no"])


def test_an_api_enrolment_is_a_store_enrolment_at_the_tokens_store(pos, store):
    pos.post(
        {
            "phone": "13812345678",
            "name": "张伟",
            "store": "SH001",
            "birthday": "1990-05-17",
            "email": "ZhangWei@Example.com",
            "gender": "M",
        }
    )

    member = Member.objects.get()
    assert member.enrolment_channel == Member.Channel.STORE
    assert member.enrolment_store == store
    assert member.home_store == store
    assert member.enrolled_by is None
    assert member.birthday == datetime.date(1990, 5, 17)
    assert member.email == "zhangwei@example.com"
    assert member.gender == "M"


def test_the_audit_entry_names_the_api_token_that_enrolled_the_member(client, store):
    token, raw = api_token_create(store=store, name="till 2")
    client.post(
        ENROL_URL,
        {"phone": "13812345678", "name": "张伟", "store": "SH001"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    entry = AuditEntry.objects.get(action="member.enrol")
    assert entry.actor is None
    assert entry.actor_label == f"API token {token.prefix} (SH001)"
    assert entry.details == {"channel": "store", "store": "SH001", "api_token": token.prefix}
    assert entry.member == Member.objects.get()


def test_empty_optional_fields_are_accepted(pos):
    response = pos.post(
        {
            "phone": "13812345678",
            "name": "张伟",
            "store": "SH001",
            "birthday": None,
            "email": "",
            "gender": "",
        }
    )

    assert response.status_code == 201
    member = Member.objects.get()
    assert (member.birthday, member.email, member.gender) == (None, None, "")


def test_a_phone_already_enrolled_gets_409_with_that_members_number(pos):
    existing = MemberFactory(phone="+8613812345678")
    before = written()

    response = pos.post({"phone": "+86 138-1234-5678", "name": "别人", "store": "SH001"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "member_exists",
        "detail": "This phone number is already a member.",
        "member_no": existing.member_no,
    }
    assert written() == before


def test_a_retried_enrolment_finds_the_member_the_first_request_created(pos):
    payload = {"phone": "13812345678", "name": "张伟", "store": "SH001"}
    first = pos.post(payload)
    after_first = written()

    second = pos.post(payload)
    third = pos.post(payload)

    assert first.status_code == 201
    assert second.status_code == third.status_code == 409
    assert second.json()["member_no"] == third.json()["member_no"] == first.json()["member_no"]
    assert written() == after_first


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "010 6552 9988"}, "phone"),  # a landline cannot receive the SMS codes
        ({"name": "   "}, "name"),
        ({"name": "张" * 101}, "name"),
        ({"birthday": "1990-02-30"}, "birthday"),
        ({"birthday": "17/05/1990"}, "birthday"),
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "1899-12-31"}, "birthday"),
        ({"gender": "X"}, "gender"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "someone@"}, "email"),
        ({"store": "XX999"}, "store"),
        ({"phone": 13812345678}, "phone"),
    ],
)
def test_invalid_input_gets_400_naming_the_field_and_writes_nothing(pos, change, field, before):
    payload = {"phone": "13812345678", "name": "张伟", "store": "SH001", **change}

    response = pos.post(payload)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]
    assert field in body["detail"]
    assert written() == before


@pytest.mark.parametrize("missing", ["phone", "name", "store"])
def test_a_missing_required_field_gets_400(pos, missing, before):
    payload = {"phone": "13812345678", "name": "张伟", "store": "SH001"}
    del payload[missing]

    response = pos.post(payload)

    assert response.status_code == 400
    assert response.json()["fields"] == {missing: "This field is required."}
    assert written() == before


def test_a_body_that_is_not_json_gets_400(pos, before):
    response = pos.post("{phone: 138")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert written() == before


def test_an_inactive_store_cannot_be_enrolled_at(pos, store, before):
    StoreFactory(code="BJ001", is_active=False)

    response = pos.post({"phone": "13812345678", "name": "张伟", "store": "BJ001"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"store": "There is no active store with this code."}
    assert written() == before


def test_a_token_for_one_store_cannot_enrol_at_another(pos, before):
    StoreFactory(code="BJ001")

    response = pos.post({"phone": "13812345678", "name": "张伟", "store": "BJ001"})

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden_store",
        "detail": "This API token may only enrol members at store SH001.",
    }
    assert written() == before


def test_an_email_another_member_uses_gets_400_without_revealing_that_member(pos):
    MemberFactory(email="zhang@example.com")
    before = written()

    response = pos.post(
        {"phone": "13812345678", "name": "张伟", "store": "SH001", "email": "zhang@example.com"}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["fields"] == {"email": "Another member already uses this e-mail address."}
    assert "member_no" not in body
    assert written() == before


def test_enrolling_without_a_token_gets_401_and_writes_nothing(client, store, before):
    response = client.post(
        ENROL_URL,
        {"phone": "13812345678", "name": "张伟", "store": "SH001"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert written() == before


# --- Lookup -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["13812345678", "+8613812345678", "138 1234 5678"])
def test_looking_up_by_phone_finds_the_member(pos, typed):
    member = MemberFactory(phone="+8613812345678", name="李娜")

    response = pos.lookup(phone=typed)

    assert response.status_code == 200
    assert response.json() == {
        "member_no": member.member_no,
        "phone": "138****5678",
        "name": "李娜",
        "tier": {
            "code": "regular",
            "name": "Regular",
            "discount_rate": "0.00",
            "valid_until": None,
        },
        "points": {"available": 0, "pending": 0},
        "promotions": [],
    }


def test_looking_up_by_member_number_finds_the_member(pos):
    member = MemberFactory(name="李娜")

    response = pos.lookup(member_no=member.member_no)

    assert response.status_code == 200
    assert response.json()["member_no"] == member.member_no
    assert response.json()["name"] == "李娜"


def test_a_frozen_member_is_still_found(pos):
    member = MemberFactory(status=Member.Status.FROZEN)

    assert pos.lookup(member_no=member.member_no).status_code == 200


def test_a_member_number_with_a_wrong_check_digit_is_not_found_never_someone_else(pos):
    member = MemberFactory()
    body = member.member_no[:-1]
    # The same first 11 digits with every wrong check digit, each of them a real member.
    for digit in "0123456789":
        if digit != member.member_no[-1]:
            MemberFactory(member_no=body + digit)

    for digit in "0123456789":
        if digit == member.member_no[-1]:
            continue
        response = pos.lookup(member_no=body + digit)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_a_mistyped_digit_in_the_member_number_is_not_found(pos):
    member = MemberFactory()
    wrong = member.member_no[:5] + str((int(member.member_no[5]) + 1) % 10) + member.member_no[6:]

    response = pos.lookup(member_no=wrong)

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "No member matches."}


@pytest.mark.parametrize(
    "params", [{"phone": "13900000000"}, {"phone": "not a phone"}, {"member_no": "123"}]
)
def test_nobody_matching_gets_404(pos, params):
    MemberFactory(phone="+8613812345678")

    response = pos.lookup(**params)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_closed_account_is_not_found_by_its_number(pos, staff_user):
    member = MemberFactory(phone="+8613812345678")
    member_close(member=member, actor=staff_user)

    assert pos.lookup(member_no=member.member_no).status_code == 404
    assert pos.lookup(phone="13812345678").status_code == 404


def test_a_closed_member_that_kept_its_phone_is_not_found(pos):
    member = MemberFactory(
        phone="+8613812345678", status=Member.Status.CLOSED, closed_at=timezone.now()
    )

    assert pos.lookup(phone="13812345678").status_code == 404
    assert pos.lookup(member_no=member.member_no).status_code == 404


@pytest.mark.parametrize(
    "params",
    [{}, {"phone": "", "member_no": ""}, {"phone": "13812345678", "member_no": "800000000000"}],
)
def test_lookup_needs_exactly_one_of_phone_or_member_number(pos, params):
    response = pos.lookup(**params)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["detail"] == "Give exactly one of phone or member_no."
    assert set(body["fields"]) == {"phone", "member_no"}


def test_lookup_without_a_token_gets_401(client):
    member = MemberFactory()

    response = client.get(LOOKUP_URL, {"member_no": member.member_no})

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


# --- The member object is one builder that later apps extend -------------------------------


@pytest.fixture
def gold_tier_contributor():
    def gold(member: Member, summary: MemberSummary) -> MemberSummary:
        return MemberSummary(
            member_no=summary.member_no,
            phone=summary.phone,
            name=summary.name,
            tier=TierSummary(code="gold", name="Gold"),
            points=PointsSummary(available=1200, pending=30),
        )

    member_summary_contributor_register(gold)
    member_summary_contributor_register(gold)  # registering twice changes nothing
    yield gold
    member_summary_contributor_unregister(gold)


def test_tier_and_points_come_from_registered_contributors(pos, gold_tier_contributor):
    member = MemberFactory()

    body = pos.lookup(member_no=member.member_no).json()

    assert body["tier"] == {
        "code": "gold",
        "name": "Gold",
        "discount_rate": "0.00",
        "valid_until": None,
    }
    assert body["points"] == {"available": 1200, "pending": 30}
    assert member_summary_contributors().count(gold_tier_contributor) == 1


@pytest.fixture
def broken_contributor():
    def broken(member: Member, summary: MemberSummary) -> MemberSummary:
        raise RuntimeError("the points service is down")

    member_summary_contributor_register(broken)
    yield broken
    member_summary_contributor_unregister(broken)


def test_an_unexpected_error_is_logged_and_the_till_gets_json(pos, broken_contributor, caplog):
    member = MemberFactory()

    response = pos.lookup(member_no=member.member_no)

    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "detail": "Something went wrong on our side. Try again later.",
    }
    assert "the points service is down" in caplog.text


def test_consent_given_at_the_till_is_recorded_with_the_privacy_notice_version(pos):
    response = pos.post(
        {
            "phone": "13812345678",
            "name": "张伟",
            "store": "SH001",
            "privacy_notice_accepted": True,
            "consent_sms": True,
        }
    )
    assert response.status_code == 201
    member = Member.objects.get()
    assert member.privacy_notice_version == settings.PRIVACY_NOTICE_VERSION
    assert member.consent_sms is True
    assert sorted(ConsentEvent.objects.values_list("kind", "source")) == [
        ("privacy_notice", "api"),
        ("sms", "api"),
    ]
