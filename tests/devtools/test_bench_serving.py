"""`manage.py bench api` and `manage.py bench pages`: in process on a small data set, and
briefly through a real gunicorn on PostgreSQL. No timings are asserted.

Transactional tests: the WSGI handler closes a connection it finds inside a transaction at
the end of each request (close_old_connections), as gunicorn's would, so the data is
committed, not kept in a test's transaction.
"""

from __future__ import annotations

import json
import secrets
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import override_settings

from devtools.loadgen import loadgen
from members.models import ApiToken, Member, User
from points.models import Purchase, Return

IN_PROCESS_KEYS = {"endpoint", "median_ms", "p95_ms", "queries", "requests", "members"}
SERVER_KEYS = {
    "endpoint",
    "clients",
    "per_s",
    "p50_ms",
    "p95_ms",
    "errors",
    "requests",
    "workers",
    "threads",
    "members",
}


def bench(*args: str) -> tuple[list[dict], str]:
    out, err = StringIO(), StringIO()
    call_command("bench", *args, stdout=out, stderr=err)
    return [json.loads(line) for line in out.getvalue().strip().splitlines()], err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_bench_api_prints_a_line_per_endpoint_with_its_target():
    loadgen(members=30, purchases=200, seed=3)

    lines, _log = bench("api", "--requests", "3", "--warmup", "1", "--seed", "1")

    assert [line["endpoint"] for line in lines] == [
        "lookup",
        "lookup_phone",
        "points",
        "rewards",
        "purchase",
        "return",
    ]
    targets = {line["endpoint"]: line.get("target_ms") for line in lines}
    assert targets == {
        "lookup": 2,
        "lookup_phone": 2,
        "points": 2,
        "rewards": None,
        "purchase": 4,
        "return": None,
    }
    for line in lines:
        assert set(line) - {"target_ms"} == IN_PROCESS_KEYS, line
        assert line["queries"] > 0 and line["median_ms"] > 0, line
        assert line["requests"] == 3 and line["members"] == 30
    # Every purchase and return was answered 201 (anything else stops the bench): the warm-up,
    # the timed and the counted requests, each with a receipt of its own.
    assert Purchase.objects.filter(receipt_no__regex=r"^H[0-9a-f]{8}-0-[0-9]+$").count() == 9
    assert Return.objects.count() == 9
    # The bench's token no longer opens the API.
    assert not ApiToken.objects.filter(revoked_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_bench_api_stops_at_an_answer_it_did_not_expect():
    loadgen(members=5, purchases=0, seed=1)

    # A host the site does not serve: Django answers 400, and the bench says so.
    refused = r"lookup: GET /api/v1/members/lookup\?member_no=\d+ answered 400"
    with (
        override_settings(ALLOWED_HOSTS=["loyalty.example.com"]),
        pytest.raises(CommandError, match=refused),
    ):
        bench("api", "--endpoints", "lookup", "--requests", "2", "--warmup", "0")


@pytest.mark.django_db(transaction=True)
def test_bench_refuses_to_measure_with_debug_on():
    loadgen(members=5, purchases=0, seed=1)

    with override_settings(DEBUG=True), pytest.raises(CommandError, match="DEBUG is on"):
        bench("api", "--requests", "2")


@pytest.mark.django_db(transaction=True)
def test_bench_pages_logs_members_in_and_reads_every_portal_page():
    loadgen(members=30, purchases=200, seed=5)

    lines, log = bench("pages", "--requests", "2", "--warmup", "1", "--logins", "4")

    endpoints = [line["endpoint"] for line in lines]
    assert endpoints[0] == "portal_home" and endpoints[-1] == "staff_member"
    assert {"portal_points_history", "portal_rewards", "portal_tiers", "portal_profile"} <= set(
        endpoints
    )
    assert "portal_data_export" not in endpoints  # a download, not a page
    for line in lines:
        assert set(line) == IN_PROCESS_KEYS | {"target_ms"}, line
        assert line["queries"] > 0, line
    targets = {line["endpoint"]: line["target_ms"] for line in lines}
    assert targets["portal_home"] == 8 and targets["staff_member"] == 15
    assert targets["portal_points_history"] == 12
    # Four members got a login (the SMS-code login's), the sessions are gone again.
    assert "making logins for 4 members" in log
    assert Member.objects.filter(user__isnull=False).count() == 4
    assert not Session.objects.exists()

    # A second run logs the same members in again.
    users = User.objects.count()
    _lines, log = bench("pages", "--endpoints", "portal_home", "--requests", "2", "--logins", "4")
    assert "making logins" not in log
    assert User.objects.count() == users


@pytest.mark.django_db(transaction=True)
@override_settings(STAFF_REQUIRE_MFA=True)
def test_bench_pages_staff_login_has_the_authenticator_the_back_office_requires():
    loadgen(members=10, purchases=20, seed=2)

    # The staff page answers 200 (not the redirect to set up an authenticator app).
    lines, _log = bench("pages", "--endpoints", "staff_member", "--requests", "2", "--logins", "2")

    assert [line["endpoint"] for line in lines] == ["staff_member"]
    staff = User.objects.get(email="bench-staff@example.com")
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_bench_server_mode_says_when_there_is_no_gunicorn_conf(tmp_path):
    loadgen(members=5, purchases=0, seed=1)

    with (
        override_settings(BASE_DIR=tmp_path),
        pytest.raises(CommandError, match=r"There is no gunicorn\.conf\.py"),
    ):
        bench("api", "--server")
    assert not ApiToken.objects.exists()  # it said so before making anything


needs_gunicorn_conf = pytest.mark.skipif(
    not (settings.BASE_DIR / "gunicorn.conf.py").exists(),
    reason="server mode starts gunicorn with the repository's gunicorn.conf.py",
)


@pytest.mark.postgres
@needs_gunicorn_conf
@pytest.mark.django_db(transaction=True)
def test_bench_api_through_gunicorn(monkeypatch):
    # The production settings refuse the test settings' key; the API's tokens do not
    # depend on it (sessions would: the pages test below keeps the test settings).
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(50))
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    monkeypatch.setenv("GUNICORN_THREADS", "2")
    loadgen(members=30, purchases=100, seed=7)

    lines, log = bench(
        "api", "--server", "--seconds", "2", "--warmup-seconds", "1", "--clients", "2"
    )

    assert [line["endpoint"] for line in lines] == ["purchase", "lookup"], log
    for line in lines:
        assert set(line) - {"target_per_s", "target_p95_ms"} == SERVER_KEYS, line
        assert line["per_s"] > 0 and line["errors"] == 0, log
        assert (line["clients"], line["workers"], line["threads"]) == (2, 1, 2)
    assert lines[0]["target_per_s"] == 500 and lines[0]["target_p95_ms"] == 50
    assert lines[1]["target_per_s"] == 1000
    # The server recorded the purchases in this database.
    assert Purchase.objects.filter(receipt_no__startswith="H").count() >= lines[0]["requests"]


