"""The auditor's reconcile report: the latest reconcile runs, mismatches highlighted."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from core.jobs import job_run
from core.models import JobRun
from members.roles import ROLES
from points.models import Account
from points.services import purchase_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
URL = "/staff/reconcile/"


@pytest.fixture(autouse=True)
def _english_and_frozen_clock(settings, time_machine):
    settings.LANGUAGE_CODE = "en"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def member(store):
    member = MemberFactory(name="李娜")
    purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=NOW - datetime.timedelta(days=1),
        amount=Decimal(100),
    )
    return member


@pytest.fixture
def auditor(client, role_user):
    client.force_login(role_user("auditor"))
    return client


def page(response) -> str:
    return response.content.decode()


def test_the_url_has_its_name():
    assert reverse("staff:reconcile") == URL


@pytest.mark.parametrize("role", ROLES)
def test_only_auditors_and_administrators_see_the_report(client, role_user, role):
    client.force_login(role_user(role))
    expected = 200 if role in ("auditor", "administrator") else 403
    assert client.get(URL).status_code == expected
    assert client.post(URL).status_code in (expected, 302)
    assert JobRun.objects.filter(job="reconcile").count() == (1 if expected == 200 else 0)


def test_the_page_itself_runs_nothing(auditor, member):
    html = page(auditor.get(URL))
    assert "The reconcile job has not run yet." in html
    assert not JobRun.objects.exists()


def test_a_clean_run_shows_as_succeeded_with_the_accounts_checked(auditor, member):
    job_run(name="reconcile", business_date=datetime.date(2026, 3, 15))
    html = page(auditor.get(URL))
    assert "2026-03-15" in html
    assert "Succeeded" in html
    checked = Account.objects.count()
    assert f'class="accounts-checked">{checked}<' in html
    assert 'class="mismatch-count">0<' in html
    assert "reconcile-failed" not in html


def test_a_mismatch_fails_the_run_and_names_the_member(auditor, member):
    # A cached balance that disagrees with its entries: what reconcile exists to catch.
    Account.objects.filter(member=member).update(balance=999)
    job_run(name="reconcile", business_date=datetime.date(2026, 3, 15))
    html = page(auditor.get(URL))
    assert "reconcile-failed" in html
    assert "Failed" in html
    assert 'class="mismatch-count">1<' in html
    table = html.split('class="reconcile-mismatches"', 1)[1].split("</table>", 1)[0]
    assert reverse("staff:member-detail", args=[member.member_no]) in table
    assert "<td>999</td>" in table  # the cached balance
    assert "<td>100</td>" in table  # the entries and the lots
    assert "do not reconcile" in html


def test_run_now_records_a_run_for_today(auditor, member):
    response = auditor.post(URL, follow=True)
    assert "Reconcile finished: the ledger reconciles." in page(response)
    run = JobRun.objects.get(job="reconcile")
    assert run.business_date == datetime.date(2026, 3, 15)
    assert run.status == JobRun.Status.SUCCEEDED


def test_run_now_reports_mismatches(client, role_user, member):
    client.force_login(role_user("administrator"))
    Account.objects.filter(member=member).update(balance=1)
    response = client.post(URL, follow=True)
    assert "Reconcile finished: mismatches found." in page(response)
    assert JobRun.objects.get().status == JobRun.Status.FAILED


def test_the_nav_links_the_report_for_auditors_only(auditor, client, role_user):
    assert URL in page(auditor.get(reverse("staff:home")))
    client.force_login(role_user("store_staff"))
    assert URL not in page(client.get(reverse("staff:home")))


def test_the_report_lists_the_days_large_postings(auditor, member, settings):
    settings.RECONCILE_LARGE_POSTING_POINTS = 100
    # The member's purchase was recorded on 2026-03-15: the night of the 16th looks at it.
    job_run(name="reconcile", business_date=datetime.date(2026, 3, 16))
    html = page(auditor.get(URL))
    assert "1 posting of 100 points or more on 2026-03-15" in html
    assert f'href="/staff/members/{member.member_no}/points/">{member.member_no}</a>' in html
    assert "<td>100</td>" in html
    # Kind and source as words, the time in Beijing time (not the stored UTC text).
    assert "<td>Earned · Purchase · " in html
    assert "earn · purchase" not in html
    purchase = member.purchases.get()
    shown = timezone.localtime(purchase.earn_transaction.recorded_at).strftime("%Y-%m-%d %H:%M")
    assert f">{shown}</time>" in html
