"""Recording a purchase at the till in the back office (with points as payment)."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.models import AuditEntry, Member
from members.numbers import member_qr_payload
from members.roles import ROLES
from points.models import (
    Account,
    Category,
    Entry,
    LedgerTransaction,
    Lot,
    Purchase,
    PurchaseLine,
)
from points.selectors import points_balance
from points.services import purchase_record
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/staff/purchases/new/"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(db):
    return MemberFactory(name="李娜", phone="+8613812345678")


def give_points(member, store, points, receipt="OPENING"):
    purchase_record(
        member=member,
        store=store,
        receipt_no=receipt,
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(points),
    )


def form_data(who, store, **change):
    return {
        "member": who.member_no,
        "store": store.pk,
        "receipt_no": "R1001",
        "occurred_at": "2026-03-15T13:30",
        "amount": "128.50",
        "points_to_use": "",
        **change,
    }


def page(response) -> str:
    return response.content.decode()


def written():
    return (
        Purchase.objects.count(),
        PurchaseLine.objects.count(),
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Lot.objects.count(),
        sorted(Account.objects.values_list("balance", flat=True)),
        AuditEntry.objects.filter(action="purchase.record").count(),
    )


def test_the_url_has_its_name():
    assert reverse("staff:purchase-record") == URL


@pytest.mark.parametrize("role", ROLES)
def test_only_till_roles_may_record_purchases(client, role_user, role, member):
    client.force_login(role_user(role))
    expected = 200 if role in ("store_staff", "store_manager", "administrator") else 403
    assert client.get(URL).status_code == expected


def test_a_shopper_without_a_role_is_refused(client, member):
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


def test_opened_from_the_member_page_it_shows_who_and_their_balance(staff_client, member, store):
    give_points(member, store, 1234)
    html = page(staff_client.get(f"{URL}?member={member.member_no}"))
    assert f'value="{member.member_no}"' in html
    assert "李娜" in html
    assert "138****5678" in html
    assert "13812345678" not in html
    assert "1234 points = ¥12.34" in html


def test_a_purchase_is_recorded_and_the_member_page_says_what_it_earned(
    staff_client, member, store, staff_user
):
    response = staff_client.post(URL, form_data(member, store), follow=True)
    assert response.redirect_chain[-1][0] == reverse("staff:member-detail", args=[member.member_no])
    assert "Purchase recorded: +128 points" in page(response)
    purchase = Purchase.objects.get()
    assert (purchase.store, purchase.receipt_no, purchase.amount) == (
        store,
        "R1001",
        Decimal("128.50"),
    )
    assert purchase.occurred_at == datetime.datetime(2026, 3, 15, 13, 30, tzinfo=SH)
    assert purchase.recorded_by == staff_user
    assert points_balance(member=member).available == 128
    assert AuditEntry.objects.filter(action="purchase.record", actor=staff_user).count() == 1


def test_the_time_defaults_to_now_and_the_store_to_the_last_one_used(
    staff_client, staff_user, member
):
    other = StoreFactory(code="BJ001", name="北京王府井店")
    staff_user.stores.add(other, StoreFactory(code="AA001", name="AAA"))
    staff_client.post(URL, form_data(member, other))
    html = page(staff_client.get(URL))
    assert 'value="2026-03-15T14:00"' in html
    assert re.search(rf'<option value="{other.pk}" selected>', html)


def test_lines_are_kept_when_they_add_up(staff_client, member, store):
    Category.objects.create(code="food", name_zh="食品", name_en="Food")
    data = form_data(
        member,
        store,
        amount="100.00",
        line1_sku="SKU-1",
        line1_category="food",
        line1_amount="60",
        line2_sku="SKU-2",
        line2_amount="40",
    )
    assert staff_client.post(URL, data).status_code == 302
    lines = list(PurchaseLine.objects.order_by("sku").values_list("sku", "category", "amount"))
    assert lines == [("SKU-1", "food", Decimal("60.00")), ("SKU-2", "", Decimal("40.00"))]


def test_lines_that_do_not_add_up_are_refused_and_nothing_is_written(staff_client, member, store):
    before = written()
    data = form_data(member, store, amount="100", line1_sku="A", line1_amount="70")
    response = staff_client.post(URL, data)
    assert response.status_code == 400
    assert "The lines add up to ¥70.00, not the amount of ¥100.00." in page(response)
    assert written() == before
    data = form_data(member, store, amount="2098.3", line1_sku="A", line1_amount="1943.8")
    assert "The lines add up to ¥1,943.80, not the amount of ¥2,098.30." in page(
        staff_client.post(URL, data)
    )


def test_a_line_without_a_sku_says_so(staff_client, member, store):
    response = staff_client.post(URL, form_data(member, store, line1_amount="128.50"))
    assert response.status_code == 400
    assert "A line needs a SKU." in page(response)
    assert not Purchase.objects.exists()


def test_points_pay_part_of_the_bill_and_only_the_rest_earns(staff_client, member, store):
    give_points(member, store, 1000)
    data = form_data(member, store, amount="100.00", points_to_use="500")
    response = staff_client.post(URL, data, follow=True)
    assert "Purchase recorded: +95 points" in page(response)
    assert "500 points used as payment" in page(response)
    purchase = Purchase.objects.get(receipt_no="R1001")
    assert purchase.points_used == 500
    assert points_balance(member=member).available == 1000 - 500 + 95


def test_the_points_field_shows_what_the_points_are_worth(staff_client, member, store):
    html = page(
        staff_client.get(
            f"{URL}?points_to_use=300", headers=HTMX | {"HX-Trigger-Name": "points_to_use"}
        )
    )
    assert html.strip().startswith('<p id="points-value"')
    assert "300 points = ¥3.00" in html
    assert "<form" not in html


def test_typing_the_member_number_shows_the_member_with_htmx(staff_client, member, store):
    give_points(member, store, 250)
    html = page(
        staff_client.get(
            f"{URL}?member={member.member_no}", headers=HTMX | {"HX-Trigger-Name": "member"}
        )
    )
    assert html.strip().startswith('<div id="purchase-member"')
    assert "李娜" in html
    assert "250 points = ¥2.50" in html


def test_points_in_wrong_steps_are_refused(staff_client, member, store):
    give_points(member, store, 1000)
    before = written()
    response = staff_client.post(URL, form_data(member, store, points_to_use="150"))
    assert response.status_code == 400
    assert "Points are used in steps of 100." in page(response)
    assert written() == before


def test_more_points_than_the_member_has_is_refused(staff_client, member, store):
    give_points(member, store, 300)
    before = written()
    response = staff_client.post(URL, form_data(member, store, points_to_use="500"))
    assert response.status_code == 400
    assert "This needs 500 points; the member has 300 available." in page(response)
    assert written() == before


def test_points_cannot_pay_while_the_balance_is_negative(staff_client, member, store):
    from points.services import return_record

    give_points(member, store, 1000, receipt="BIG")
    purchase_record(
        member=member,
        store=store,
        receipt_no="SPEND",
        occurred_at=NOW - datetime.timedelta(hours=5),
        amount=Decimal(100),
        points_to_use=1000,
    )
    return_record(
        store=store,
        receipt_no="RET",
        original_receipt_no="BIG",
        amount=Decimal(1000),
        occurred_at=NOW - datetime.timedelta(hours=1),
    )
    assert points_balance(member=member).debt > 0
    before = written()
    response = staff_client.post(URL, form_data(member, store, points_to_use="100"))
    assert response.status_code == 400
    assert "balance is negative by" in page(response)
    assert written() == before


def test_points_worth_more_than_the_bill_are_refused(staff_client, member, store):
    give_points(member, store, 50000)
    response = staff_client.post(URL, form_data(member, store, amount="10", points_to_use="2000"))
    assert response.status_code == 400
    assert "2000 points pay ¥20.00, more than the amount." in page(response)


def test_a_receipt_already_used_for_another_purchase_shows_that_purchase(
    staff_client, member, store
):
    other = MemberFactory(name="王芳")
    purchase_record(
        member=other,
        store=store,
        receipt_no="R1001",
        occurred_at=NOW - datetime.timedelta(hours=2),
        amount=Decimal("88.00"),
    )
    before = written()
    response = staff_client.post(URL, form_data(member, store))
    html = page(response)
    assert response.status_code == 400
    assert "This receipt was already recorded for a different purchase." in html
    assert "Receipt already recorded:" in html
    assert "王芳" in html
    assert "¥88.00" in html
    assert reverse("staff:member-detail", args=[other.member_no]) in html
    assert written() == before


def test_a_double_submitted_form_records_the_purchase_once(staff_client, member, store):
    staff_client.post(URL, form_data(member, store))
    before = written()
    response = staff_client.post(URL, form_data(member, store), follow=True)
    assert "This purchase was already recorded (+128 points)." in page(response)
    assert written() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"member": "8123"}, "neither a mobile phone number nor a member number"),
        ({"member": "81234567890"}, "neither a mobile phone number nor a member number"),
        ({"member": "李娜"}, "Enter the member&#x27;s mobile phone or member number, or scan"),
        ({"member": "13900000000"}, "No member with this phone number."),
        ({"amount": "0"}, "Ensure this value is greater than or equal to 0.01."),
        ({"amount": "abc"}, "Enter a number."),
        ({"receipt_no": "  "}, "This field is required."),
        ({"points_to_use": "-100"}, "Ensure this value is greater than or equal to 0."),
    ],
)
def test_bad_input_gets_a_message_and_writes_nothing(staff_client, member, store, change, message):
    before = written()
    response = staff_client.post(URL, form_data(member, store, **change))
    assert response.status_code == 400
    assert message in page(response)
    assert written() == before


WINDOW = (
    "The time of purchase must be between 2026-02-13 14:00 and 2026-03-15 14:05 "
    "(Asia/Shanghai time)."
)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"amount": "200000.01"}, "amount", "A purchase can be at most ¥200,000.00."),
        ({"occurred_at": "2026-03-15T14:06"}, "occurred_at", WINDOW),
        ({"occurred_at": "2026-03-16T14:00"}, "occurred_at", WINDOW),
        ({"occurred_at": "2026-02-13T13:59"}, "occurred_at", WINDOW),
        ({"occurred_at": "2025-03-15T13:30"}, "occurred_at", WINDOW),
    ],
)
def test_a_purchase_outside_the_limits_is_refused_beside_its_field(
    staff_client, member, store, change, field, message
):
    before = written()

    response = staff_client.post(URL, form_data(member, store, **change))

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert message in page(response)
    assert written() == before


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "200000.00"},
        {"occurred_at": "2026-02-13T14:00"},
        {"occurred_at": "2026-03-15T14:05"},
    ],
)
def test_a_purchase_at_the_limits_is_recorded(staff_client, member, store, change):
    response = staff_client.post(URL, form_data(member, store, **change))

    assert response.status_code == 302
    assert Purchase.objects.count() == 1


def test_a_refusal_by_the_service_shows_beside_the_time(staff_client, member, store, monkeypatch):
    # The window moved on between the form's check and the service's (a minute boundary).
    monkeypatch.setattr("points.staff_forms.purchase_time_check", lambda **kwargs: None)
    before = written()

    response = staff_client.post(URL, form_data(member, store, occurred_at="2026-01-01T10:00"))

    assert response.status_code == 400
    assert response.context["form"].errors["occurred_at"] == [WINDOW]
    assert written() == before


def test_a_frozen_member_cannot_earn(staff_client, store):
    frozen = MemberFactory(status=Member.Status.FROZEN)
    response = staff_client.post(URL, form_data(frozen, store))
    assert response.status_code == 400
    assert "frozen or closed" in page(response)
    assert not Purchase.objects.exists()


def test_the_page_has_a_label_for_every_input_and_no_inline_script(staff_client, member):
    html = page(staff_client.get(URL))
    ids = re.findall(r'<input[^>]*\bid="([^"]+)"', html) + re.findall(
        r'<select[^>]*\bid="([^"]+)"', html
    )
    hidden = re.findall(r'<input type="hidden"[^>]*\bid="([^"]+)"', html)
    for field_id in set(ids) - set(hidden):
        assert f'for="{field_id}"' in html, field_id
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_an_unknown_member_number_says_so(staff_client, member, store):
    from members.numbers import damm_check_digit

    body = "81111111111"
    response = staff_client.post(
        URL, form_data(member, store, member=body + damm_check_digit(body))
    )
    assert response.status_code == 400
    assert "No member with this number." in page(response)
    assert not Purchase.objects.exists()


# --- who: a phone, a member number or a scanned card, as the staff search reads them ---------


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda m: m.member_no, id="member number"),
        pytest.param(
            lambda m: f"{m.member_no[:4]} {m.member_no[4:8]} {m.member_no[8:]}", id="grouped"
        ),
        pytest.param(lambda m: "13812345678", id="phone"),
        pytest.param(lambda m: "+86 138 1234 5678", id="phone with country code"),
        pytest.param(lambda m: member_qr_payload(m.member_no), id="card scan"),
    ],
)
def test_the_member_field_takes_a_phone_a_member_number_or_a_card_scan(
    staff_client, member, store, typed
):
    response = staff_client.post(URL, form_data(member, store, member=typed(member)), follow=True)

    assert response.redirect_chain[-1][0] == reverse("staff:member-detail", args=[member.member_no])
    assert "Purchase recorded: +128 points" in page(response)
    assert Purchase.objects.get().member == member


def test_typing_the_phone_shows_the_member_with_htmx(staff_client, member, store):
    html = page(
        staff_client.get(f"{URL}?member=13812345678", headers=HTMX | {"HX-Trigger-Name": "member"})
    )
    assert html.strip().startswith('<div id="purchase-member"')
    assert "李娜" in html


# --- lines: categories come from the managed list ---------------------------------------------


@pytest.fixture
def categories(db):
    Category.objects.create(code="cosmetics", name_zh="美妆", name_en="Cosmetics")
    Category.objects.create(code="tobacco", name_zh="烟草", name_en="Tobacco")


def test_line_categories_are_picked_from_the_list_by_name(staff_client, member, categories):
    html = page(staff_client.get(URL))

    select = re.search(r'<select name="line1_category".*?</select>', html, flags=re.S).group(0)
    assert '<option value="cosmetics">Cosmetics (cosmetics)</option>' in select
    assert '<option value="tobacco">Tobacco (tobacco)</option>' in select


def test_line_categories_are_named_in_chinese_on_the_chinese_page(
    staff_client, member, categories, settings
):
    settings.LANGUAGE_CODE = "zh-hans"
    html = page(staff_client.get(URL))

    assert '<option value="cosmetics">美妆 (cosmetics)</option>' in html
    assert "Cosmetics (" not in html


def test_a_line_category_not_on_the_list_is_refused_and_nothing_is_written(
    staff_client, member, store, categories
):
    before = written()
    data = form_data(
        member, store, line1_sku="CIG-1", line1_category="tabacco", line1_amount="128.50"
    )

    response = staff_client.post(URL, data)

    assert response.status_code == 400
    assert "“tabacco” is not a category of the list: pick one from the list." in page(response)
    assert written() == before


def test_a_line_category_from_the_list_earns_its_rate(staff_client, member, store, categories):
    from points.models import CategoryRate

    CategoryRate.objects.create(category="tobacco", rate=0)
    data = form_data(
        member,
        store,
        amount="100.00",
        line1_sku="CIG-1",
        line1_category="tobacco",
        line1_amount="40",
        line2_sku="LIP-1",
        line2_category="cosmetics",
        line2_amount="60",
    )

    response = staff_client.post(URL, data, follow=True)

    assert "Purchase recorded: +60 points" in page(response)
