"""`manage.py bench api` and `manage.py bench pages` (registry: core/benchmarks.py): what the
POS API and the pages serve, against the loaded data. One JSON line per endpoint.

In process (`--mode inprocess`, the default): every request goes into Django's WSGI handler
with a hand-built environ, as gunicorn would send it (devtools/httpbench.py), one after the
other on this process's connection, after a warm-up:
`{"endpoint", "median_ms", "p95_ms", "queries", "requests", "members", "target_ms"}`.
`queries` is the median number of SQL queries of a request, counted in a short pass after
the timed one (capturing them would slow the timed pass).

Through the server (`--mode server`): gunicorn started the repository's own way
(`gunicorn --config gunicorn.conf.py loyalty_site.wsgi`, settings
`loyalty_site.settings.production` unless `--server-settings` says otherwise, the
environment of this command), driven by `--clients` concurrent clients with a keep-alive
connection each for `--seconds` after `--warmup-seconds`: `{"endpoint", "clients", "per_s",
"p50_ms", "p95_ms", "errors", "requests", "workers", "threads", "members", "target_per_s",
"target_p95_ms"}` (per_s: 2xx answers a second; errors: any other answer, or none).

The targets are issue 14's (PostgreSQL, 2 cores, 1M members). The bench makes what it needs:
an API token for the first active store (revoked at the end), logins for a sample of
members who have none (through the SMS-code login's services, kept for the next run), a
superuser with an authenticator app (so STAFF_REQUIRE_MFA lets it in), and a session
for each login (deleted at the end). Purchases and returns are recorded for real.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import statistics
import time
from argparse import ArgumentParser
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register
from devtools.httpbench import (
    Call,
    gunicorn_conf,
    gunicorn_running,
    load_run,
    percentile,
    wsgi_call,
)

# Requests whose queries are counted after the timed pass.
QUERY_SAMPLES = 5
SERVER_SETTINGS = "loyalty_site.settings.production"
STAFF_EMAIL = "bench-staff@example.com"
# Portal URLs that are not pages: the data export is a JSON download.
NOT_PAGES = {"data-export"}


@dataclass
class Endpoint:
    """What a bench sends to one endpoint: `call(client, n)` is client's n-th request."""

    name: str
    call: Callable[[int, int], Call]
    ok: frozenset[int] = frozenset({200})
    inprocess_targets: dict[str, float] = field(default_factory=dict)
    server_targets: dict[str, float] = field(default_factory=dict)
    clients: int = 32
    # Run before the in-process pass with the number of calls it will make.
    prepare: Callable[[int], None] | None = None
    # False: in process only (its calls need the rows `prepare` writes for each of them).
    server: bool = True


