"""Every portal and back-office page and every POS API endpoint runs a known number of SQL
queries. BUDGET says how many, so a change that adds a query fails here, and a change that
saves some lowers its number in the same commit.

The counted request is the second of two, the steady state of a running server: the first
fills what a server keeps warm (per-process caches, cached counts, the API token's last-used
mark). Where the request writes, the first one writes for another member or receipt, so the
counted one does the real write, not the replay of a retried request. The counts include the
SAVEPOINT and RELEASE of each transaction a service opens, as it runs inside the test's own
transaction (a server runs BEGIN and COMMIT there instead); work queued for after the commit
(Celery tasks) is not part of the request and is not counted.

A page or endpoint added later fails `test_every_page_and_endpoint_has_a_budget` until it has
a line in BUDGET (and its URL in tests/pages.py or `extra_pages`), or a reason in
NOT_COUNTED.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from loyalty_site.api import api
from members.models import Member, User
from members.numbers import member_no_from_digits
from members.roles import ADMINISTRATOR
from members.services import Consents, api_token_create, member_enroll
from points.models import Coupon, Reward
from points.services import points_adjust_request, purchase_record, reward_redeem
from tests.conftest import make_role_user, tier_levels_restore
from tests.pages import World, page_world, portal_pages, staff_pages

pytestmark = pytest.mark.django_db

# Queries per request: the pages in the order of tests/pages.py and then `extra_pages`, the
# POS API in the order of its OpenAPI document. "name#case" is another case of one URL name.
BUDGET: dict[str, int] = {
    # The portal, as the member. Most counts include the session, the login and the member
    # (read with their tier, account and pending points: members.selectors).
    "portal:home": 8,  # expiring points, tier progress, promotions and notices
    "portal:profile": 4,
    "portal:consent": 4,
    "portal:privacy-notice": 2,
    "portal:account-close": 3,
    "portal:points-history": 7,
    "portal:points-rules": 5,
    "portal:rewards": 7,  # the member's tier is read again for each of the 2 rewards
    "portal:reward-redeem": 7,
    "portal:coupons": 5,
    "portal:coupon-detail": 4,
    "portal:tiers": 6,
    "portal:referral": 4,
    "portal:donation-receipt": 4,
    "portal:notices": 5,
    "portal:notice-detail": 6,
    "portal:unsubscribe": 3,
    # The back office, as an administrator with an authenticator app, as production asks.
    # Each count starts with 5: the session, the login, its two permission queries, the MFA.
    "staff:home": 5,
    "staff:member-search": 6,
    "staff:member-enrol": 9,
    "staff:import-upload": 6,
    "staff:import-detail": 7,
    "staff:import-upload#purchases": 6,
    "staff:import-upload#balances": 6,
    "staff:member-detail": 19,  # the member 360: every panel reads its own rows
    "staff:audit-log": 7,
    "staff:jobs": 9,
    "staff:job-run-detail": 7,
    "staff:purchase-record": 13,
    "staff:return-record": 10,
    "staff:coupon-accept": 10,
    "staff:points-adjust": 6,
    "staff:member-ledger": 8,
    "staff:reconcile": 6,
    "staff:duplicates": 8,
    "staff:member-merge": 14,
    "staff:tier-override": 11,
    "staff:adjustment-approvals": 9,  # the balance per row: 2 queries a pending adjustment
    "staff:analytics": 13,
    "staff:analytics-panel": 10,
    "staff:analytics-at-risk": 8,
    "staff:analytics-model": 6,
    "staff:segments": 7,
    "staff:segment-new": 9,
    "staff:segment-detail": 10,
    "staff:campaign-results": 12,
    "staff:campaign-list": 7,
    "staff:campaign-new": 5,
    "staff:campaign-new#multiplier": 8,
    "staff:campaign-detail": 13,
    "staff:campaign-detail#draft": 9,
    "staff:campaign-edit": 8,
    "staff:campaign-launch": 9,
    "staff:campaign-winback": 11,
    "staff:redemption-void": 7,
    "staff:segment-count": 6,
    # The POS API, with a till's token (kept per process: no query reads it).
    "POST /api/v1/members": 28,  # enrols, posts the sign-up bonus, evaluates the tier
    "GET /api/v1/members/lookup": 1,  # the member with their tier and points
    "GET /api/v1/members/lookup#phone": 1,
    "GET /api/v1/members/lookup#not-found": 1,
    "POST /api/v1/purchases": 18,  # the portable writer; PostgreSQL's is set-based
    "POST /api/v1/returns": 24,
    "GET /api/v1/members/{member_no}/points": 2,
    "GET /api/v1/members/{member_no}/points#not-found": 1,
    "GET /api/v1/rewards": 2,
    "POST /api/v1/redemptions": 22,
    "POST /api/v1/coupons/{code}/use": 8,
    "GET /api/v1/{unknown}": 0,  # the JSON 404 for a URL no endpoint has
}

# PostgreSQL's numbers where they differ: it has fast paths of its own (points/earning.py
# reads the policy and the category rates in one query; the set-based posting writer and
# the tier update write a purchase in a few statements).
POSTGRESQL_BUDGET: dict[str, int] = {
    "POST /api/v1/purchases": 7,
}


def budget(name: str) -> int:
    if connection.vendor == "postgresql":
        return POSTGRESQL_BUDGET.get(name, BUDGET[name])
    return BUDGET[name]


def extra_pages(world: World) -> dict[str, str]:
    """Back-office GET requests that tests/pages.py leaves out because they are not whole
    pages to read in both languages, but that a server answers all day."""
    redemption_id = Coupon.objects.get(code=world.coupon_code).redemption_id
    return {
        # The confirmation before a redemption is voided (the same URL takes the POST).
        "staff:redemption-void": f"/staff/redemptions/{redemption_id}/void/",
        # Each row's count on the segments list, which htmx loads after the page.
        "staff:segment-count": f"/staff/segments/{world.segment_id}/count/",
    }


# The portal's and back office's URL names that are not counted here, and why.
NOT_COUNTED: dict[str, str] = {
    "portal:data-export": "a JSON download of all the member's data, not a page",
    "staff:import-errors": "a CSV download",
    **{
        f"staff:{kind}-import{page}-old": "a redirect from the import pages' old address"
        for kind in ("members", "purchases", "balances")
        for page in ("", "-detail", "-errors")
    },
    "staff:member-reveal-phone": "POST only: an audited action",
    "staff:audit-log-csv": "a CSV download",
    "staff:analytics-panel-csv": "a CSV download",
    "staff:analytics-at-risk-csv": "a CSV download",
    "staff:job-rerun": "POST only: queues a job",
    "staff:adjustment-approve": "POST only: decides an adjustment",
    "staff:adjustment-reject": "POST only: decides an adjustment",
    "staff:segment-preview": "POST only: the builder's live count of the rules being typed",
    "staff:segment-count-json": "POST only: the count of rules sent as JSON",
    "staff:segment-archive": "POST only: archives a segment",
    "staff:segment-export": "a CSV download of the segment's members",
    "staff:campaign-results-refresh": "POST only: recomputes the results",
    "staff:campaign-results-csv": "a CSV download",
    "staff:campaign-approve": "POST only: approves a launch",
    "staff:campaign-cancel": "POST only: cancels a campaign",
}

# An API URL that no endpoint has: the JSON 404 fallback, outside the OpenAPI document.
API_FALLBACK = "GET /api/v1/{unknown}"

PAGE_NAMES = [name for name in BUDGET if name.startswith(("portal:", "staff:"))]
API_NAMES = [name for name in BUDGET if name not in PAGE_NAMES]

STORE = "SH001"  # page_world's store, where the till's token belongs
PHONE = "13800000001"  # page_world's member
OTHER_PHONE = "13700000009"
OTHER_RECEIPT = "20260303-0001"


@dataclass
class Counted:
    world: World
    administrator_id: int
    token: str


@pytest.fixture(scope="module")
def counted(django_db_setup, django_db_blocker):
    """tests/pages.py's world with an administrator and a till's token, written once for the
    module in a transaction rolled back at its end; each test runs in a savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        tier_levels_restore()
        world = page_world()
        # A role, not a superuser: a superuser's permission checks skip the queries every
        # real back-office user's requests make. With an authenticator app, as production
        # asks of staff (STAFF_REQUIRE_MFA).
        administrator = make_role_user(
            ADMINISTRATOR, email="administrator@example.com", name="系统管理员"
        )
        Authenticator.objects.create(user=administrator, type=Authenticator.Type.TOTP, data={})
        # A row on the approvals page, which tests/pages.py's world leaves empty.
        points_adjust_request(
            member=world.member,
            points=django_settings.POINTS_ADJUST_MANAGER_MAX + 1,
            reason="补录线下活动积分",
            actor=administrator,
            idempotency_key="pending-1",
        )
        _token, raw = api_token_create(store=world.member.enrolment_store, name="till 1")
        yield Counted(world=world, administrator_id=administrator.pk, token=raw)
        transaction.set_rollback(True)


