"""History imports: past purchases from another system count for tiers and analytics and
post no points (the points come over as opening balances)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from core.imports import import_file
from core.models import ImportRun
from members.models import AuditEntry
from points.jobs import reconcile_job
from points.models import Account, Category, Entry, LedgerTransaction, Lot, Purchase
from tests.conftest import make_role_user
from tests.factories import MemberFactory
from tiers.models import QualifyingActivity

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(store):
    Category.objects.create(code="cosmetics", name_zh="化妆品", name_en="Cosmetics")
    return (
        MemberFactory(phone="+8613800000001", birthday=datetime.date(1990, 7, 1)),
        MemberFactory(phone="+8613800000002"),
    )


def history_file(alice, bob) -> str:
    return (
        "store,receipt_no,member_no,phone,occurred_at,amount,category,sku\n"
        f"SH001,H1,{alice.member_no},,2025-04-10T14:00:00,128.50,,\n"
        f"SH001,H2,,13800000002,2025-07-01,300,cosmetics,LIP01\n"
        f"SH001,H3,{alice.member_no},,2026-01-05T09:00:00,99.99,,\n"
        "SH001,H4,M999999999,,2026-01-05,10,,\n"
    )


def ledger() -> tuple[int, int, int, list]:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Lot.objects.count(),
        list(Account.objects.values_list("balance", "lifetime_earned")),
    )


def test_the_command_records_history_purchases_without_points(members, tmp_path):
    alice, bob = members
    before = ledger()
    path = tmp_path / "old-system.csv"
    path.write_text(history_file(alice, bob))
    out = StringIO()

    with translation.override("en"):
        call_command("import_purchases", str(path), "--history", stdout=out, stderr=StringIO())

    assert "as history: 4 rows. Imported: 3." in out.getvalue()
    assert "No points were posted." in out.getvalue()
    assert "line 5: member_no: There is no member with the number “M999999999”." in (out.getvalue())
    run = ImportRun.objects.get()
    assert run.options == {"history": True}
    assert (run.created_count, run.bad_count, run.points_posted) == (3, 1, 0)
    # The purchases, their lines and qualifying activity; nothing in the ledger.
    purchases = Purchase.objects.order_by("receipt_no")
    assert [
        (p.receipt_no, p.history, p.points_earned, p.earn_transaction_id) for p in purchases
    ] == [
        ("H1", True, 0, None),
        ("H2", True, 0, None),
        ("H3", True, 0, None),
    ]
    assert list(purchases[1].lines.values_list("sku", "category", "amount")) == [
        ("LIP01", "cosmetics", Decimal("300.00"))
    ]
    assert ledger() == before
    activity = QualifyingActivity.objects.filter(member=alice).order_by("occurred_at")
    assert [(a.spend, a.points, a.source) for a in activity] == [
        (Decimal("128.50"), 0, QualifyingActivity.Source.PURCHASE),
        (Decimal("99.99"), 0, QualifyingActivity.Source.PURCHASE),
    ]
    entry = AuditEntry.objects.get(action="points.import_purchases")
    assert entry.details["history"] is True
    assert entry.details["points"] == 0
    _checked, details = reconcile_job(datetime.date(2026, 6, 1))
    assert "failed" not in details


def test_running_the_history_file_again_changes_nothing(members):
    alice, bob = members
    content = history_file(alice, bob).encode()
    import_file(kind="purchases", file_name="h.csv", content=content, options={"history": True})
    counts = (Purchase.objects.count(), QualifyingActivity.objects.count())

    again = import_file(
        kind="purchases", file_name="h.csv", content=content, options={"history": True}
    )

    assert (again.created_count, again.existing_count, again.bad_count) == (0, 3, 1)
    assert (Purchase.objects.count(), QualifyingActivity.objects.count()) == counts


def test_an_earning_import_still_posts_points(members):
    # The same rows without the option: the till's points, as before.
    alice, bob = members

    run = import_file(
        kind="purchases", file_name="p.csv", content=history_file(alice, bob).encode()
    )

    assert run.points_posted == 128 + 300 + 99
    assert not Purchase.objects.filter(history=True).exists()
    assert LedgerTransaction.objects.filter(source=LedgerTransaction.Source.PURCHASE).count() == 3


def test_the_upload_page_offers_history_and_the_report_says_so(
    members, client, django_capture_on_commit_callbacks
):
    alice, bob = members
    client.force_login(make_role_user("administrator"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    url = reverse("staff:import-upload", args=["purchases"])

    page = client.get(url).content.decode()
    assert 'name="history"' in page
    assert "earn no points" in page
    upload = SimpleUploadedFile("old.csv", history_file(alice, bob).encode(), "text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"file": upload, "history": "on"}, follow=True)

    text = response.content.decode()
    assert "Imported as history" in text
    run = ImportRun.objects.get()
    assert run.history
    assert Purchase.objects.filter(history=True).count() == 3
    assert ledger()[0] == 0
    # The balance import has no such option, whatever is posted.
    balances = reverse("staff:import-upload", args=["balances"])
    assert 'name="history"' not in client.get(balances).content.decode()


def test_the_nightly_tier_job_counts_history_purchases(members):
    # The point of a history import: a member's past spend keeps their tier here.
    from django.utils import timezone

    from tiers.selectors import member_tier
    from tiers.services import tier_evaluate

    alice, _bob = members
    when = timezone.localtime() - datetime.timedelta(days=2)
    import_file(
        kind="purchases",
        file_name="old.csv",
        content=(
            "store,receipt_no,member_no,occurred_at,amount\n"
            f"SH001,T1,{alice.member_no},{when:%Y-%m-%dT%H:%M:%S},1500\n"
            f"SH001,T2,{alice.member_no},{when:%Y-%m-%dT%H:%M:%S},600\n"
        ).encode(),
        options={"history": True},
    )

    tier_evaluate(business_day=timezone.localdate())

    assert member_tier(member=alice).level.code == "silver"
    assert Account.objects.filter(member=alice, balance__gt=0).count() == 0
