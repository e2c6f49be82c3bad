"""Recording a return in the back office: the original purchase is looked up and shown."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from members.models import AuditEntry
from members.roles import ROLES
from points.models import LedgerTransaction, Purchase, Return
from points.selectors import points_balance
from points.services import purchase_record
from tests.factories import MemberFactory, StoreFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/staff/returns/new/"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(db):
    return MemberFactory(name="李娜")


@pytest.fixture
def purchase(member, store):
    return purchase_record(
        member=member,
        store=store,
        receipt_no="R1001",
        occurred_at=NOW - datetime.timedelta(days=2),
        amount=Decimal("200.00"),
    ).purchase


def form_data(store, **change):
    return {
        "store": store.pk,
        "receipt_no": "RT9001",
        "original_receipt_no": "R1001",
        "original_store": "",
        "amount": "50.00",
        "occurred_at": "2026-03-15T13:45",
        **change,
    }


def page(response) -> str:
    return response.content.decode()


def written():
    return (
        Return.objects.count(),
        LedgerTransaction.objects.count(),
        list(Purchase.objects.values_list("returned_amount", flat=True)),
        AuditEntry.objects.filter(action="purchase.return").count(),
    )


def test_the_url_has_its_name():
    assert reverse("staff:return-record") == URL


@pytest.mark.parametrize("role", ROLES)
def test_only_till_roles_may_record_returns(client, role_user, role):
    client.force_login(role_user(role))
    expected = 200 if role in ("store_staff", "store_manager", "administrator") else 403
    assert client.get(URL).status_code == expected


def test_a_partial_return_reverses_points_in_proportion(staff_client, member, store, purchase):
    response = staff_client.post(URL, form_data(store), follow=True)
    assert response.redirect_chain[-1][0] == reverse("staff:member-detail", args=[member.member_no])
    assert "Return recorded: −50 points" in page(response)
    assert Purchase.objects.get().returned_amount == Decimal("50.00")
    assert points_balance(member=member).available == 150
    assert AuditEntry.objects.filter(action="purchase.return").count() == 1


def test_typing_the_original_receipt_shows_the_purchase_with_htmx(
    staff_client, member, store, purchase
):
    staff_client.post(URL, form_data(store))
    response = staff_client.get(
        f"{URL}?store={store.pk}&original_receipt_no=R1001&original_store=", headers=HTMX
    )
    html = page(response)
    assert html.strip().startswith('<div id="original-purchase"')
    assert "李娜" in html
    assert 'class="original-amount">¥200.00<' in html
    assert 'class="original-returned">¥50.00<' in html
    assert 'class="original-left">¥150.00<' in html
    assert 'class="original-points">200<' in html


def test_without_javascript_the_lookup_shows_on_the_page(staff_client, store, purchase):
    html = page(staff_client.get(f"{URL}?store={store.pk}&original_receipt_no=R1001"))
    assert "<form" in html
    assert 'class="original-amount">¥200.00<' in html


@pytest.mark.parametrize("bad_store", ["²", "٣", "99999999999999999999999", "-1"])
def test_a_mangled_store_in_the_lookup_finds_nothing_instead_of_crashing(
    staff_client, store, purchase, bad_store
):
    response = staff_client.get(
        URL,
        {"store": store.pk, "original_receipt_no": "R1001", "original_store": bad_store},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "There is no purchase with this receipt number at that store." in page(response)


def test_an_unknown_receipt_is_named_plainly(staff_client, store, purchase):
    html = page(staff_client.get(f"{URL}?store={store.pk}&original_receipt_no=NOPE", headers=HTMX))
    assert "There is no purchase with this receipt number at that store." in html
    before = written()
    response = staff_client.post(URL, form_data(store, original_receipt_no="NOPE"))
    assert response.status_code == 400
    assert "There is no purchase with this receipt number at that store." in page(response)
    assert written() == before


def test_the_original_may_be_from_another_store(staff_client, member, store):
    other = StoreFactory(code="BJ001", name="北京店")
    purchase_record(
        member=member,
        store=other,
        receipt_no="B77",
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal("100"),
    )
    data = form_data(store, original_receipt_no="B77", original_store=other.pk, amount="100")
    response = staff_client.post(URL, data, follow=True)
    assert "Return recorded: −100 points" in page(response)
    purchase_return = Return.objects.get()
    assert purchase_return.store == store
    assert purchase_return.purchase.store == other


def test_returning_more_than_is_left_is_refused_with_what_is_left(staff_client, store, purchase):
    staff_client.post(URL, form_data(store, amount="150"))
    before = written()
    response = staff_client.post(URL, form_data(store, receipt_no="RT9002", amount="60"))
    assert response.status_code == 400
    assert "¥60.00 is more than the ¥50.00 left of this purchase to return." in page(response)
    assert written() == before


def test_a_double_submit_records_the_return_once(staff_client, store, purchase):
    staff_client.post(URL, form_data(store))
    before = written()
    response = staff_client.post(URL, form_data(store), follow=True)
    assert "This return was already recorded." in page(response)
    assert written() == before


def test_a_return_receipt_used_for_another_return_is_refused(staff_client, store, purchase):
    staff_client.post(URL, form_data(store))
    before = written()
    response = staff_client.post(URL, form_data(store, amount="10"))
    assert response.status_code == 400
    assert "This return receipt was already recorded for a different return." in page(response)
    assert written() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": "-5"}, "Ensure this value is greater than or equal to 0.01."),
        ({"receipt_no": ""}, "This field is required."),
        ({"original_receipt_no": " "}, "This field is required."),
        ({"occurred_at": "tomorrow"}, "Enter a valid date/time."),
        (
            {"occurred_at": "2026-03-13T13:59"},
            "A return cannot be dated before its purchase (2026-03-13 14:00).",
        ),
    ],
)
def test_bad_input_gets_a_message_and_writes_nothing(
    staff_client, store, purchase, change, message
):
    before = written()
    response = staff_client.post(URL, form_data(store, **change))
    assert response.status_code == 400
    assert message in page(response)
    assert written() == before


def test_a_return_dated_before_its_purchase_is_refused_beside_the_time(
    staff_client, store, purchase
):
    response = staff_client.post(URL, form_data(store, occurred_at="2026-03-01T09:00"))

    assert response.status_code == 400
    assert response.context["form"].errors["occurred_at"] == [
        "A return cannot be dated before its purchase (2026-03-13 14:00)."
    ]
    assert not Return.objects.exists()


def test_a_return_of_a_history_purchase_reverses_nothing_and_says_so(staff_client, member, store):
    from core.imports import import_file

    import_file(
        kind="purchases",
        file_name="old.csv",
        content=(
            "store,receipt_no,member_no,occurred_at,amount\n"
            f"{store.code},R1001,{member.member_no},2026-03-13T10:00:00,200\n"
        ).encode(),
        options={"history": True},
    )
    transactions = LedgerTransaction.objects.count()

    response = staff_client.post(URL, form_data(store), follow=True)

    assert "imported as history and earned no points here, so no points were reversed" in (
        page(response)
    )
    assert Return.objects.get().points_reversed == 0
    assert LedgerTransaction.objects.count() == transactions


def test_a_return_of_a_purchase_imported_as_history_says_no_points_are_reversed(
    staff_client, member, store
):
    from points.earning import earning_rules
    from points.posting import MemberFacts, purchase_plan
    from points.posting.writers import postings_write

    posting = purchase_plan(
        member=MemberFacts(member_id=member.pk, member_no=member.member_no),
        store_id=store.pk,
        store_code=store.code,
        receipt_no="R1001",
        channel="store",
        occurred_at=NOW - datetime.timedelta(days=2),
        amount=Decimal("200.00"),
        rules=earning_rules(),
        history=True,
    )
    postings_write(postings=[posting], now=NOW, upgrades=False)

    response = staff_client.post(URL, form_data(store), follow=True)

    assert "imported as history and earned no points here, so no points were reversed" in (
        page(response)
    )
    assert Return.objects.get().points_reversed == 0
    assert not LedgerTransaction.objects.exists()


def test_the_member_page_labels_a_history_purchase_instead_of_showing_no_points(
    staff_client, member, store
):
    from core.imports import import_file

    import_file(
        kind="purchases",
        file_name="old.csv",
        content=(
            "store,receipt_no,member_no,occurred_at,amount\n"
            f"{store.code},R1001,{member.member_no},2026-03-13T10:00:00,200\n"
        ).encode(),
        options={"history": True},
    )

    text = page(staff_client.get(reverse("staff:member-detail", args=[member.member_no])))

    assert "R1001" in text
    assert "imported as history" in text
    assert "+0</td>" not in text
