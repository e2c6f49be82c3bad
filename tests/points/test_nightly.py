"""The points jobs of the nightly chain, through `manage.py run_nightly`."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from core.models import JobRun
from members import sms
from points.models import Account, ExpiryReminder, LedgerTransaction
from points.services import purchase_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def run_nightly(day: str) -> str:
    out = StringIO()
    call_command("run_nightly", "--date", day, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def member_with_march_points(store):
    member = MemberFactory(consent_sms=True)
    purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=datetime.datetime(2026, 3, 15, 12, tzinfo=SH),
        now=datetime.datetime(2026, 3, 15, 12, tzinfo=SH),
        amount=Decimal(300),
    )
    return member


def test_points_earned_in_march_expire_on_the_first_of_april_next_year(member_with_march_points):
    run_nightly("2027-03-31")
    assert Account.objects.get(member=member_with_march_points).balance == 300

    output = run_nightly("2027-04-01")

    assert "points_expiry 2027-04-01: succeeded, 1 rows" in output
    assert Account.objects.get(member=member_with_march_points).balance == 0
    assert JobRun.objects.filter(job="reconcile", status="succeeded").count() == 2
    # A second run for the same date changes nothing.
    run_nightly("2027-04-01")
    assert LedgerTransaction.objects.filter(kind="expire").count() == 1


def test_reminders_go_out_30_and_7_days_before_once_each(member_with_march_points):
    run_nightly("2027-02-28")  # 31 days before the last day
    assert sms.outbox == []
    run_nightly("2027-03-01")
    run_nightly("2027-03-01")
    assert len(sms.outbox) == 1
    assert "300" in sms.outbox[0].text and "2027-03-31" in sms.outbox[0].text
    run_nightly("2027-03-24")
    run_nightly("2027-03-25")
    assert len(sms.outbox) == 2
    assert sorted(ExpiryReminder.objects.values_list("days_before", flat=True)) == [7, 30]


def test_members_without_sms_consent_get_no_text_but_the_reminder_is_recorded(store):
    member = MemberFactory(consent_sms=False)
    purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=datetime.datetime(2026, 3, 15, 12, tzinfo=SH),
        now=datetime.datetime(2026, 3, 15, 12, tzinfo=SH),
        amount=Decimal(50),
    )
    run_nightly("2027-03-01")
    assert sms.outbox == []
    reminder = ExpiryReminder.objects.get()
    assert (reminder.channels, reminder.sent_at is not None) == ([], True)
    # The night counts it among the reminders it settled.
    run = JobRun.objects.get(job="expiry_reminders", business_date=datetime.date(2027, 3, 1))
    assert run.rows == run.details["reminders"] == 1


def test_a_ledger_that_does_not_reconcile_fails_the_run(member_with_march_points):
    Account.objects.filter(member=member_with_march_points).update(balance=999)
    with pytest.raises(CommandError, match="reconcile"):
        run_nightly("2026-04-01")
    run = JobRun.objects.get(job="reconcile")
    assert run.status == JobRun.Status.FAILED
    assert run.details["mismatches"][0]["balance"] == 999


def test_an_unknown_date_is_refused():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        run_nightly("2027-13-01")