class _ServingBenchmark(Benchmark):
    default_server_endpoints: tuple[str, ...]

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--mode",
            choices=("inprocess", "server"),
            default="inprocess",
            help="inprocess: Django's WSGI handler in this process (default); server: gunicorn.",
        )
        parser.add_argument(
            "--server", dest="mode", action="store_const", const="server", help="--mode server"
        )
        parser.add_argument(
            "--endpoints",
            default="",
            help="Comma-separated endpoint names (default: all in process; "
            f"{','.join(self.default_server_endpoints)} through the server).",
        )
        parser.add_argument(
            "--requests", type=int, default=500, help="In process: timed requests per endpoint."
        )
        parser.add_argument(
            "--warmup", type=int, default=50, help="In process: requests per endpoint first."
        )
        parser.add_argument(
            "--clients",
            type=int,
            default=None,
            help="Server: concurrent clients (default: the issue's, 32 or 50 per endpoint).",
        )
        parser.add_argument(
            "--seconds", type=float, default=20, help="Server: measured seconds per endpoint."
        )
        parser.add_argument(
            "--warmup-seconds", type=float, default=5, help="Server: load before measuring."
        )
        parser.add_argument(
            "--server-settings",
            default=SERVER_SETTINGS,
            help=f"Server: DJANGO_SETTINGS_MODULE of gunicorn (default {SERVER_SETTINGS}).",
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed.")

    def endpoints(
        self, *, options: dict[str, Any], rng: random.Random, run: str, log: Callable[[str], None]
    ) -> tuple[list[Endpoint], Callable[[], None]]:
        """The endpoints and what undoes their scaffolding."""
        raise NotImplementedError

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> list[dict[str, Any]]:
        from members.models import Member

        if settings.DEBUG:
            raise CommandError(
                "DEBUG is on: it keeps every query in memory and is not what production "
                "serves. Run with production-like settings, e.g. DEBUG=false "
                f"DJANGO_SETTINGS_MODULE={SERVER_SETTINGS}."
            )
        server = options["mode"] == "server"
        database_url = ""
        if server:  # what the server needs, before anything is made for it
            database_url = _server_database_url()
            gunicorn_conf()
        members = Member.objects.count()
        if not members:
            raise CommandError("There are no members: load some first (manage.py loadgen).")
        rng = random.Random(options["seed"])  # noqa: S311 - load, not secrets
        run = os.urandom(4).hex()
        endpoints, cleanup = self.endpoints(options=options, rng=rng, run=run, log=log)
        try:
            chosen = _chosen(
                endpoints,
                options["endpoints"],
                self.default_server_endpoints if server else (),
                server=server,
            )
            common = {"members": members}
            if server:
                return _through_server(
                    chosen, options=options, url=database_url, common=common, log=log
                )
            return _in_process(chosen, options=options, common=common, log=log)
        finally:
            cleanup()


def _chosen(
    endpoints: list[Endpoint], wanted: str, default: tuple[str, ...], *, server: bool
) -> list[Endpoint]:
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    names = [name.strip() for name in wanted.split(",") if name.strip()] or list(default or by_name)
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise CommandError(f"Unknown endpoint {', '.join(unknown)}: one of {', '.join(by_name)}.")
    local = [name for name in names if server and not by_name[name].server]
    if local:
        raise CommandError(f"{', '.join(local)} can only be measured in process.")
    return [by_name[name] for name in names]


def _server_database_url() -> str:
    """This command's DATABASE_URL, naming the database this process uses (under pytest, the
    test database), for gunicorn."""
    if connection.vendor != "postgresql":
        raise CommandError("Server mode needs PostgreSQL (DATABASE_URL=postgres://…).")
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + quote(connection.settings_dict["NAME"])))


def _checked(endpoint: Endpoint, call: Call, status: int, body: bytes) -> None:
    if status not in endpoint.ok:
        raise CommandError(
            f"{endpoint.name}: {call.method} {call.target} answered {status}, not "
            f"{'/'.join(map(str, sorted(endpoint.ok)))}: {body[:500]!r}"
        )


