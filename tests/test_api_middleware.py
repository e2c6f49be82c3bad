"""The POS API skips the session, log-in and message middleware; the pages keep them."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.services import api_token_create
from tests.factories import UserFactory


def test_an_api_request_reads_and_writes_no_session(client, store):
    _token, raw = api_token_create(store=store, name="till")
    client.force_login(UserFactory())  # a browser's session cookie, sent along by mistake
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    client.get("/api/v1/rewards", **auth)  # the rewards catalogue, once read
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/rewards", **auth)
    assert response.status_code == 200
    assert not any("django_session" in q["sql"] for q in queries.captured_queries)
    assert "sessionid" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")
    # Not even the lazy objects are made: no session store, no message storage, no login.
    request = response.wsgi_request
    assert not hasattr(request, "session")
    assert not hasattr(request, "_messages")
    assert not request.user.is_authenticated


def test_a_page_still_has_its_session_and_login(client, db):
    user = UserFactory()
    client.force_login(user)
    response = client.get("/")
    assert response.wsgi_request.user == user
    assert response.wsgi_request.session.session_key
