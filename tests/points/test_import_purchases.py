"""Importing purchases from CSV: worked examples, bad rows, re-runs, the upload pages."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone, translation

from core.imports import (
    ImportFileError,
    import_error_list,
    import_error_message,
    import_file,
)
from core.models import ImportRun
from points.jobs import reconcile_job
from points.ledger import fingerprint
from points.models import (
    Account,
    Category,
    CategoryRate,
    Entry,
    LedgerTransaction,
    Lot,
    Purchase,
    PurchaseLine,
)
from points.posting import purchase_fingerprint
from points.services import LineInput, purchase_record
from tests.conftest import make_role_user
from tests.factories import MemberFactory, StoreFactory
from tiers.models import MemberTier, QualifyingActivity, TierLevel
from tiers.selectors import member_tier
from tiers.services import tier_evaluate

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def run(text: str) -> ImportRun:
    return import_file(kind="purchases", file_name="purchases.csv", content=text.encode())


def snapshot() -> tuple:
    return (
        Purchase.objects.count(),
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Lot.objects.count(),
        QualifyingActivity.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance", "debt", "lifetime_earned")),
    )


def reconciles() -> bool:
    _checked, details = reconcile_job(datetime.date(2026, 6, 1))
    return "failed" not in details


@pytest.fixture(autouse=True)
def categories(db):
    """The category list the files' codes come from (points.Category)."""
    for code in ("apparel", "cosmetics", "gift_card", "snacks", "tobacco"):
        Category.objects.create(code=code, name_zh=code, name_en=code)


@pytest.fixture
def members(store):
    StoreFactory(code="BJ001", name="北京王府井店", city="北京")
    return (
        MemberFactory(phone="+8613800000001", birthday=datetime.date(1990, 7, 1)),
        MemberFactory(phone="+8613800000002", birthday=datetime.date(1985, 3, 9)),
    )


def test_a_good_file_posts_points_like_the_till_and_reconciles(members):
    alice, bob = members
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("2"))
    CategoryRate.objects.create(category="gift_card", rate=Decimal("0"))
    points_import = run(
        "store,receipt_no,member_no,phone,occurred_at,amount,channel,category,sku\n"
        f"SH001,R1,{alice.member_no},,2026-04-10T14:00:00,128.50,,,\n"
        f"sh001,R2,,138 0000 0001,2026-04-11 09:30,100,online,cosmetics,LIP01\n"
        f"BJ001,R1,{alice.member_no},,2026-04-12,500,,gift_card,GC500\n"
        # Bob's birthday month: ×2, as at the till.
        f"SH001,R3,{bob.member_no},,2026-03-20T10:00:00+08:00,99.99,app,,\n"
    )
    assert points_import.status == ImportRun.Status.DONE
    assert (points_import.created_count, points_import.bad_count) == (4, 0)
    by_receipt = {(p.store.code, p.receipt_no): p for p in Purchase.objects.select_related("store")}
    assert by_receipt[("SH001", "R1")].points_earned == 128
    assert by_receipt[("SH001", "R2")].points_earned == 200
    assert by_receipt[("SH001", "R2")].channel == "online"
    assert list(by_receipt[("SH001", "R2")].lines.values_list("sku", "category", "amount")) == [
        ("LIP01", "cosmetics", Decimal("100.00"))
    ]
    assert by_receipt[("BJ001", "R1")].points_earned == 0
    assert by_receipt[("BJ001", "R1")].earn_transaction is None
    assert by_receipt[("SH001", "R3")].points_earned == 199
    assert points_import.points_posted == 128 + 200 + 199

    alice_account = Account.objects.get(member=alice)
    assert (alice_account.balance, alice_account.lifetime_earned) == (328, 328)
    txn = LedgerTransaction.objects.get(idempotency_key="purchase:SH001:R1")
    assert txn.source == LedgerTransaction.Source.PURCHASE
    assert txn.member_amount == 128
    lot = Lot.objects.get(transaction=txn)
    # Earned in April 2026: expires at the end of April 2027 (stored as 1 May 00:00).
    assert lot.expires_at == datetime.datetime(2027, 5, 1, tzinfo=SH)
    issued = Entry.objects.filter(account__kind=Account.Kind.ISSUANCE).aggregate(s=Sum("amount"))
    assert issued["s"] == -(128 + 200 + 199)
    assert reconciles()


def test_many_batches_inside_one_transaction_post_each_purchase_once(members, monkeypatch):
    # Inside a caller's transaction (this test's) no batch commits: each must start from an
    # empty staging table, not post the previous batch's rows again.

    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 3)
    alice, bob = members
    rows = "".join(
        f"SH001,T{i},{(alice if i % 2 else bob).member_no},,2026-04-{i + 1:02d}T10:00:00,{i + 10}\n"
        for i in range(10)
    )
    points_import = run("store,receipt_no,member_no,phone,occurred_at,amount\n" + rows)
    assert (points_import.created_count, points_import.bad_count) == (10, 0)
    assert Purchase.objects.count() == LedgerTransaction.objects.count() == 10
    assert points_import.points_posted == sum(i + 10 for i in range(10))
    assert reconciles()


