"""`manage.py create_api_token --store CODE`: the last line of its output is a working token."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from members.models import ApiToken, AuditEntry
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db


def create_api_token(*args: str) -> list[str]:
    out = StringIO()
    with translation.override("en"):
        call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_the_last_line_is_a_token_that_authenticates_a_request(client, store):
    member = MemberFactory()

    lines = create_api_token("--store", "SH001")
    raw = lines[-1]

    response = client.get(
        "/api/v1/members/lookup",
        {"member_no": member.member_no},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200
    assert response.json()["member_no"] == member.member_no


def test_the_token_is_bound_to_the_store_and_the_earlier_lines_explain(store):
    lines = create_api_token("--store", "SH001", "--name", "till 3")

    token = ApiToken.objects.get()
    assert token.store == store
    assert token.name == "till 3"
    assert len(lines) > 1
    assert "SH001" in lines[0]
    assert token.prefix in lines[0]
    assert lines[-1] not in "\n".join(lines[:-1])  # the token itself is printed once


def test_a_token_without_a_name_is_named_after_its_store(store):
    create_api_token("--store", "SH001")

    assert ApiToken.objects.get().name == "POS SH001"


def test_creating_a_token_is_audited_without_the_token(store):
    lines = create_api_token("--store", "SH001")

    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.details["store"] == "SH001"
    assert lines[-1] not in str(entry.details)


def test_an_unknown_store_is_refused_and_nothing_is_created(store):
    with pytest.raises(CommandError) as error:
        create_api_token("--store", "XX999")

    assert str(error.value) == "There is no active store with the code XX999; nothing was created."
    assert ApiToken.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_an_inactive_store_is_refused(db):
    StoreFactory(code="GZ001", is_active=False)

    with pytest.raises(CommandError):
        create_api_token("--store", "GZ001")

    assert ApiToken.objects.count() == 0


def test_the_store_is_required(db):
    with pytest.raises(CommandError):
        create_api_token()