def _in_process(
    endpoints: list[Endpoint],
    *,
    options: dict[str, Any],
    common: dict[str, Any],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    requests, warmup = max(options["requests"], 1), max(options["warmup"], 0)
    lines = []
    for endpoint in endpoints:
        if endpoint.prepare is not None:
            endpoint.prepare(warmup + requests + QUERY_SAMPLES)
        calls = (endpoint.call(0, number) for number in range(warmup + requests + QUERY_SAMPLES))
        for _ in range(warmup):
            call = next(calls)
            _checked(endpoint, call, *wsgi_call(handler, call))
        timings = []
        for _ in range(requests):
            call = next(calls)
            began = time.perf_counter_ns()
            status, body = wsgi_call(handler, call)
            timings.append((time.perf_counter_ns() - began) / 1e6)
            _checked(endpoint, call, status, body)
        counts = []
        for call in calls:
            reset_queries()  # the handler clears the log at each request start
            with CaptureQueriesContext(connection) as captured:
                status, body = wsgi_call(handler, call)
            _checked(endpoint, call, status, body)
            counts.append(len(captured.captured_queries))
        timings.sort()
        line = {
            "endpoint": endpoint.name,
            "median_ms": round(statistics.median(timings), 2),
            "p95_ms": round(percentile(timings, 0.95), 2),
            "queries": int(statistics.median(counts)),
            "requests": requests,
            **common,
            **endpoint.inprocess_targets,
        }
        log(
            f"{endpoint.name}: median {line['median_ms']} ms, p95 {line['p95_ms']} ms, "
            f"{line['queries']} queries"
        )
        lines.append(line)
    return lines


def _through_server(
    endpoints: list[Endpoint],
    *,
    options: dict[str, Any],
    url: str,
    common: dict[str, Any],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    lines = []
    with gunicorn_running(
        settings_module=options["server_settings"], env={"DATABASE_URL": url}, log=log
    ) as server:
        for endpoint in endpoints:
            clients = options["clients"] or endpoint.clients
            log(
                f"{endpoint.name}: {clients} clients, {options['warmup_seconds']:g} s warm-up, "
                f"{options['seconds']:g} s measured …"
            )
            began, cpu_began = time.monotonic(), time.process_time()
            result = load_run(
                url=server.url,
                call=endpoint.call,
                ok=endpoint.ok,
                clients=clients,
                warmup=options["warmup_seconds"],
                seconds=options["seconds"],
            )
            if result.errors:
                log(f"{endpoint.name}: {result.errors:,} errors, the first: {result.first_error}")
            if not result.per_s:
                raise CommandError(f"{endpoint.name}: no request succeeded. {result.first_error}")
            # The load generator shares the machine with the server: say how much it took.
            cpu = (time.process_time() - cpu_began) / (time.monotonic() - began)
            log(
                f"{endpoint.name}: {result.per_s:,} /s, p95 {result.p95_ms} ms; the load "
                f"generator used {cpu:.0%} of a core"
            )
            lines.append(
                {
                    "endpoint": endpoint.name,
                    "clients": clients,
                    "per_s": result.per_s,
                    "p50_ms": result.p50_ms,
                    "p95_ms": result.p95_ms,
                    "errors": result.errors,
                    "requests": result.requests,
                    "workers": server.workers,
                    "threads": server.threads,
                    **common,
                    **endpoint.server_targets,
                }
            )
    return lines


# --- Members to ask for -------------------------------------------------------------------


def _open_members(*, count: int, rng: random.Random, without_login: bool = False) -> list[Any]:
    """Up to `count` random active members with a phone, drawn by random primary keys
    (no ORDER BY random() over a million rows)."""
    from django.db.models import Max, Min

    from members.models import Member

    bounds = Member.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return []
    keys = range(bounds["low"], bounds["high"] + 1)
    wanted = Member.objects.filter(status=Member.Status.ACTIVE, phone__isnull=False)
    if without_login:
        wanted = wanted.filter(user__isnull=True)
    found: dict[int, Any] = {}
    for _attempt in range(20):
        draw = rng.sample(keys, min(len(keys), 2 * count))
        found.update((member.pk, member) for member in wanted.filter(pk__in=draw))
        if len(found) >= count or len(draw) == len(keys):
            break
    members = list(found.values())
    rng.shuffle(members)
    return members[:count]


# --- bench api ----------------------------------------------------------------------------


@benchmark_register
class ApiBenchmark(_ServingBenchmark):
    name = "api"
    help = "Time the POS API, in process or through gunicorn; one JSON line per endpoint."
    default_server_endpoints = ("purchase", "lookup")

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--sample", type=int, default=1000, help="Random members the requests are for."
        )

    def endpoints(
        self, *, options: dict[str, Any], rng: random.Random, run: str, log: Callable[[str], None]
    ) -> tuple[list[Endpoint], Callable[[], None]]:
        from members.models import Store
        from members.numbers import phone_national
        from members.services import api_token_create, api_token_revoke

        store = Store.objects.filter(is_active=True).order_by("code").first()
        if store is None:
            raise CommandError("There is no active store: load data first (manage.py loadgen).")
        members = _open_members(count=max(options["sample"], 1), rng=rng)
        if not members:
            raise CommandError("There is no active member with a phone to ask for.")
        token, raw = api_token_create(store=store, name=f"bench api {run}")
        log(f"{len(members):,} members, store {store.code}, API token {token.prefix}…")
        auth = {"Authorization": f"Bearer {raw}"}

        def lookup(client: int, number: int) -> Call:
            member_no = rng.choice(members).member_no
            query = urlencode({"member_no": member_no})
            return Call("GET", "/api/v1/members/lookup", query=query, headers=auth)

        def lookup_phone(client: int, number: int) -> Call:
            query = urlencode({"phone": phone_national(rng.choice(members).phone)})
            return Call("GET", "/api/v1/members/lookup", query=query, headers=auth)

        def points(client: int, number: int) -> Call:
            member_no = rng.choice(members).member_no
            return Call("GET", f"/api/v1/members/{member_no}/points", headers=auth)

        def rewards(client: int, number: int) -> Call:
            return Call("GET", "/api/v1/rewards", headers=auth)

        def purchase(client: int, number: int) -> Call:
            # Around ¥200 (log-normal, as loadgen's); a new receipt every time.
            amount = min(max(rng.lognormvariate(math.log(200), 0.8), 5), 20_000)
            body = {
                "member_no": rng.choice(members).member_no,
                "store": store.code,
                "receipt_no": f"H{run}-{client}-{number}",
                "occurred_at": timezone.localtime().isoformat(timespec="seconds"),
                "amount": f"{amount:.2f}",
                "channel": "store",
            }
            return Call("POST", "/api/v1/purchases", body=json.dumps(body).encode(), headers=auth)

        def returns_prepare(count: int) -> None:
            from points.services import purchase_record

            log(f"return: recording {count:,} purchases to return from …")
            occurred_at = timezone.now() - datetime.timedelta(minutes=1)
            for number in range(count):
                purchase_record(
                    member=members[number % len(members)],
                    store=store,
                    receipt_no=f"H{run}-r{number}",
                    occurred_at=occurred_at,
                    amount=Decimal("100.00"),
                )

        def return_(client: int, number: int) -> Call:
            body = {
                "store": store.code,
                "receipt_no": f"H{run}-x{number}",
                "original_receipt_no": f"H{run}-r{number}",
                "amount": "10.00",
                "occurred_at": timezone.localtime().isoformat(timespec="seconds"),
            }
            return Call("POST", "/api/v1/returns", body=json.dumps(body).encode(), headers=auth)

        lookups = {"target_per_s": 1000}
        endpoints = [
            Endpoint("lookup", lookup, inprocess_targets={"target_ms": 2}, server_targets=lookups),
            Endpoint(
                "lookup_phone",
                lookup_phone,
                inprocess_targets={"target_ms": 2},
                server_targets=lookups,
            ),
            Endpoint("points", points, inprocess_targets={"target_ms": 2}),
            Endpoint("rewards", rewards),
            Endpoint(
                "purchase",
                purchase,
                ok=frozenset({201}),
                inprocess_targets={"target_ms": 4},
                server_targets={"target_per_s": 500, "target_p95_ms": 50},
            ),
            Endpoint("return", return_, ok=frozenset({201}), prepare=returns_prepare, server=False),
        ]
        return endpoints, lambda: api_token_revoke(token=token)


# --- bench pages --------------------------------------------------------------------------


def _portal_pages() -> list[tuple[str, str]]:
    """(URL name, path) of every portal page without a parameter in its URL, from the URL
    conf: a page added to the portal is benchmarked too."""
    from django.urls import reverse

    from loyalty_site.urls import portal_patterns

    return [
        (pattern.name, reverse(f"portal:{pattern.name}"))
        for pattern in portal_patterns
        if not pattern.pattern.regex.groups and pattern.name not in NOT_PAGES
    ]


def _member_logins(*, count: int, rng: random.Random, log: Callable[[str], None]) -> list[Any]:
    """Logins of `count` open members: those that have one first, then logins made for
    members without (the till member's first SMS-code login, its services), so a second run
    reuses the first run's."""
    from members.models import Member, User
    from members.services import user_for_member_code_login, user_phone_set

    users = list(
        User.objects.filter(is_active=True, member__status=Member.Status.ACTIVE).order_by("pk")[
            :count
        ]
    )
    missing = count - len(users)
    if missing > 0:
        members = _open_members(count=missing, rng=rng, without_login=True)
        log(f"making logins for {len(members):,} members …")
        for member in members:
            user = user_for_member_code_login(phone=member.phone)
            user_phone_set(user=user, phone=member.phone, verified=True)
            users.append(user)
    return users


def _staff_login() -> Any:
    """The bench's member of staff, with an authenticator app as STAFF_REQUIRE_MFA wants."""
    import secrets

    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from members.models import User
    from members.permissions import user_has_mfa
    from members.services import user_create

    # A superuser rather than the administrator role: the same pages, and no role groups
    # needed (a database flushed by transactional tests has none).
    user = User.objects.filter(email=STAFF_EMAIL).first() or user_create(
        email=STAFF_EMAIL, password=secrets.token_urlsafe(24), name="bench", is_superuser=True
    )
    if not user_has_mfa(user):
        TOTP.activate(user, generate_totp_secret())
    return user


def _session_cookie(user: Any) -> tuple[str, Any]:
    """A logged-in session for `user` (django.contrib.auth's login, as the log-in page
    does) and the Cookie header a browser would send with it, CSRF cookie included."""
    from importlib import import_module

    from django.contrib.auth import login
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    request.session.save()
    cookie = (
        f"{settings.SESSION_COOKIE_NAME}={request.session.session_key}; "
        f"{settings.CSRF_COOKIE_NAME}={request.META['CSRF_COOKIE']}"
    )
    return cookie, request.session


@benchmark_register
class PagesBenchmark(_ServingBenchmark):
    name = "pages"
    help = (
        "Time the member portal's pages and the staff member page, in process or through "
        "gunicorn; one JSON line per page."
    )
    default_server_endpoints = ("portal_home",)

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--logins", type=int, default=200, help="Members whose portal pages are asked for."
        )

    def endpoints(
        self, *, options: dict[str, Any], rng: random.Random, run: str, log: Callable[[str], None]
    ) -> tuple[list[Endpoint], Callable[[], None]]:
        logins = max(options["logins"], 1)
        users = _member_logins(count=logins, rng=rng, log=log)
        if not users:
            raise CommandError("There is no active member with a phone to log in as.")
        numbers = [member.member_no for member in _open_members(count=logins, rng=rng)]
        sessions = [_session_cookie(user) for user in [*users, _staff_login()]]
        *member_cookies, staff_cookie = [cookie for cookie, _session in sessions]
        log(f"{len(member_cookies):,} members logged in, and a member of staff")

        def portal(path: str) -> Callable[[int, int], Call]:
            def call(client: int, number: int) -> Call:
                return Call("GET", path, headers={"Cookie": rng.choice(member_cookies)})

            return call

        def staff_member(client: int, number: int) -> Call:
            path = f"/staff/members/{rng.choice(numbers)}/"
            return Call("GET", path, headers={"Cookie": staff_cookie})

        endpoints = [
            Endpoint(
                "portal_home",
                portal("/"),
                inprocess_targets={"target_ms": 8},
                server_targets={"target_per_s": 300, "target_p95_ms": 150},
                clients=50,
            ),
            *(
                Endpoint(
                    "portal_" + name.replace("-", "_"),
                    portal(path),
                    inprocess_targets={"target_ms": 12},
                    clients=50,
                )
                for name, path in _portal_pages()
                if path != "/"
            ),
            Endpoint("staff_member", staff_member, inprocess_targets={"target_ms": 15}),
        ]

        def cleanup() -> None:
            for _cookie, session in sessions:
                session.delete()

        return endpoints, cleanup