def test_the_same_points_as_purchase_record(members, store):
    """The import and the live service agree, so the API replays an imported receipt."""
    alice, _bob = members
    when = datetime.datetime(2026, 7, 5, 12, 0, tzinfo=SH)  # Alice's birthday month
    run(
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,IMP1,{alice.member_no},2026-07-05T12:00:00,88.80\n"
    )
    imported = Purchase.objects.get(receipt_no="IMP1")
    live = purchase_record(
        member=alice,
        store=store,
        receipt_no="LIVE1",
        occurred_at=when,
        now=when,
        amount=Decimal("88.80"),
    ).purchase
    assert imported.points_earned == live.points_earned == 177
    # The same receipt through the till is a replay of the imported purchase, not a conflict.
    replay = purchase_record(
        member=alice,
        store=store,
        receipt_no="IMP1",
        occurred_at=when,
        now=when,
        amount=Decimal("88.8"),
    )
    assert replay.created is False
    assert replay.purchase.pk == imported.pk


def test_bad_rows_are_reported_and_nothing_of_them_is_written(members):
    alice, _bob = members
    MemberFactory(phone="+8613800000009", status="frozen")
    points_import = run(
        "store,receipt_no,member_no,phone,occurred_at,amount,channel\n"
        f"SH001,OK1,{alice.member_no},,2026-04-10T14:00:00,10,\n"  # line 2: good
        f"XX999,B1,{alice.member_no},,2026-04-10,10,\n"  # 3: unknown store
        "SH001,B2,M999999999,,2026-04-10,10,\n"  # 4: unknown member
        "SH001,B3,,12345,2026-04-10,10,\n"  # 5: bad phone
        f"SH001,B4,{alice.member_no},,2026-02-30,10,\n"  # 6: bad date
        f"SH001,B5,{alice.member_no},,2026-04-10,-5,\n"  # 7: bad amount
        f"SH001,B6,{alice.member_no},,2026-04-10,12.345,\n"  # 8: too many decimals
        f"SH001,OK1,{alice.member_no},,2026-04-11,20,\n"  # 9: duplicate receipt in the file
        f"SH001,B7,{alice.member_no},,2026-04-10,10,bus\n"  # 10: bad channel
        "SH001,B8,,,2026-04-10,10,\n"  # 11: no member
        f"SH001,B9,{alice.member_no},,2099-01-01,10,\n"  # 12: in the future
        "SH001,B10,,13800000009,2026-04-10,10,\n"  # 13: frozen member
        f"SH001,,{alice.member_no},,2026-04-10,10,\n"  # 14: no receipt
        "SH001,B11\n"  # 15: broken line
    )
    assert (points_import.created_count, points_import.bad_count) == (1, 13)
    problems = {(error.line, error.column, error.code) for error in points_import.errors.all()}
    assert problems == {
        (3, "store", "store_unknown"),
        (4, "member_no", "member_unknown"),
        (5, "phone", "phone_invalid"),
        (6, "occurred_at", "datetime_invalid"),
        (7, "amount", "amount_invalid"),
        (8, "amount", "amount_invalid"),
        (9, "receipt_no", "receipt_duplicate"),
        (10, "channel", "channel_invalid"),
        (11, "member_no", "member_required"),
        (12, "occurred_at", "occurred_at_future"),
        (13, "member_no", "member_inactive"),
        (14, "receipt_no", "required"),
        (15, "", "field_count"),
    }
    assert list(Purchase.objects.values_list("receipt_no", flat=True)) == ["OK1"]
    assert Account.objects.get(member=alice).balance == 10
    assert reconciles()


def test_running_the_same_file_again_changes_nothing(members):
    alice, bob = members
    text = (
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,R1,{alice.member_no},2026-04-10T14:00:00,128.50\n"
        f"SH001,R2,{bob.member_no},2026-04-10T15:00:00,66\n"
        "SH001,R3,M999999999,2026-04-10T15:00:00,66\n"
    )
    first = run(text)
    before = snapshot()
    second = run(text)
    assert snapshot() == before
    assert (second.created_count, second.existing_count, second.bad_count) == (0, 2, 1)
    assert first.errors.get().code == second.errors.get().code == "member_unknown"


def test_a_receipt_recorded_with_other_details_is_a_bad_row(members):
    alice, _bob = members
    run(
        f"store,receipt_no,member_no,occurred_at,amount\nSH001,R1,{alice.member_no},2026-04-10,10\n"
    )
    before = snapshot()
    again = run(
        f"store,receipt_no,member_no,occurred_at,amount\nSH001,R1,{alice.member_no},2026-04-10,11\n"
    )
    assert again.errors.get().code == "receipt_conflict"
    assert snapshot() == before


