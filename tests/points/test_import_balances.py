"""Importing opening point balances from a previous system."""

from __future__ import annotations

import datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone, translation

from core.imports import import_error_list, import_error_message, import_file
from core.models import ImportRun
from points.jobs import reconcile_job
from points.models import (
    Account,
    Entry,
    LedgerTransaction,
    Lot,
)
from tests.conftest import make_role_user
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def run(text: str) -> ImportRun:
    return import_file(kind="balances", file_name="balances.csv", content=text.encode())


def next_year() -> int:
    return timezone.localdate().year + 1


def snapshot() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Lot.objects.count(),
        list(Account.objects.order_by("pk").values_list("balance", "debt", "lifetime_earned")),
    )


@pytest.fixture
def alice(db):
    return MemberFactory(phone="+8613800000001")


def test_each_row_is_one_lot_that_expires_at_the_end_of_its_day(alice):
    year = next_year()
    points_import = run(
        "source_id,member_no,phone,points,expires_on,earned_on\n"
        f"OLD-1,{alice.member_no},,2500,{year}-06-30,2025-06-01\n"
        f"OLD-2,,13800000001,300,{year}-12-31,\n"
    )
    assert (points_import.created_count, points_import.bad_count) == (2, 0)
    assert points_import.points_posted == 2800
    account = Account.objects.get(member=alice)
    # Opening balances count as earned: they were, in the previous system.
    assert (account.balance, account.lifetime_earned) == (2800, 2800)
    first = LedgerTransaction.objects.get(idempotency_key="import:balance:OLD-1")
    assert first.source == LedgerTransaction.Source.IMPORT
    assert first.kind == LedgerTransaction.Kind.EARN
    assert first.occurred_at == datetime.datetime(2025, 6, 1, tzinfo=SH)
    lot = Lot.objects.get(transaction=first)
    assert (lot.points, lot.remaining) == (2500, 2500)
    # Usable all of 30 June (Beijing time): stored as the next midnight.
    assert lot.expires_at == datetime.datetime(year, 7, 1, tzinfo=SH)
    assert lot.available_at == lot.earned_at
    issued = Entry.objects.filter(account__kind=Account.Kind.ISSUANCE).aggregate(s=Sum("amount"))
    assert issued["s"] == -2800
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details


def test_bad_rows_are_reported_and_nothing_of_them_is_written(alice):
    year = next_year()
    points_import = run(
        "source_id,member_no,points,expires_on,earned_on\n"
        f"OK-1,{alice.member_no},100,{year}-01-31,\n"  # 2: good
        f"B-1,M999999999,100,{year}-01-31,\n"  # 3: unknown member
        f"B-2,{alice.member_no},0,{year}-01-31,\n"  # 4: zero points
        f"B-3,{alice.member_no},12.5,{year}-01-31,\n"  # 5: not whole
        f"B-4,{alice.member_no},100,2020-01-31,\n"  # 6: expiry in the past
        f"B-5,{alice.member_no},100,{year}-02-30,\n"  # 7: no such date
        f"OK-1,{alice.member_no},100,{year}-01-31,\n"  # 8: duplicate source_id
        f",{alice.member_no},100,{year}-01-31,\n"  # 9: no source_id
        f"B-6,{alice.member_no},100,{year}-01-31,{year + 1}-01-01\n"  # 10: earned in the future
        f"B-7,{alice.member_no},100,,\n"  # 11: no expiry
    )
    problems = {(e.line, e.column, e.code) for e in points_import.errors.all()}
    assert problems == {
        (3, "member_no", "member_unknown"),
        (4, "points", "points_invalid"),
        (5, "points", "points_invalid"),
        (6, "expires_on", "expires_on_past"),
        (7, "expires_on", "date_invalid"),
        (8, "source_id", "source_id_duplicate"),
        (9, "source_id", "required"),
        (10, "earned_on", "earned_on_future"),
        (11, "expires_on", "required"),
    }
    assert (points_import.created_count, points_import.bad_count) == (1, 9)
    assert Account.objects.get(member=alice).balance == 100


def test_running_the_same_file_again_changes_nothing(alice):
    text = (
        f"source_id,member_no,points,expires_on\nOLD-1,{alice.member_no},500,{next_year()}-03-31\n"
    )
    run(text)
    before = snapshot()
    again = run(text)
    assert snapshot() == before
    assert (again.created_count, again.existing_count) == (0, 1)


def test_a_source_id_imported_with_other_details_is_a_bad_row(alice):
    run(f"source_id,member_no,points,expires_on\nOLD-1,{alice.member_no},500,{next_year()}-03-31\n")
    before = snapshot()
    again = run(
        f"source_id,member_no,points,expires_on\nOLD-1,{alice.member_no},501,{next_year()}-03-31\n"
    )
    assert again.errors.get().code == "balance_conflict"
    assert snapshot() == before


