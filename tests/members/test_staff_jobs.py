"""Administrators, auditors and store managers follow the nightly jobs on the Jobs page."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from core.jobs import ALREADY_RUNNING, INTERRUPTED
from core.models import JobRun
from members.models import AuditEntry

pytestmark = pytest.mark.django_db

JOBS_URL = "/staff/jobs/"
DAY = datetime.date(2027, 4, 1)


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def manager_client(client, role_user):
    client.force_login(role_user("store_manager", email="manager@example.com"))
    return client


def page(response) -> str:
    return response.content.decode()


def rows(html: str) -> list[str]:
    table = html.split('<table class="job-runs', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"job-run .*?</tr>", table, re.S)


def run(job: str = "points_expiry", status: str = "succeeded", **fields) -> JobRun:
    started = fields.pop("started_at", timezone.now())
    finished = None if status == "running" else started + datetime.timedelta(seconds=3)
    return JobRun.objects.create(
        job=job,
        business_date=fields.pop("business_date", DAY),
        status=status,
        started_at=started,
        finished_at=finished,
        seconds=None if finished is None else 3.0,
        **fields,
    )


# --- who may see it ----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(JOBS_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["store_staff", "marketer"])
def test_roles_without_the_jobs_permission_are_refused(client, role_user, role):
    client.force_login(role_user(role))
    assert client.get(JOBS_URL).status_code == 403
    assert client.get(f"{JOBS_URL}{run().pk}/").status_code == 403


@pytest.mark.parametrize("role", ["administrator", "auditor", "store_manager"])
def test_administrators_auditors_and_store_managers_see_it_linked_from_the_menu(
    client, role_user, role
):
    client.force_login(role_user(role))
    assert client.get(JOBS_URL).status_code == 200
    assert f'href="{JOBS_URL}"' in page(client.get("/staff/"))


def test_the_menu_has_no_jobs_link_for_store_staff(client, role_user):
    client.force_login(role_user("store_staff"))
    assert f'href="{JOBS_URL}"' not in page(client.get("/staff/"))


# --- the list ----------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_their_figures(manager_client):
    earlier = timezone.now() - datetime.timedelta(hours=2)
    run("reconcile", started_at=earlier, rows=120, details={"accounts_checked": 120})
    run("points_expiry", rows=7, details={"lots_expired": 7, "coupons_expired": 0})

    html = page(manager_client.get(JOBS_URL))

    listed = rows(html)
    assert len(listed) == 2
    assert "Points expiry" in listed[0] and "<dt>Lots expired</dt><dd>7</dd>" in listed[0]
    assert "<dt>Coupons expired</dt><dd>0</dd>" in listed[0]
    assert "lots_expired" not in listed[0]
    assert "Ledger reconcile" in listed[1] and "<dt>Accounts checked</dt><dd>120</dd>" in listed[1]
    assert "2027-04-01" in listed[0] and "Succeeded" in listed[0]
    assert "2 runs" in html


def test_a_running_job_shows_its_progress_and_the_list_refreshes_itself(manager_client):
    run("points_expiry", status="running", progress_done=250, progress_total=1000)

    html = page(manager_client.get(JOBS_URL))

    assert '<progress class="progress" max="1000" value="250"' in html
    assert "250 of 1000 (25%)" in html
    assert 'hx-trigger="every 5s"' in html
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>


def test_the_list_stops_refreshing_when_nothing_runs(manager_client):
    run("points_expiry")
    html = page(manager_client.get(JOBS_URL))
    assert "hx-trigger" not in html and 'http-equiv="refresh"' not in html


def test_failed_runs_show_why(manager_client):
    run("reconcile", status="failed", error="2 account(s) and 0 transaction(s) do not reconcile")
    run("points_expiry", status="failed", error=INTERRUPTED)
    run("points_expiry", status="skipped", error=ALREADY_RUNNING)

    html = page(manager_client.get(JOBS_URL))

    assert "2 account(s) and 0 transaction(s) do not reconcile" in html
    assert "Interrupted: the worker stopped during this run." in html
    assert "Not run: another run of this job was still going." in html


def test_runs_can_be_filtered_by_job_and_status(manager_client):
    run("points_expiry")
    run("points_expiry", status="failed", error=INTERRUPTED)
    run("reconcile")

    by_job = rows(page(manager_client.get(JOBS_URL, {"job": "points_expiry"})))
    assert len(by_job) == 2 and all("Points expiry" in row for row in by_job)

    by_both = rows(page(manager_client.get(JOBS_URL, {"job": "points_expiry", "status": "failed"})))
    assert len(by_both) == 1 and "Failed" in by_both[0]

    nothing = page(manager_client.get(JOBS_URL, {"job": "reconcile", "status": "running"}))
    assert "No job runs match these filters." in nothing


def test_an_unknown_filter_value_is_a_bad_request(manager_client):
    response = manager_client.get(JOBS_URL, {"status": "exploded"})
    assert response.status_code == 400
    assert "Select a valid choice" in page(response)


def test_the_list_is_paginated(manager_client):
    start = timezone.now() - datetime.timedelta(days=60)
    JobRun.objects.bulk_create(
        JobRun(
            job="reconcile",
            business_date=DAY - datetime.timedelta(days=n),
            status="succeeded",
            started_at=start + datetime.timedelta(hours=n),
        )
        for n in range(55)
    )
    first = page(manager_client.get(JOBS_URL, {"job": "reconcile"}))
    assert len(rows(first)) == 50
    assert "Page 1 of 2" in first and "job=reconcile&amp;page=2" in first
    second = page(manager_client.get(JOBS_URL, {"job": "reconcile", "page": 2}))
    assert len(rows(second)) == 5


def test_htmx_gets_only_the_table(manager_client):
    run("points_expiry", status="running", progress_done=1, progress_total=2)
    response = manager_client.get(JOBS_URL, headers={"HX-Request": "true"})
    html = page(response)
    assert html.lstrip().startswith('<div id="job-runs"')
    assert "<h1>" not in html
    assert "HX-Request" in response["Vary"]


# --- one run -----------------------------------------------------------------------------


def test_the_detail_page_shows_everything_about_a_run(manager_client):
    failed = run(
        "reconcile",
        status="failed",
        rows=3,
        error="3 account(s) and 0 transaction(s) do not reconcile",
        details={
            "accounts_checked": 3,
            "mismatches": [{"account": 9, "member": 4, "balance": 999}],
            "unbalanced_transactions": [],
        },
    )

    html = page(manager_client.get(f"{JOBS_URL}{failed.pk}/"))

    assert "reconcile for 2027-04-01" in html
    assert "Failed" in html and "do not reconcile" in html
    assert "<dt>Accounts checked</dt><dd>3</dd>" in html
    assert "Accounts that do not reconcile <span" in html  # the list's heading
    assert "&quot;balance&quot;: 999" in html  # the mismatch list, as JSON
    assert "hx-trigger" not in html


def test_the_detail_of_a_running_run_refreshes_its_status(manager_client):
    running = run("points_expiry", status="running", progress_done=3, progress_total=4)
    url = f"{JOBS_URL}{running.pk}/"

    assert 'hx-trigger="every 2s"' in page(manager_client.get(url))
    fragment = page(manager_client.get(url, headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<div id="job-run-status"')
    assert "3 of 4 (75%)" in fragment


def test_an_unknown_run_is_not_found(manager_client):
    assert manager_client.get(f"{JOBS_URL}999999/").status_code == 404


# --- running a job again -----------------------------------------------------------------

RERUN_URL = "/staff/jobs/rerun/"


@pytest.fixture
def admin_client(client, role_user):
    client.force_login(role_user("administrator", email="admin@example.com"))
    return client


def test_an_administrator_runs_a_job_again_for_a_date_and_it_is_audited(
    admin_client, django_capture_on_commit_callbacks
):
    form = page(admin_client.get(JOBS_URL))
    assert f'action="{RERUN_URL}"' in form and 'method="post"' in form
    assert '<label for="id_rerun_business_date">Business date</label>' in form

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            RERUN_URL, {"job": "points_expiry", "business_date": "2026-03-01"}
        )

    assert response.status_code == 302 and response["Location"] == JOBS_URL
    # No broker in tests: the task ran through the same runner as a nightly run.
    (ran,) = JobRun.objects.all()
    assert (ran.job, ran.business_date, ran.status) == (
        "points_expiry",
        datetime.date(2026, 3, 1),
        "succeeded",
    )
    entry = AuditEntry.objects.get(action="job.rerun")
    assert entry.actor.email == "admin@example.com"
    assert entry.details == {"job": "points_expiry", "date": "2026-03-01"}
    assert "Points expiry for 2026-03-01 was queued" in page(admin_client.get(JOBS_URL))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"job": "drop_tables", "business_date": "2026-03-01"}, "Select a valid choice."),
        ({"job": "points_expiry", "business_date": "2026-02-30"}, "Enter a valid date."),
        ({"job": "points_expiry", "business_date": "2999-01-01"}, "has not come yet"),
    ],
)
def test_a_bad_rerun_request_gets_a_message_and_runs_nothing(admin_client, data, message):
    response = admin_client.post(RERUN_URL, data)
    assert response.status_code == 400
    assert message in page(response)
    assert not JobRun.objects.exists()


@pytest.mark.parametrize("role", ["auditor", "store_manager"])
def test_only_administrators_may_run_a_job_again(client, role_user, role):
    client.force_login(role_user(role))
    assert RERUN_URL not in page(client.get(JOBS_URL))
    response = client.post(RERUN_URL, {"job": "points_expiry", "business_date": "2026-03-01"})
    assert response.status_code == 403
    assert not JobRun.objects.exists()


def test_running_a_job_again_needs_a_post(admin_client):
    assert admin_client.get(RERUN_URL).status_code == 405


def test_the_rerun_form_shows_and_takes_an_iso_date_in_chinese(
    admin_client, settings, django_capture_on_commit_callbacks
):
    # <input type=date> takes only ISO: a localized "2026/12/07" would show an empty field.
    settings.LANGUAGE_CODE = "zh-hans"
    html = page(admin_client.get(JOBS_URL))
    (value,) = re.findall(r'<input type="date" name="business_date" value="([^"]*)"', html)
    assert value == timezone.localdate().isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(RERUN_URL, {"job": "points_expiry", "business_date": value})
    assert response.status_code == 302
    assert JobRun.objects.get().business_date == timezone.localdate()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_id_on_the_jobs_page_is_unique_and_each_label_names_its_own_field(
    admin_client, settings, language
):
    settings.LANGUAGE_CODE = language
    html = page(admin_client.get(JOBS_URL))
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    filter_form, rerun_form = html.split('action="/staff/jobs/rerun/"', 1)
    for form, name in ((filter_form, "job"), (rerun_form, "job"), (rerun_form, "business_date")):
        (field_id,) = re.findall(rf'<(?:select|input)[^>]* name="{name}"[^>]* id="([^"]+)"', form)
        assert f'<label for="{field_id}">' in form


RECONCILE_DETAILS = {
    "accounts_checked": 2,
    "mismatches": [],
    "unbalanced_transactions": [],
    "large_postings_threshold": 100_000,
    # What the job stores: UTC ISO times of the business day's bounds (Asia/Shanghai).
    "large_postings_from": "2027-03-30T16:00:00+00:00",
    "large_postings_until": "2027-03-31T16:00:00+00:00",
    "large_postings_count": 0,
    "large_postings": [],
}


@pytest.mark.parametrize(
    ("language", "labels", "heading", "job"),
    [
        (
            "en",
            [
                "<dt>Large postings: at least (points)</dt><dd>100000</dd>",
                "<dt>Large postings: from</dt><dd>2027-03-31 00:00</dd>",
                "<dt>Large postings: until</dt><dd>2027-04-01 00:00</dd>",
                "<dt>Large postings</dt><dd>0</dd>",
            ],
            "Large postings listed",
            "<dt>Job</dt><dd>Ledger reconcile</dd>",
        ),
        (
            "zh-hans",
            [
                "<dt>大额记账：不少于（积分）</dt><dd>100000</dd>",
                "<dt>大额记账：起</dt><dd>2027-03-31 00:00</dd>",
                "<dt>大额记账：止</dt><dd>2027-04-01 00:00</dd>",
                "<dt>大额记账</dt><dd>0</dd>",
            ],
            "列出的大额记账",
            "<dt>任务</dt><dd>账本对账</dd>",
        ),
    ],
)
def test_the_reconcile_runs_figures_are_labelled_with_local_times(
    manager_client, settings, language, labels, heading, job
):
    settings.LANGUAGE_CODE = language
    reconcile = run("reconcile", details=RECONCILE_DETAILS)

    listed = rows(page(manager_client.get(JOBS_URL)))[0]
    detail = page(manager_client.get(f"{JOBS_URL}{reconcile.pk}/"))

    for html in (listed, detail):
        assert "large_postings" not in html
        for label in labels:
            assert label in html
    assert f'">{heading} <span class="muted">(0)</span></h2>' in detail
    assert job in detail and "<code>reconcile</code>" not in detail