def test_earnings_pay_a_negative_balance_first(members):
    alice, _bob = members
    account = Account.objects.create(kind=Account.Kind.MEMBER, member=alice)
    # A return after the points were spent left Alice 30 points in debt.
    Account.objects.filter(pk=account.pk).update(balance=-30, debt=30)
    reversal = Account.objects.get_or_create(kind=Account.Kind.REVERSAL)[0]
    txn = LedgerTransaction.objects.create(
        kind="adjust",
        idempotency_key="setup-debt",
        fingerprint="x",
        source="staff",
        occurred_at=datetime.datetime(2026, 1, 1, tzinfo=SH),
        member=alice,
        member_amount=-30,
    )
    Entry.objects.create(transaction=txn, account=account, amount=-30)
    Entry.objects.create(transaction=txn, account=reversal, amount=30)
    Account.objects.filter(pk=reversal.pk).update(balance=30)

    run(
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,R1,{alice.member_no},2026-04-10,20\n"
        f"SH001,R2,{alice.member_no},2026-04-11,50\n"
    )
    account.refresh_from_db()
    assert (account.balance, account.debt) == (40, 0)
    # The first earning went wholly to the debt; the second's lot holds what was left.
    assert list(Lot.objects.values_list("points", "remaining")) == [(40, 40)]
    assert reconciles()


def test_a_file_that_cannot_be_read_writes_nothing(members):
    with pytest.raises(ImportFileError):
        run("store,receipt_no,occurred_at\nSH001,R1,2026-04-10\n")
    with pytest.raises(ImportFileError):
        import_file(kind="purchases", file_name="x.csv", content="ä".encode("latin-1"))
    assert ImportRun.objects.count() == 0


def test_the_command_prints_bad_lines_and_a_summary(members, tmp_path):
    alice, _bob = members
    path = tmp_path / "p.csv"
    path.write_text(
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,R1,{alice.member_no},2026-04-10,100\n"
        "SH001,R2,M999999999,2026-04-10,100\n"
    )
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command("import_purchases", str(path), stdout=out, stderr=err)
    assert "line 3: member_no: There is no member with the number “M999999999”." in out.getvalue()
    assert "Imported: 1. Already imported: 0. Bad rows: 1. Points posted: 100." in out.getvalue()
    assert "2 / 2 rows (100%)" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("import_purchases", str(tmp_path / "missing.csv"))


def test_an_administrator_uploads_a_file_and_sees_the_report(
    members, client, django_capture_on_commit_callbacks
):
    alice, _bob = members
    admin = make_role_user("administrator")
    client.force_login(admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("staff:import-upload", args=["purchases"]))
    assert page.status_code == 200
    upload = SimpleUploadedFile(
        "till.csv",
        (
            "store,receipt_no,member_no,occurred_at,amount\n"
            f"SH001,R1,{alice.member_no},2026-04-10,100\n"
            "SH001,R2,M999999999,2026-04-10,100\n"
        ).encode(),
        content_type="text/csv",
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("staff:import-upload", args=["purchases"]), {"file": upload}, follow=True
        )
    # Before the worker has run: the progress page, polling.
    assert "0 of 2 rows (0%)" in response.content.decode()
    assert b'hx-trigger="every 1s"' in response.content
    for callback in callbacks:
        callback()
    response = client.get(response.redirect_chain[-1][0])
    assert response.status_code == 200
    text = response.content.decode()
    assert 'hx-trigger="every 1s"' not in text
    assert "There is no member with the number “M999999999”." in text
    points_import = ImportRun.objects.get()
    assert points_import.status == ImportRun.Status.DONE
    assert points_import.actor == admin
    csv_response = client.get(reverse("staff:import-errors", args=[points_import.pk]))
    body = b"".join(csv_response.streaming_content).decode()
    assert "3,R2,member_no,There is no member with the number “M999999999”." in body
    # A progress poll from htmx gets only the status fragment.
    fragment = client.get(
        reverse("staff:import-detail", args=[points_import.pk]), HTTP_HX_REQUEST="true"
    )
    assert b"<html" not in fragment.content
    assert b"import-status" in fragment.content


