"""PIPL in the POS API: the member object shows the phone masked (138****1234) unless an
administrator allowed the API token whole numbers in the Django admin, which is audited."""

from __future__ import annotations

import pytest

from members.models import ApiToken, AuditEntry
from members.services import api_token_create
from tests.conftest import make_role_user
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(db):
    return MemberFactory(phone="+8613812341234")


@pytest.fixture
def token(store):
    return api_token_create(store=store, name="till 1")


def lookup(client, raw, member):
    return client.get(
        "/api/v1/members/lookup",
        {"member_no": member.member_no},
        headers={"Authorization": f"Bearer {raw}"},
    )


def test_a_token_sees_the_phone_masked(client, token, member):
    _token, raw = token

    body = lookup(client, raw, member).json()

    assert body["phone"] == "138****1234"
    assert "13812341234" not in str(body)


def test_an_enrolment_answers_with_the_phone_masked_too(client, token):
    _token, raw = token

    response = client.post(
        "/api/v1/members",
        {"phone": "13912345678", "name": "王小明", "store": "SH001"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 201
    assert response.json()["phone"] == "139****5678"


def test_an_administrator_allows_a_token_full_phones_in_the_admin_and_it_is_audited(
    client, token, member
):
    api_token, raw = token
    administrator = make_role_user("administrator", email="admin@example.com", is_staff=True)
    client.force_login(administrator)
    url = f"/admin/members/apitoken/{api_token.pk}/change/"
    assert 'name="full_phone"' in client.get(url).content.decode()

    response = client.post(url, {"full_phone": "on"})

    assert response.status_code == 302
    api_token.refresh_from_db()
    assert api_token.full_phone
    entry = AuditEntry.objects.get(action="api_token.full_phone")
    assert entry.actor == administrator
    assert entry.details == {"store": "SH001", "prefix": api_token.prefix, "full_phone": True}
    client.logout()
    assert lookup(client, raw, member).json()["phone"] == "+8613812341234"


def test_turning_full_phones_off_again_is_audited_and_masks_again(client, token, member):
    api_token, raw = token
    ApiToken.objects.filter(pk=api_token.pk).update(full_phone=True)
    administrator = make_role_user("administrator", email="admin@example.com", is_staff=True)
    client.force_login(administrator)

    client.post(f"/admin/members/apitoken/{api_token.pk}/change/", {})

    entry = AuditEntry.objects.get(action="api_token.full_phone")
    assert entry.details["full_phone"] is False
    client.logout()
    assert lookup(client, raw, member).json()["phone"] == "138****1234"


def test_the_admin_cannot_add_or_delete_tokens_or_change_their_other_fields(client, token, store):
    api_token, _raw = token
    administrator = make_role_user("administrator", email="admin@example.com", is_staff=True)
    client.force_login(administrator)

    client.post(
        f"/admin/members/apitoken/{api_token.pk}/change/", {"name": "renamed", "store": 999}
    )

    api_token.refresh_from_db()
    assert api_token.name == "till 1"
    assert client.get("/admin/members/apitoken/add/").status_code == 403
    assert client.get(f"/admin/members/apitoken/{api_token.pk}/delete/").status_code == 403