@pytest.mark.postgres
@needs_gunicorn_conf
@pytest.mark.django_db(transaction=True)
def test_bench_pages_through_gunicorn(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    monkeypatch.setenv("GUNICORN_THREADS", "2")
    loadgen(members=20, purchases=60, seed=8)

    # The test settings serve static files without collectstatic's manifest, and share
    # this process's secret key, which signs the sessions the bench makes here.
    lines, log = bench(
        "pages",
        "--server",
        "--server-settings",
        "loyalty_site.settings.test",
        "--seconds",
        "2",
        "--warmup-seconds",
        "1",
        "--clients",
        "2",
        "--logins",
        "3",
    )

    [line] = lines
    assert line["endpoint"] == "portal_home"
    assert line["per_s"] > 0 and line["errors"] == 0, log
    assert line["target_per_s"] == 300 and line["target_p95_ms"] == 150
    assert not Session.objects.exists()


def test_the_load_generator_runs_where_an_event_loop_already_runs():
    # Playwright's sync API (the browser tests) leaves a loop running in the test process's
    # thread; the load generator then runs in a thread of its own.
    import asyncio
    import http.server
    import threading

    from devtools.httpbench import Call, load_run

    class Ok(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def inside_a_loop():
        return load_run(
            url=f"http://127.0.0.1:{server.server_port}",
            call=lambda client, n: Call("GET", "/"),
            ok=frozenset({200}),
            clients=2,
            warmup=0.2,
            seconds=0.5,
        )

    results = []
    # In a thread of its own: this one may already run Playwright's loop.
    caller = threading.Thread(target=lambda: results.append(asyncio.run(inside_a_loop())))
    try:
        caller.start()
        caller.join(timeout=30)
    finally:
        server.shutdown()
    (result,) = results
    assert result.errors == 0
    assert result.requests > 0