def test_an_unreadable_upload_gets_a_form_error(members, client):
    client.force_login(make_role_user("administrator"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    upload = SimpleUploadedFile("x.csv", b"hello\n", content_type="text/csv")
    response = client.post(reverse("staff:import-upload", args=["purchases"]), {"file": upload})
    assert response.status_code == 400
    assert "header" in response.content.decode()
    assert ImportRun.objects.count() == 0


def test_store_staff_cannot_import(members, client):
    client.force_login(make_role_user("store_manager"))
    assert client.get(reverse("staff:import-upload", args=["purchases"])).status_code == 403
    assert client.get(reverse("staff:import-upload", args=["balances"])).status_code == 403


def test_lines_are_kept_for_the_category(members):
    alice, _bob = members
    run(
        "store,receipt_no,member_no,occurred_at,amount,category\n"
        f"SH001,R1,{alice.member_no},2026-04-10,10,snacks\n"
        f"SH001,R2,{alice.member_no},2026-04-10,10,\n"
    )
    assert PurchaseLine.objects.count() == 1


def test_each_purchase_counts_towards_tiers_and_a_rerun_adds_nothing(members):
    alice, bob = members
    CategoryRate.objects.create(category="gift_card", rate=Decimal("0"))
    text = (
        "store,receipt_no,member_no,occurred_at,amount,category\n"
        f"SH001,Q1,{alice.member_no},2026-04-10T14:00:00,128.50,\n"
        f"SH001,Q2,{alice.member_no},2026-04-11T10:00:00+08:00,20,gift_card\n"
        f"BJ001,Q1,{bob.member_no},2026-05-02,66.60,\n"
        "SH001,Q3,M999999999,2026-04-10,10,\n"
    )
    first = run(text)
    assert (first.created_count, first.bad_count) == (3, 1)
    # One row per imported purchase, in the same transaction: the spend paid (no points as
    # payment in a file) and the points earned, at the time of the purchase.
    rows = set(
        QualifyingActivity.objects.values_list(
            "member_id", "occurred_at", "spend", "points", "source"
        )
    )
    assert rows == {
        (
            purchase.member_id,
            purchase.occurred_at,
            purchase.amount,
            purchase.points_earned,
            QualifyingActivity.Source.PURCHASE,
        )
        for purchase in Purchase.objects.all()
    }
    assert (datetime.datetime(2026, 4, 11, 10, tzinfo=SH), Decimal("20.00"), 0) in {
        (at, spend, points) for _member, at, spend, points, _source in rows
    }
    second = run(text)
    assert (second.created_count, second.existing_count) == (0, 3)
    assert QualifyingActivity.objects.count() == 3


def test_the_nightly_tier_job_upgrades_a_member_from_imported_purchases(members):
    alice, _bob = members
    when = timezone.localtime() - datetime.timedelta(days=2)
    run(
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,T1,{alice.member_no},{when:%Y-%m-%dT%H:%M:%S},1500\n"
        f"SH001,T2,{alice.member_no},{when:%Y-%m-%dT%H:%M:%S},600\n"
    )
    # Not at once, as the till would: the import leaves the upgrade to the night's job.
    assert member_tier(member=alice).level.rank == 1
    tier_evaluate(business_day=timezone.localdate())
    assert member_tier(member=alice).level.code == "silver"


def test_tier_birthday_and_category_rates_earn_what_the_till_gives(members, store):
    _alice, bob = members  # born in March
    silver = TierLevel.objects.get(code="silver")
    MemberTier.objects.create(
        member=bob,
        level=silver,
        achieved_at=datetime.datetime(2026, 1, 5, tzinfo=SH),
        period_start=datetime.datetime(2026, 1, 5, tzinfo=SH),
        valid_until=datetime.date(2027, 1, 31),
    )
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("3"))
    CategoryRate.objects.create(category="tobacco", rate=Decimal("0"))
    rows = [
        ("E1", "2026-03-20T10:00:00", "100.55", "cosmetics", "LIP01"),  # birthday month
        ("E2", "2026-04-20T10:00:00", "99.99", "", ""),
        ("E3", "2026-04-21T10:00:00", "57.30", "snacks", "CHIPS"),
        ("E4", "2026-04-22T10:00:00", "50", "tobacco", "CIG"),
        ("E5", "2026-03-02 09:30", "12.34", "cosmetics", ""),
    ]
    run(
        "store,receipt_no,member_no,occurred_at,amount,category,sku\n"
        + "".join(f"SH001,{r},{bob.member_no},{t},{a},{c},{k}\n" for r, t, a, c, k in rows)
    )
    for receipt, at, amount, category, sku in rows:
        imported = Purchase.objects.get(receipt_no=receipt)
        live = purchase_record(
            member=bob,
            store=store,
            receipt_no=f"LIVE-{receipt}",
            occurred_at=datetime.datetime.fromisoformat(at).replace(tzinfo=SH),
            now=datetime.datetime.fromisoformat(at).replace(tzinfo=SH),
            amount=Decimal(amount),
            lines=[LineInput(sku=sku, category=category, amount=Decimal(amount))]
            if sku or category
            else [],
        ).purchase
        assert (imported.points_earned, imported.eligible_amount) == (
            live.points_earned,
            live.eligible_amount,
        ), receipt
    # Silver ×1.2, the birthday month ×2 on top; cosmetics earn 3 points per ¥1.
    assert Purchase.objects.get(receipt_no="E1").points_earned == 723  # 301.65 × 2.4
    assert Purchase.objects.get(receipt_no="E4").points_earned == 0
    assert reconciles()


def test_the_import_posts_the_points_the_posting_plan_gives(members, store, monkeypatch):
    """The import earns nothing of its own: each row's points, eligible amount, key and
    fingerprint are the plan's for that purchase (tier, birthday month, category rates and a
    campaign promotion included)."""
    from points import earning
    from points.earning import earning_rules
    from points.posting import MemberFacts, PlannedLine, birthday_month_of, purchase_plan
    from tiers.selectors import member_earn_multiplier

    monkeypatch.setattr(earning, "_promotion_providers", [])
    earning.register_promotion_provider(
        lambda context: Decimal("1.5") if context.store_code == "SH001" else None
    )
    _alice, bob = members  # born in March
    silver = TierLevel.objects.get(code="silver")
    MemberTier.objects.create(
        member=bob,
        level=silver,
        achieved_at=datetime.datetime(2026, 1, 5, tzinfo=SH),
        period_start=datetime.datetime(2026, 1, 5, tzinfo=SH),
        valid_until=datetime.date(2027, 1, 31),
    )
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("3"))
    rows = [
        ("SH001", "P1", "2026-03-20T10:00:00", "100.55", "cosmetics", "LIP01"),
        ("BJ001", "P2", "2026-04-20T10:00:00", "99.99", "", ""),
        ("SH001", "P3", "2026-04-21T10:00:00", "57.30", "snacks", "CHIPS"),
    ]
    run(
        "store,receipt_no,member_no,occurred_at,amount,category,sku\n"
        + "".join(f"{st},{r},{bob.member_no},{t},{a},{c},{k}\n" for st, r, t, a, c, k in rows)
    )
    rules = earning_rules()
    facts = MemberFacts(
        member_id=bob.pk,
        member_no=bob.member_no,
        birthday_month=birthday_month_of(bob.birthday),
        tier_multiplier=member_earn_multiplier(member=bob),
    )
    for store_code, receipt, at, amount, category, sku in rows:
        imported = Purchase.objects.get(receipt_no=receipt)
        occurred_at = datetime.datetime.fromisoformat(at).replace(tzinfo=SH)
        plan = purchase_plan(
            member=facts,
            store_id=imported.store_id,
            store_code=store_code,
            receipt_no=receipt,
            channel="store",
            occurred_at=occurred_at,
            amount=Decimal(amount),
            lines=[
                PlannedLine(sku=sku, category=category, quantity=Decimal(1), amount=Decimal(amount))
            ]
            if sku or category
            else [],
            rules=rules,
            promotions=[Decimal("1.5")] if store_code == "SH001" else [],
        )
        assert (imported.points_earned, imported.eligible_amount, imported.fingerprint) == (
            plan.points,
            plan.eligible_amount,
            plan.fingerprint,
        ), receipt
        assert imported.earn_transaction.idempotency_key == plan.key
    # 100.55 × 3 × silver 1.2 × the best of birthday ×2 and the promotion ×1.5 → 723.
    assert Purchase.objects.get(receipt_no="P1").points_earned == 723