def test_the_command_and_the_upload_page(
    alice, tmp_path, client, django_capture_on_commit_callbacks
):
    path = tmp_path / "b.csv"
    path.write_text(
        f"source_id,member_no,points,expires_on\nOLD-1,{alice.member_no},500,{next_year()}-03-31\n"
        f"OLD-2,M999999999,500,{next_year()}-03-31\n"
    )
    out = StringIO()
    with translation.override("en"):
        call_command("import_balances", str(path), stdout=out, stderr=StringIO())
    assert "Imported: 1. Already imported: 0. Bad rows: 1. Points posted: 500." in out.getvalue()

    client.force_login(make_role_user("administrator"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert client.get(reverse("staff:import-upload", args=["balances"])).status_code == 200
    upload = SimpleUploadedFile("b.csv", path.read_bytes(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff:import-upload", args=["balances"]), {"file": upload})
    detail = client.get(response["Location"])
    text = detail.content.decode()
    assert "There is no member with the number “M999999999”." in text
    assert 'class="count-existing">1<' in text


# --- Bad values: each is its row's error, the good rows are written ------------------------

OVERLONG = "x" * 200_000  # past the csv module's field limit


def bad_values_file(alice) -> str:
    a, year = alice.member_no, next_year()
    return (
        "source_id,member_no,points,expires_on,earned_on\n"
        f"V1,{a},100,{year}-06-30,1990-01-01\n"  # 2: good, the earliest day
        f"V2,{a},100,{year}-06-30,1989-12-31\n"  # 3: the day before
        f"V3,{a},100,{year}-06-30,0001-01-01\n"  # 4: year 1
        f"V4,{a},100,9999-12-31,\n"  # 5: expires in year 9999
        f"V5,{a},100,{year}-06-30,9999-12-31\n"  # 6: earned in year 9999
        f"V6,{a},3000000000,{year}-06-30,\n"  # 7: too many points
        f"V7,{a},10\x000,{year}-06-30,\n"  # 8: NUL in the points
        f"V\x008,{a},100,{year}-06-30,\n"  # 9: NUL in the source_id
        f"{'V' * 101},{a},100,{year}-06-30,\n"  # 10: source_id too long
        f'V10,{a},100,{year}-06-30,"{OVERLONG}"\n'  # 11: a field past the limit
        f"V11,{a},200,{year}-06-30,\n"  # 12: good
    )


def test_a_bad_value_is_its_rows_error_and_the_good_rows_are_written(alice):
    latest = f"{timezone.localdate().year + 10}-12-31"

    points_import = run(bad_values_file(alice))

    assert points_import.status == ImportRun.Status.DONE
    with translation.override("en"):
        problems = [
            (error.line, error.column, import_error_message(error))
            for error in import_error_list(run=points_import)
        ]
    assert problems == [
        (3, "earned_on", "The day earned 1989-12-31 is before 1990-01-01."),
        (4, "earned_on", "The day earned 0001-01-01 is before 1990-01-01."),
        (5, "expires_on", f"The points would expire on 9999-12-31, after {latest}."),
        (6, "earned_on", "The day earned 9999-12-31 is in the future."),
        (7, "points", "“3000000000” is not a whole number of points above 0."),
        (8, "points", "points holds a NUL character (\\0), which cannot be stored."),
        (9, "source_id", "source_id holds a NUL character (\\0), which cannot be stored."),
        (10, "source_id", "source_id is longer than 100 characters."),
        (11, "", "A field of this line is longer than 131072 characters."),
    ]
    assert (points_import.created_count, points_import.bad_count) == (2, 9)
    assert Account.objects.get(member=alice).balance == 300
    assert points_import.errors.get(line=9).ref == "V␀8"

    before = snapshot()
    again = run(bad_values_file(alice))
    assert (again.created_count, again.existing_count, again.bad_count) == (0, 2, 9)
    assert snapshot() == before


def test_the_earliest_day_earned_is_a_setting(alice, settings):
    settings.IMPORT_EARLIEST_DATE = datetime.date(2020, 1, 1)

    points_import = run(
        "source_id,member_no,points,expires_on,earned_on\n"
        f"E1,{alice.member_no},100,{next_year()}-06-30,2019-12-31\n"
    )

    assert [(e.line, e.code) for e in points_import.errors.all()] == [(2, "earned_on_too_early")]


def test_a_balance_the_database_refuses_after_all_is_its_error_and_the_rest_is_written(
    alice, monkeypatch
):
    from django.db import DataError

    from points import imports

    write = imports.PointsImportJob.write

    def refusing_write(self, batch, **kwargs):
        result = write(self, batch, **kwargs)
        if any(row.ref == "OLD-2" for row in batch.good):
            raise DataError("numeric field overflow")
        return result

    monkeypatch.setattr(imports.PointsImportJob, "write", refusing_write)

    points_import = run(
        "source_id,member_no,points,expires_on\n"
        + "".join(f"OLD-{i},{alice.member_no},{i}00,{next_year()}-06-30\n" for i in range(1, 4))
    )

    assert points_import.status == ImportRun.Status.DONE
    assert [(e.line, e.code, e.params) for e in points_import.errors.all()] == [
        (3, "row_refused", {"reason": "numeric field overflow"})
    ]
    assert (points_import.created_count, points_import.points_posted) == (2, 400)
    assert Account.objects.get(member=alice).balance == 400


def test_a_nul_in_an_ignored_column_of_the_header_is_shown_not_stored(alice):
    points_import = run(
        f"source_id,member_no,points,expires_on,no\x00te\nN1,{alice.member_no},5,{next_year()}-06-30,x\n"
    )

    assert points_import.created_count == 1
    assert ImportRun.objects.get(pk=points_import.pk).ignored_columns == ["no␀te"]