def _failure_info(name: str) -> str:
    table = (
        "POSTGRESQL_BUDGET"
        if name in POSTGRESQL_BUDGET and connection.vendor == "postgresql"
        else "BUDGET"
    )
    return (
        f"Budget: {table}[{name!r}] in tests/test_query_counts.py (PostgreSQL's own number, "
        "when it differs, goes in POSTGRESQL_BUDGET)."
    )


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_page_queries(name, counted, client, settings, django_assert_num_queries):
    settings.STAFF_REQUIRE_MFA = True
    world = counted.world
    url = {**portal_pages(world), **staff_pages(world), **extra_pages(world)}[name]
    if name.startswith("staff:"):
        client.force_login(User.objects.get(pk=counted.administrator_id))
    else:
        client.force_login(world.member.user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    with django_assert_num_queries(budget(name), info=_failure_info(name)):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: dict | None = None
    status: int = 200


def api_calls(world: World, *, other: Member, other_coupon: str) -> dict[str, tuple[Call, Call]]:
    """Each case's warm-up request and counted request. The warm-up is for `other` (a second
    member, with points and a coupon) or for another receipt where the request writes."""
    member = world.member
    now = timezone.now().isoformat()
    unknown = member_no_from_digits(9_999_999_999)  # a valid number that is no member's

    def enrol(phone: str) -> Call:
        body = {"phone": phone, "name": "张伟", "store": STORE, "privacy_notice_accepted": True}
        return Call("POST", "/api/v1/members", body, 201)

    def lookup(query: str, status: int = 200) -> Call:
        return Call("GET", f"/api/v1/members/lookup?{query}", status=status)

    def buy(buyer: Member, receipt: str) -> Call:
        body = {
            "member_no": buyer.member_no,
            "store": STORE,
            "receipt_no": receipt,
            "occurred_at": now,
            "amount": "128.50",
            "lines": [{"sku": "A1", "category": "food", "amount": "128.50"}],
        }
        return Call("POST", "/api/v1/purchases", body, 201)

    def give_back(receipt: str, original: str) -> Call:
        body = {
            "store": STORE,
            "receipt_no": receipt,
            "original_receipt_no": original,
            "amount": "50.00",
            "occurred_at": now,
        }
        return Call("POST", "/api/v1/returns", body, 201)

    def points(member_no: str, status: int = 200) -> Call:
        return Call("GET", f"/api/v1/members/{member_no}/points", status=status)

    def redeem(redeemer: Member, key: str) -> Call:
        body = {"member_no": redeemer.member_no, "reward": "CNY10", "idempotency_key": key}
        return Call("POST", "/api/v1/redemptions", body, 201)

    def use(code: str, receipt: str) -> Call:
        return Call("POST", f"/api/v1/coupons/{code}/use", {"store": STORE, "receipt_no": receipt})

    rewards = Call("GET", "/api/v1/rewards")
    nowhere = Call("GET", "/api/v1/nothing-here", status=404)
    return {
        "POST /api/v1/members": (enrol("13700000001"), enrol("13700000002")),
        "GET /api/v1/members/lookup": (
            lookup(f"member_no={other.member_no}"),
            lookup(f"member_no={member.member_no}"),
        ),
        "GET /api/v1/members/lookup#phone": (
            lookup(f"phone={OTHER_PHONE}"),
            lookup(f"phone={PHONE}"),
        ),
        "GET /api/v1/members/lookup#not-found": (
            lookup("phone=13700000003", 404),
            lookup(f"member_no={unknown}", 404),
        ),
        "POST /api/v1/purchases": (buy(other, "T-0001"), buy(member, "T-0002")),
        "POST /api/v1/returns": (
            give_back("R-0001", OTHER_RECEIPT),
            give_back("R-0002", "20260301-0001"),
        ),
        "GET /api/v1/members/{member_no}/points": (
            points(other.member_no),
            points(member.member_no),
        ),
        "GET /api/v1/members/{member_no}/points#not-found": (
            points(unknown, 404),
            points(unknown, 404),
        ),
        "GET /api/v1/rewards": (rewards, rewards),
        "POST /api/v1/redemptions": (redeem(other, "till-1"), redeem(member, "till-2")),
        "POST /api/v1/coupons/{code}/use": (
            use(other_coupon, "S-0001"),
            use(world.coupon_code, "S-0002"),
        ),
        API_FALLBACK: (nowhere, nowhere),
    }


def _other_member(world: World) -> tuple[Member, str]:
    """A second member at the till's store, with points and a coupon of their own; the
    world's member gets points enough for another reward too."""
    store = world.member.enrolment_store
    other = member_enroll(
        phone=OTHER_PHONE,
        name="陈静",
        channel=Member.Channel.STORE,
        store=store,
        consents=Consents(privacy_version="2026-01"),
    )
    yesterday = timezone.now() - datetime.timedelta(days=1)
    for member, receipt in ((other, OTHER_RECEIPT), (world.member, "20260303-0002")):
        purchase_record(
            member=member,
            store=store,
            receipt_no=receipt,
            occurred_at=yesterday,
            amount=Decimal(3000),
        )
    cny10 = Reward.objects.get(code="CNY10")
    return other, reward_redeem(member=other, reward=cny10, idempotency_key="other-1").coupon.code


def _send(client: Client, call: Call, token: str) -> HttpResponse:
    headers = {"Authorization": f"Bearer {token}"}
    if call.method == "GET":
        return client.get(call.url, headers=headers)
    body = json.dumps(call.body)
    return client.post(call.url, body, content_type="application/json", headers=headers)


@pytest.mark.parametrize("name", API_NAMES)
def test_api_queries(name, counted, client, django_assert_num_queries):
    other, other_coupon = _other_member(counted.world)
    warm, call = api_calls(counted.world, other=other, other_coupon=other_coupon)[name]
    response = _send(client, warm, counted.token)
    assert response.status_code == warm.status, (warm.url, response.content)
    with django_assert_num_queries(budget(name), info=_failure_info(name)):
        response = _send(client, call, counted.token)
    assert response.status_code == call.status, (call.url, response.content)


def test_every_page_and_endpoint_has_a_budget(counted):
    world = counted.world
    url_names = set()
    for namespace in ("portal", "staff"):
        resolver = get_resolver().namespace_dict[namespace][1]
        url_names |= {f"{namespace}:{n}" for n in resolver.reverse_dict if isinstance(n, str)}
    pages = [*portal_pages(world), *staff_pages(world), *extra_pages(world)]
    schema = api.get_openapi_schema()
    operations = [
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
    ]
    cases = [*api_calls(world, other=world.member, other_coupon=world.coupon_code)]

    def without_case(names: list[str]) -> set[str]:
        return {name.partition("#")[0] for name in names}

    missing = sorted(url_names - without_case(pages) - set(NOT_COUNTED))
    assert not missing, (
        f"No query budget for {missing}: open each as a page in tests/pages.py (or in "
        "extra_pages here) and give it a line in BUDGET, or give NOT_COUNTED the reason not to."
    )
    assert not set(NOT_COUNTED) - url_names, "NOT_COUNTED names URLs that are gone"
    missing = sorted(set(operations) - without_case(cases))
    assert not missing, (
        f"No query budget for the API operations {missing}: add a case to api_calls and a "
        "line to BUDGET in tests/test_query_counts.py."
    )
    assert without_case(cases) <= {*operations, API_FALLBACK}, "api_calls has endpoints gone"
    unbudgeted = [name for name in [*pages, *cases] if name not in BUDGET]
    assert not unbudgeted, (
        f"Add {unbudgeted} to BUDGET in tests/test_query_counts.py, in the order of the pages "
        "and of api_calls: put 0 and the failing count test says the real number."
    )
    stale = [name for name in BUDGET if name not in {*pages, *cases}]
    assert not stale, f"BUDGET has lines that no page list or api_calls opens: {stale}"
    assert [*PAGE_NAMES, *API_NAMES] == [*pages, *cases], (
        "BUDGET keeps the order of tests/pages.py, extra_pages and api_calls"
    )
    assert set(POSTGRESQL_BUDGET) <= set(BUDGET)