@pytest.mark.parametrize(
    "text",
    ["plain", 'a "quote" and a \\ backslash', "tab\tnew\nline\r", "中文 ünïcödé", "\x01\x7f\u2028"],
)
def test_the_fingerprint_is_the_hash_of_the_request_as_json(text):
    """The plan writes the request's JSON text out by hand (fast): the same hash as
    `ledger.fingerprint` of the request, whatever the text holds."""
    when = datetime.datetime(2026, 4, 10, 14, 5, 7, 123, tzinfo=SH)
    for lines in ([(f"K{text}", f"C{text}", "1", "12.50"), ("K2", "", "2.5", "3.00")], []):
        expected = fingerprint(
            {
                "member": f"M{text}",
                "store": f"S{text}",
                "receipt_no": f"R{text}",
                "occurred_at": when.isoformat(),
                "amount": "12.50",
                "channel": f"store{text}",
                "lines": [list(line) for line in lines],
                "points_to_use": 300,
            }
        )
        assert expected == purchase_fingerprint(
            member_no=f"M{text}",
            store_code=f"S{text}",
            receipt_no=f"R{text}",
            occurred_iso=when.isoformat(),
            amount_text="12.50",
            channel=f"store{text}",
            lines=lines,
            points_to_use=300,
        )


def test_odd_but_valid_cells_take_the_careful_path(members):
    """Rows the quick check is not sure of (phone, offsets, odd amounts) are checked in full."""
    alice, _bob = members
    points_import = run(
        "store,receipt_no,member_no,phone,occurred_at,amount,channel\n"
        f"sh001,O1,{alice.member_no.lower()},,2026-04-10T14:00:00.250000,7.5,APP\n"
        "SH001,O2,,+86 138-0000-0001,2026-04-10T06:00:00Z,0010.10,\n"
        f"SH001,O3,{alice.member_no},,2026/4/9,1,\n"
        f"SH001,O4,{alice.member_no},,2026-04-09T23:59:59-05:00,3.00,\n"
    )
    assert (points_import.created_count, points_import.bad_count) == (4, 0)
    found = {p.receipt_no: p for p in Purchase.objects.all()}
    assert (found["O1"].amount, found["O1"].channel, found["O1"].points_earned) == (
        Decimal("7.50"),
        "app",
        7,
    )
    assert found["O2"].occurred_at == datetime.datetime(2026, 4, 10, 14, tzinfo=SH)
    assert found["O2"].amount == Decimal("10.10")
    assert found["O3"].occurred_at == datetime.datetime(2026, 4, 9, tzinfo=SH)
    # 23:59 at -05:00 is already the 10th in Beijing.
    lot = Lot.objects.get(transaction=found["O4"].earn_transaction)
    assert lot.expires_at == datetime.datetime(2027, 5, 1, tzinfo=SH)
    assert reconciles()


