"""The member portal's coupons: my list with statuses, and one coupon as a code and QR."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import segno
from django.urls import reverse

from points.models import Coupon, Reward
from points.services import coupon_use, purchase_record, redemption_void, reward_redeem
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def member(db):
    user = UserFactory(email="li@example.com", phone="+8613800000001", phone_verified=True)
    return MemberFactory(user=user, phone=user.phone, name="李小龙", email="li@example.com")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def cny10(db):
    return Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal("10"),
    )


def redeem(member, store, reward, key, *, at=NOW) -> Coupon:
    purchase_record(
        member=member,
        store=store,
        receipt_no=f"R-{key}",
        occurred_at=at,
        now=at,
        amount=Decimal(1000),
    )
    return reward_redeem(member=member, reward=reward, idempotency_key=key, now=at).coupon


def page(response) -> str:
    return response.content.decode()


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def coupon_rows(html: str) -> list[str]:
    return [
        text(row).strip()
        for row in re.findall(r'<li class="card coupon-item[^"]*">(.*?)</li>', html, flags=re.S)
    ]


def qr_cells(svg: str) -> set[tuple[int, int]]:
    """The dark modules of a segno SVG path (as in tests/members/test_portal.py)."""
    path = re.search(r'<path[^>]* stroke="#000" d="([^"]+)"', svg.split("qr-code", 1)[1]).group(1)
    cells, x, y = set(), 0.0, 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            cells.update((int(x) + i, int(y)) for i in range(int(a)))
            x += float(a)
    return cells


def test_my_coupons_list_every_status_with_dates(member_client, member, store, cny10):
    issued = redeem(member, store, cny10, "k1")
    used = redeem(member, store, cny10, "k2", at=NOW - datetime.timedelta(days=2))
    coupon_use(code=used.code, store=store, receipt_no="R9", now=NOW - datetime.timedelta(days=1))
    voided = redeem(member, store, cny10, "k3", at=NOW - datetime.timedelta(days=3))
    redemption_void(redemption=voided.redemption, actor=UserFactory(), reason="test", now=NOW)
    # Past its date but not yet marked by the nightly job: the member sees it as expired.
    redeem(member, store, cny10, "k4", at=NOW - datetime.timedelta(days=40))

    rows = coupon_rows(page(member_client.get(reverse("portal:coupons"))))
    assert rows == [
        "¥10 off Issued Valid until 2026-04-14",
        "¥10 off Used Used on 2026-03-14",
        "¥10 off Void Valid until 2026-04-11",
        "¥10 off Expired Valid until 2026-03-05",
    ]
    html = page(member_client.get(reverse("portal:coupons")))
    assert 'class="badge coupon-status status-issued"' in html
    assert 'class="badge coupon-status status-expired"' in html
    assert f'href="{reverse("portal:coupon-detail", kwargs={"coupon_code": issued.code})}"' in html


def test_the_list_shows_only_my_coupons(member_client, member, store, cny10):
    other = redeem(MemberFactory(), store, cny10, "theirs")
    html = page(member_client.get(reverse("portal:coupons")))
    assert other.code not in html
    assert "You have no coupons yet." in html


def test_a_coupon_shows_its_code_big_and_as_a_qr_code(member_client, member, store, cny10):
    coupon = redeem(member, store, cny10, "k1")
    html = page(
        member_client.get(reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code}))
    )
    grouped = " ".join(coupon.code[i : i + 4] for i in range(0, 16, 4))
    shown = re.search(r'<p class="coupon-code" aria-label="Coupon code">(.*?)</p>', html).group(1)
    # Groups of four, each kept on one line (a phone breaks between groups, never inside).
    assert re.sub(r"<[^>]+>", "", shown) == grouped
    assert shown.count("<span>") == 4
    expected = segno.make(coupon.code, error="m", micro=False)
    dark = {
        (col + 4, row + 4)
        for row, line in enumerate(expected.matrix)
        for col, value in enumerate(line)
        if value
    }
    assert qr_cells(html) == dark
    shown = text(html)
    assert "Valid until 2026-04-14" in shown
    assert "Issued" in shown
    assert "the cashier scans the QR code, or types the code under it" in shown
    assert "¥10.00 off your purchase." in shown


def test_a_used_coupon_has_no_qr_code_and_says_when_it_was_used(
    member_client, member, store, cny10
):
    coupon = redeem(member, store, cny10, "k1")
    coupon_use(code=coupon.code, store=store, now=NOW + datetime.timedelta(hours=2))
    html = page(
        member_client.get(reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code}))
    )
    assert "qr-code" not in html
    assert "Used on 2026-03-15 16:00" in text(html)
    assert "How to use it" not in html


def test_an_expired_coupon_says_so(member_client, member, store, cny10, time_machine):
    coupon = redeem(member, store, cny10, "k1")
    time_machine.move_to(NOW + datetime.timedelta(days=31), tick=False)
    member_client.force_login(member.user)
    html = page(
        member_client.get(reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code}))
    )
    assert "Expired: it was valid until 2026-04-14" in text(html)
    assert "qr-code" not in html


def test_the_code_may_be_typed_in_lower_case(member_client, member, store, cny10):
    coupon = redeem(member, store, cny10, "k1")
    url = reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code.lower()})
    assert member_client.get(url).status_code == 200


def test_another_members_coupon_is_not_found(member_client, store, cny10):
    theirs = redeem(MemberFactory(), store, cny10, "theirs")
    response = member_client.get(
        reverse("portal:coupon-detail", kwargs={"coupon_code": theirs.code})
    )
    assert response.status_code == 404
    assert theirs.code not in page(response).replace(response.wsgi_request.path, "")
    unknown = member_client.get(
        reverse("portal:coupon-detail", kwargs={"coupon_code": "AAAABBBBCCCCDDDD"})
    )
    assert unknown.status_code == 404


def test_coupon_pages_need_a_login_and_a_member(client, staff_user, member, store, cny10):
    coupon = redeem(member, store, cny10, "k1")
    urls = [
        reverse("portal:coupons"),
        reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code}),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    client.force_login(staff_user)
    for url in urls:
        html = page(client.get(url))
        assert "This account has no member card" in html
        assert coupon.code not in html.replace(url, "")


def test_coupon_pages_have_no_inline_styles_or_scripts(member_client, member, store, cny10):
    coupon = redeem(member, store, cny10, "k1")
    for url in (
        reverse("portal:coupons"),
        reverse("portal:coupon-detail", kwargs={"coupon_code": coupon.code}),
    ):
        html = page(member_client.get(url))
        assert " style=" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
