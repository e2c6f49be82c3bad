"""Pages and API answers with personal data are never kept by a browser or a proxy
(`Cache-Control: no-store`), and every page says which device features it may use."""

from __future__ import annotations

import pytest

from members.services import api_token_create
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def assert_private(response) -> None:
    assert "no-store" in response["Cache-Control"], response["Cache-Control"]
    policy = response["Permissions-Policy"]
    assert "camera=(self)" in policy  # the staff pages may scan a card
    assert "microphone=()" in policy and "geolocation=()" in policy


def test_a_members_portal_pages_are_not_stored(client, store):
    user = UserFactory(phone="+8613800000001", phone_verified=True)
    MemberFactory(user=user, phone=user.phone)
    client.force_login(user)

    for url in ["/", "/points/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_private(response)


def test_staff_pages_are_not_stored(staff_client):
    response = staff_client.get("/staff/")

    assert response.status_code == 200
    assert_private(response)


def test_api_answers_are_not_stored(client, store):
    member = MemberFactory()
    _token, raw = api_token_create(store=store)

    response = client.get(
        "/api/v1/members/lookup",
        {"member_no": member.member_no},
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 200
    assert_private(response)


@pytest.mark.parametrize("url", ["/accounts/login/", "/healthz", "/no-such-page/"])
def test_every_other_page_has_the_headers_too(client, url):
    assert_private(client.get(url))