def test_campaign_promotions_apply_per_row_as_at_the_till(members, store, monkeypatch):
    from points import earning

    _alice, bob = members  # born in March: the birthday ×2 competes with the promotion
    monkeypatch.setattr(
        earning,
        "_promotion_providers",
        [lambda context: Decimal("3") if context.channel == "app" else None],
    )
    rows = [("C1", "2026-03-20T10:00:00", "app"), ("C2", "2026-04-20T10:00:00", "store")]
    run(
        "store,receipt_no,member_no,occurred_at,amount,channel\n"
        + "".join(f"SH001,{r},{bob.member_no},{t},40.10,{c}\n" for r, t, c in rows)
    )
    for receipt, at, channel in rows:
        live = purchase_record(
            member=bob,
            store=store,
            receipt_no=f"LIVE-{receipt}",
            occurred_at=datetime.datetime.fromisoformat(at).replace(tzinfo=SH),
            now=datetime.datetime.fromisoformat(at).replace(tzinfo=SH),
            amount=Decimal("40.10"),
            channel=channel,
        ).purchase
        assert Purchase.objects.get(receipt_no=receipt).points_earned == live.points_earned
    assert Purchase.objects.get(receipt_no="C1").points_earned == 120  # the best, ×3


def test_a_category_not_on_the_list_is_a_bad_row_until_an_administrator_adds_it(members):
    alice, _bob = members
    text = (
        "store,receipt_no,member_no,occurred_at,amount,category,sku\n"
        f"SH001,C1,{alice.member_no},2026-04-10T14:00:00,10,cosmetics,LIP01\n"
        f"SH001,C2,{alice.member_no},2026-04-10T14:00:00,20,tabacco,CIG01\n"
        f"SH001,C3,{alice.member_no},2026-04-10T14:00:00,30,Cosmetics,LIP02\n"
    )

    first = run(text)

    assert (first.created_count, first.bad_count) == (1, 2)
    errors = list(first.errors.order_by("line"))
    assert [(e.line, e.column, e.code) for e in errors] == [
        (3, "category", "category_unknown"),
        (4, "category", "category_unknown"),
    ]
    with translation.override("en"):
        assert import_error_message(errors[0]) == (
            "“tabacco” is not a category of the list: an administrator adds it in the admin "
            "(Categories), then run the file again."
        )
    assert list(Purchase.objects.values_list("receipt_no", flat=True)) == ["C1"]

    Category.objects.create(code="tabacco", name_zh="烟草", name_en="Tobacco")
    second = run(text)

    assert (second.created_count, second.existing_count, second.bad_count) == (1, 1, 1)
    assert sorted(Purchase.objects.values_list("receipt_no", flat=True)) == ["C1", "C2"]
    assert reconciles()


# --- Bad values: each is its row's error, the good rows are written ------------------------

OVERLONG = "x" * 200_000  # past the csv module's field limit


def bad_values_file(alice, bob) -> str:
    a, b = alice.member_no, bob.member_no
    return (
        "store,receipt_no,member_no,phone,occurred_at,amount,channel,category,sku\n"
        f"SH001,V1,{a},,2026-04-10T10:00:00,200000.00,,,\n"  # 2: good, at the limit
        f"SH001,V2,{a},,2026-04-10T10:00:00,200000.01,,,\n"  # 3: above the limit
        f"SH001,V3,{a},,2026-04-10T10:00:00,3000000000,,,\n"  # 4: far above
        f"SH001,V4,{a},,0001-01-01T00:00:00,10,,,\n"  # 5: year 1
        f"SH001,V5,{a},,9999-12-31T00:00:00,10,,,\n"  # 6: year 9999
        f"SH001,V6,{a},,1989-12-31T23:59:59,10,,,\n"  # 7: the day before the earliest
        f"SH001,V7,{a},,1990-01-01T00:00:00,10,,,\n"  # 8: good, the earliest
        f"SH001,V\x008,{a},,2026-04-10T10:00:00,10,,,\n"  # 9: NUL in the receipt
        f"SH001,V9,{a},,2026-04-10T10:00:00,10,,cat\x00,\n"  # 10: NUL in the category
        f"SH001,V10,{a},,2026-04-10T10:00:00,10,,{'c' * 51},\n"  # 11: category too long
        f'SH001,V11,{a},,2026-04-10T10:00:00,10,,,"{OVERLONG}"\n'  # 12: a field past the limit
        f"SH001,V12,{b},,2026-03-10T10:00:00,200000,,gold,\n"  # 13: earns too many points
        f"SH001,V13,{b},,2026-04-10T10:00:00,10,,,\n"  # 14: good
    )


