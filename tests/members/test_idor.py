"""The IDOR walk: a member can never read or change another member's data.

The URLs are not a hand-picked list: they are found by walking the URL resolver under the
`portal` and `staff` namespaces, so a member-scoped URL added later is walked too. A URL
that takes an argument the walk has no value for fails the test until one is added below.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.html import escape

from campaigns.models import OutboxMessage
from members import urls as members_urls
from members.models import AuditEntry, ConsentEvent, Member
from points.models import Coupon, Reward
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "demo-pass-123"


def walk(patterns, namespace: str) -> Iterator[tuple[str, list[str]]]:
    """(URL name with namespaces, names of its arguments) for every pattern below."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if pattern.namespace else namespace
            outer_args = list(pattern.pattern.regex.groupindex)
            for name, args in walk(pattern.url_patterns, inner):
                yield name, outer_args + args
        elif isinstance(pattern, URLPattern):
            assert pattern.name, f"unnamed URL {pattern.pattern} in {namespace}: name it"
            yield f"{namespace}:{pattern.name}", list(pattern.pattern.regex.groupindex)


def urls_in(namespace: str) -> list[tuple[str, list[str]]]:
    _prefix, resolver = get_resolver().namespace_dict[namespace]
    return sorted(set((name, tuple(args)) for name, args in walk(resolver.url_patterns, namespace)))


PORTAL_URLS = urls_in("portal")
STAFF_URLS = urls_in("staff")


@pytest.fixture
def victim(db):
    user = UserFactory(email="victim@example.com", phone="+8613800000001", phone_verified=True)
    member = MemberFactory(
        user=user, phone=user.phone, name="受害者甲", email="victim@example.com", city="杭州"
    )
    ConsentEvent.objects.create(member=member, kind="sms", granted=True, source="store")
    # A coupon of the victim's, so the walk tries the victim's coupon code as the intruder.
    reward = Reward.objects.create(
        code="IDOR10",
        kind="amount_off",
        name_zh="十元券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=10,
    )
    Coupon.objects.create(
        code="VICTIMCOUPON2345",
        member=member,
        reward=reward,
        source="redemption",
        valid_until=timezone.now() + datetime.timedelta(days=30),
    )
    # An in-portal notice of the victim's, so the walk tries to open it as the intruder.
    OutboxMessage.objects.create(
        member=member,
        channel=OutboxMessage.Channel.PORTAL,
        purpose=OutboxMessage.Purpose.MARKETING,
        status=OutboxMessage.Status.SENT,
        sent_at=timezone.now(),
        subject="受害者的通知",
        body="只给受害者的优惠 VICTIMNOTICE",
    )
    return member


@pytest.fixture
def intruder(db):
    user = UserFactory(email="intruder@example.com", phone="+8613900000002", phone_verified=True)
    return MemberFactory(user=user, phone=user.phone, name="入侵者乙", email="intruder@example.com")


@pytest.fixture
def intruder_client(client, intruder):
    client.force_login(intruder.user)
    return client


def url_for(name: str, args, victim: Member) -> str:
    # Every argument a member-scoped URL can take, filled with the victim's identity.
    values = {
        "member_no": victim.member_no,
        "pk": victim.pk,
        "member_id": victim.pk,
        "coupon_code": victim.coupons.get().code,
        "reward_code": "IDOR10",
        "import_id": 1,  # a CSV import: administrators only, whoever's members it holds
        "kind": "members",  # a kind of CSV import: administrators only
        "redemption_id": 1,  # voiding a redemption: managers only, whoever's it is
        "run_id": 1,  # a nightly job run: staff with view_jobs only
        "adjustment_id": 1,  # approving an adjustment: administrators only
        "name": "members",  # an analytics panel: analytics.view_dashboard only
        "message_id": victim.messages.get().pk,
        # An unsubscribe link is signed for its member: the intruder can only forge one.
        "token": "forged-token",
        "campaign_id": 1,  # a campaign: marketers, auditors and staff only
    }
    missing = [arg for arg in args if arg not in values]
    assert not missing, f"{name} takes {missing}: add a value for it to the IDOR walk"
    return reverse(name, kwargs={arg: values[arg] for arg in args})


def secrets_of(member: Member) -> list[str]:
    """What must never appear in front of anyone else."""
    national = member.phone[3:]
    return [
        member.name,
        member.member_no,
        national,
        member.phone,
        member.email,
        national[:3] + "****" + national[-4:],
        *member.coupons.values_list("code", flat=True),
        *member.messages.values_list("body", flat=True),
    ]