BAD_VALUE_PROBLEMS = [
    (3, "amount", "The amount 200000.01 is above the limit of ¥200000 for one purchase."),
    (4, "amount", "The amount 3000000000 is above the limit of ¥200000 for one purchase."),
    (5, "occurred_at", "The time of purchase 0001-01-01T00:00:00 is before 1990-01-01."),
    (6, "occurred_at", "The time of purchase 9999-12-31T00:00:00 is in the future."),
    (7, "occurred_at", "The time of purchase 1989-12-31T23:59:59 is before 1990-01-01."),
    (9, "receipt_no", "receipt_no holds a NUL character (\\0), which cannot be stored."),
    (10, "category", "category holds a NUL character (\\0), which cannot be stored."),
    (11, "category", "category is longer than 50 characters."),
    (12, "", "A field of this line is longer than 131072 characters."),
    (13, "amount", "The purchase would earn 3999996000 points, more than 100000000."),
]


def problems_of(points_import: ImportRun) -> list[tuple[int, str, str]]:
    from core.imports import import_error_message

    with translation.override("en"):
        return [
            (error.line, error.column, import_error_message(error))
            for error in import_error_list(run=points_import)
        ]


def test_a_bad_value_is_its_rows_error_and_the_good_rows_are_written(members):
    alice, bob = members
    # 9,999.99 points per ¥1, and Bob's birthday month doubles it: an administrator's slip.
    Category.objects.create(code="gold", name_zh="黄金", name_en="Gold")
    CategoryRate.objects.create(category="gold", rate=Decimal("9999.99"))

    points_import = run(bad_values_file(alice, bob))

    assert points_import.status == ImportRun.Status.DONE
    assert problems_of(points_import) == BAD_VALUE_PROBLEMS
    assert (points_import.created_count, points_import.bad_count) == (3, 10)
    assert sorted(Purchase.objects.values_list("receipt_no", flat=True)) == ["V1", "V13", "V7"]
    assert points_import.errors.get(line=9).ref == "V␀8"
    # V7's 10 points (1990) expired long ago: earned and expired at once, never in the balance.
    account = Account.objects.get(member=alice)
    assert (account.balance, account.lifetime_earned) == (200_000, 200_010)
    assert reconciles()

    before = snapshot()
    again = run(bad_values_file(alice, bob))
    assert (again.created_count, again.existing_count, again.bad_count) == (0, 3, 10)
    assert problems_of(again) == BAD_VALUE_PROBLEMS
    assert snapshot() == before


def test_the_amount_limit_and_the_earliest_date_are_settings(members, settings):
    alice, _bob = members
    settings.POINTS_PURCHASE_MAX_AMOUNT = Decimal("500")
    settings.IMPORT_EARLIEST_DATE = datetime.date(2020, 1, 1)

    points_import = run(
        "store,receipt_no,member_no,occurred_at,amount\n"
        f"SH001,S1,{alice.member_no},2026-04-10T10:00:00,500.01\n"
        f"SH001,S2,{alice.member_no},2019-12-31T10:00:00,10\n"
        f"SH001,S3,{alice.member_no},2020-01-01T10:00:00,500\n"
    )

    assert problems_of(points_import) == [
        (2, "amount", "The amount 500.01 is above the limit of ¥500 for one purchase."),
        (3, "occurred_at", "The time of purchase 2019-12-31T10:00:00 is before 2020-01-01."),
    ]
    assert points_import.created_count == 1


def test_a_gbk_file_that_is_valid_utf8_too_is_refused_with_the_gbk_hint(members):
    content = (
        "store,receipt_no,member_no,occurred_at,amount,category\nSH001,R1,M1,2026-04-10,10,毛毛\n"
    )

    with translation.override("en"), pytest.raises(ImportFileError) as error:
        import_file(kind="purchases", file_name="p.csv", content=content.encode("gbk"))

    assert str(error.value).startswith("The file is not UTF-8 text. In Excel choose “Save as”")
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize("kind", ["purchases", "balances"])
def test_pages_over_bad_rows_already_stored_still_render(members, client, kind):
    # Rows an older version wrote, or someone typed in: NUL characters (where the database
    # holds them), huge numbers, params of the wrong shape, a problem code no longer known.
    from django.db import connection

    from core.models import ImportRowError

    nul = "\x00" if connection.vendor != "postgresql" else ""
    huge = 2**31 - 1
    done = ImportRun.objects.create(
        kind=kind,
        file_name=f"bad{nul}.csv",
        sha256="0" * 64,
        status=ImportRun.Status.DONE,
        total_rows=1,
        processed_rows=huge,
        created_count=huge,
        existing_count=huge,
        bad_count=huge,
        points_posted=2**63 - 1,
        columns=[f"store{nul}", 10**40],
        ignored_columns=[f"x{nul}", 10**40, {"a": 1}],
        failure=f"DataError: {nul}",
    )
    ImportRun.objects.create(
        kind=kind, file_name="waiting.csv", sha256="1" * 64, status=ImportRun.Status.RUNNING
    )
    for line, code, params in [
        (huge, "field_count", {"found": 10**40, "expected": 3}),
        (1, "amount_invalid", {"value": f"3000000000{nul}"}),
        (2, "too_long", {"wrong": "keys"}),
        (3, "member_inactive", ["a", "list"]),
        (4, "store_unknown", "a string"),
        (5, "no_such_code", {}),
    ]:
        ImportRowError.objects.create(
            run=done,
            line=line,
            ref=f"R{nul}{line}",
            column="amount",
            code=code,
            params=params,
        )
    client.force_login(make_role_user("administrator"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    listing = client.get(reverse("staff:import-upload", args=[kind]))
    detail = client.get(reverse("staff:import-detail", args=[done.pk]))
    fragment = client.get(reverse("staff:import-detail", args=[done.pk]), HTTP_HX_REQUEST="true")
    errors = client.get(reverse("staff:import-errors", args=[done.pk]))
    text = b"".join(errors.streaming_content).decode()

    assert listing.status_code == detail.status_code == fragment.status_code == 200
    assert errors.status_code == 200
    html = detail.content.decode()
    assert f"The line has {10**40} fields but the header has 3." in html
    assert "no_such_code" in html
    assert f"<td>{huge}</td>" in html
    assert "waiting.csv" in listing.content.decode()
    assert '<dd class="import-state">Done</dd>' in html  # finished with bad rows: says so
    assert text.count("\r\n") == 7  # the header and the six problems


def test_a_row_the_database_refuses_after_all_is_its_error_and_the_rest_is_written(
    members, monkeypatch
):
    # Should a value the row checker does not know of reach the database and be refused,
    # the batch is written in halves down to that row, which is reported; the run goes on.
    from django.db import DataError

    from points import imports

    alice, _bob = members
    write = imports.PointsImportJob.write

    def refusing_write(self, batch, **kwargs):
        result = write(self, batch, **kwargs)
        if any(good[3] == "R3" for good in batch.good):
            raise DataError("integer out of range\nCONTEXT: SQL statement")
        return result

    monkeypatch.setattr(imports.PointsImportJob, "write", refusing_write)
    content = "store,receipt_no,member_no,occurred_at,amount\n" + "".join(
        f"SH001,R{i},{alice.member_no},2026-04-10T10:00:00,{i}0\n" for i in range(1, 6)
    )
    content += "SH001,R6,M999999999,2026-04-10T10:00:00,10\n"

    points_import = run(content)

    assert points_import.status == ImportRun.Status.DONE
    assert problems_of(points_import) == [
        (4, "", "The database refused this row: integer out of range"),
        (7, "member_no", "There is no member with the number “M999999999”."),
    ]
    stored = ImportRun.objects.get(pk=points_import.pk)
    assert (stored.processed_rows, stored.created_count, stored.bad_count) == (6, 4, 2)
    assert stored.points_posted == 10 + 20 + 40 + 50
    assert sorted(Purchase.objects.values_list("receipt_no", flat=True)) == ["R1", "R2", "R4", "R5"]
    assert Account.objects.get(member=alice).balance == 120
    assert reconciles()


def test_the_command_reports_bad_values_by_line_and_ends_with_the_counts(members, tmp_path):
    alice, bob = members
    Category.objects.create(code="gold", name_zh="黄金", name_en="Gold")
    CategoryRate.objects.create(category="gold", rate=Decimal("9999.99"))
    path = tmp_path / "p.csv"
    path.write_bytes(bad_values_file(alice, bob).encode())
    out = StringIO()

    with translation.override("en"):
        call_command("import_purchases", str(path), "--quiet-progress", stdout=out)

    lines = out.getvalue().splitlines()
    assert (
        "line 9: receipt_no: receipt_no holds a NUL character (\\0), which cannot be stored."
        in lines
    )
    assert "line 12: A field of this line is longer than 131072 characters." in lines
    assert (
        "Imported p.csv: 13 rows. Imported: 3. Already imported: 0. Bad rows: 10." in out.getvalue()
    )


def test_a_purchase_older_than_its_points_life_is_posted_and_expired_at_once(members, time_machine):
    # Points earned in March 2025 expired on 1 April 2026: imported in June 2026 they are
    # earned and expired in the import's transaction, never part of the balance.
    time_machine.move_to(datetime.datetime(2026, 6, 1, 10, 0, tzinfo=SH), tick=False)
    alice, _bob = members
    text = (
        "store,receipt_no,member_no,phone,occurred_at,amount\n"
        f"SH001,OLD,{alice.member_no},,2025-03-10T10:00:00,300\n"
        f"SH001,NEW,{alice.member_no},,2026-05-10T10:00:00,40\n"
    )

    points_import = run(text)

    assert (points_import.created_count, points_import.bad_count) == (2, 0)
    assert points_import.points_posted == 340
    account = Account.objects.get(member=alice)
    assert (account.balance, account.lifetime_earned) == (40, 340)
    old = Purchase.objects.get(receipt_no="OLD")
    assert old.points_earned == 300
    assert list(Lot.objects.filter(transaction=old.earn_transaction).values_list("remaining")) == [
        (0,)
    ]
    expiry = LedgerTransaction.objects.get(member=alice, kind="expire")
    assert (expiry.member_amount, expiry.occurred_at) == (
        -300,
        datetime.datetime(2026, 4, 1, tzinfo=SH),
    )
    assert reconciles()
    before = snapshot()
    assert run(text).existing_count == 2
    assert snapshot() == before