def shown(response, sent: dict | None = None) -> str:
    """The page as text, minus the URL we asked for: base.html echoes it back in the
    language switcher's "next" field, which reveals nothing the requester did not type."""
    body = response.content.decode(errors="replace")
    request = response.wsgi_request
    for echoed in (request.get_full_path(), request.path, urlencode(sent or {})):
        if echoed:
            body = body.replace(escape(echoed), "").replace(echoed, "")
    return body


def snapshot(member: Member) -> tuple:
    member.refresh_from_db()
    return (
        model_to_dict(member),
        list(member.consent_events.values_list("kind", "granted", "source")),
        AuditEntry.objects.filter(member=member).count(),
    )


def smuggled(victim: Member) -> dict:
    """Form data naming the victim every way a view might be tempted to read."""
    return {
        "member_no": victim.member_no,
        "member": victim.pk,
        "member_id": victim.pk,
        "id": victim.pk,
        "pk": victim.pk,
        "phone": victim.phone,
        "q": victim.phone,
        "name": "改名了",
        "email": "",
        "kind": "sms",
        "granted": "0",
        "reason": "walk",
    }


def test_the_walk_covers_every_member_url_pattern():
    walked = {name for name, _args in PORTAL_URLS + STAFF_URLS}
    for namespace, patterns in (
        ("portal", members_urls.portal_patterns),
        ("staff", members_urls.staff_patterns),
    ):
        for name, _args in walk(patterns, namespace):
            assert name in walked
    assert any(args for _name, args in STAFF_URLS), "no member-specific staff URL found"


def test_a_plain_member_gets_403_or_404_on_every_staff_url_and_sees_nobody(intruder_client, victim):
    before = snapshot(victim)
    for name, args in STAFF_URLS:
        url = url_for(name, args, victim)
        statuses = []
        query = {"q": victim.phone}
        for response in (
            intruder_client.get(url, query),
            intruder_client.post(url, smuggled(victim)),
        ):
            statuses.append(response.status_code)
            body = shown(response, query)
            for secret in secrets_of(victim):
                assert secret not in body, (name, response.status_code, secret)
        assert set(statuses) <= {403, 404, 405}, (name, statuses)
        assert set(statuses) & {403, 404}, (name, statuses)
    assert snapshot(victim) == before


def test_anonymous_visitors_are_sent_to_log_in_from_every_staff_url(client, victim):
    for name, args in STAFF_URLS:
        url = url_for(name, args, victim)
        response = client.get(url)
        assert response.status_code in (302, 403, 404, 405), name
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("account_login")), name
        assert victim.name not in shown(response)


def test_portal_pages_never_show_another_members_data(intruder_client, intruder, victim):
    for name, args in PORTAL_URLS:
        url = url_for(name, args, victim)
        query = {"member_no": victim.member_no, "member": victim.pk, "id": victim.pk}
        response = intruder_client.get(url, query)
        # 400: a forged unsubscribe link is refused as a bad link.
        assert response.status_code in (200, 302, 400, 403, 404, 405), (name, response.status_code)
        body = shown(response, query)
        for secret in secrets_of(victim):
            assert secret not in body, (name, secret)
        if response.get("Content-Type", "").startswith("application/json"):
            exported = json.loads(body)
            assert exported["member"]["member_no"] == intruder.member_no, name


def test_posting_to_every_portal_url_with_another_members_ids_changes_only_my_own_data(
    intruder_client, intruder, victim
):
    before = snapshot(victim)
    for name, args in PORTAL_URLS:
        url = url_for(name, args, victim)
        response = intruder_client.post(url, smuggled(victim))
        assert response.status_code in (200, 302, 400, 403, 404, 405), (name, response.status_code)
        for secret in secrets_of(victim):
            assert secret not in shown(response), (name, secret)

    assert snapshot(victim) == before
    # The walk did reach real forms: the intruder's own profile and consent changed.
    intruder.refresh_from_db()
    assert intruder.name == "改名了"
    assert intruder.status == Member.Status.ACTIVE


def test_the_export_holds_only_my_own_data(intruder_client, intruder, victim):
    query = {"member_no": victim.member_no}
    response = intruder_client.get(reverse("portal:data-export"), query)
    data = json.loads(response.content)["member"]
    assert data["member_no"] == intruder.member_no
    assert data["name"] == "入侵者乙"
    assert data["consent_history"] == []  # the victim's store consent is not here
    for secret in secrets_of(victim):
        assert secret not in shown(response, query)
