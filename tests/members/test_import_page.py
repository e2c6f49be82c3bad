"""The import upload page: administrators upload, watch the progress, read the report."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from core.models import ImportRowError, ImportRun
from core.tasks import import_run_task
from members.models import AuditEntry, ConsentEvent, Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/staff/imports/members/"

CSV = """\
source_id,phone,name,gender,home_store,consent_sms
P1,13812340001,张伟,男,SH001,是
P2,12345,李娜,女,,
P3,13812340003,王芳,,XX999,
P4,13812340001,赵敏,,,
P5,13812340005,陈静,,,1
"""


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    # The page queues a Celery task; run it in-process whatever broker the settings name.
    conf = import_run_task.app.conf
    saved = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = saved


@pytest.fixture
def admin_client(client, role_user, store):
    client.force_login(role_user("administrator", email="admin@example.com"))
    return client


def upload(client, content: bytes | str = CSV, name: str = "members.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        URL,
        {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
        headers={"Accept-Language": "en"},
    )


def test_the_upload_page_explains_the_columns(admin_client):
    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'action="{URL}"' in html
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="id_file">' in html
    for column in ("source_id", "phone", "name", "email", "home_store", "consent_email"):
        assert f"<code>{column}</code>" in html


def test_uploading_imports_the_file_and_the_report_shows_counts_and_bad_lines(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client)

    member_import = ImportRun.objects.get()
    detail = reverse("staff:import-detail", args=[member_import.pk])
    assert response.status_code == 302
    assert response.url == detail
    assert sorted(Member.objects.values_list("import_source_id", flat=True)) == ["P1", "P5"]
    assert Member.objects.get(import_source_id="P1").enrolled_by.email == "admin@example.com"
    assert ConsentEvent.objects.filter(source="import", granted=True).count() == 2

    page = admin_client.get(detail, headers={"Accept-Language": "en"})
    html = page.content.decode()
    assert page.status_code == 200
    assert '<dd class="count-created">2</dd>' in html
    assert '<dd class="count-existing">0</dd>' in html
    assert '<dd class="count-bad">3</dd>' in html
    assert "<td>3</td><td>P2</td>" in html
    assert "“12345” is not a valid mobile phone number." in html
    assert "<td>4</td><td>P3</td>" in html
    assert "There is no store with the code “XX999”." in html
    assert "<td>5</td><td>P4</td>" in html
    assert "The same phone number is on line 2." in html
    assert reverse("staff:import-errors", args=[member_import.pk]) in html
    assert 'hx-trigger="every 1s"' not in html  # finished: no more polling
    assert AuditEntry.objects.get(action="member.import").actor.email == "admin@example.com"


def test_uploading_the_same_file_again_creates_nothing(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)

    second = ImportRun.objects.order_by("-id").first()
    assert (second.created_count, second.existing_count, second.bad_count) == (0, 2, 3)
    assert Member.objects.filter(enrolment_channel="import").count() == 2
    listing = admin_client.get(URL).content.decode()
    assert listing.count("members.csv</a>") == 2


def test_while_the_import_waits_the_page_shows_progress_and_polls(admin_client):
    # Without the commit callbacks run, the task has not started yet.
    upload(admin_client)
    member_import = ImportRun.objects.get()
    detail = reverse("staff:import-detail", args=[member_import.pk])

    html = admin_client.get(detail, headers={"Accept-Language": "en"}).content.decode()

    assert f'hx-get="{detail}"' in html
    assert 'hx-trigger="every 1s"' in html
    assert '<progress id="import-progress" class="progress" max="5" value="0">' in html
    assert "0 of 5 rows (0%)" in html
    assert f'<a href="{detail}">Refresh</a>' in html  # works without JavaScript too
    assert not Member.objects.filter(enrolment_channel="import").exists()


def test_the_htmx_poll_gets_only_the_status_fragment(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    detail = reverse("staff:import-detail", args=[ImportRun.objects.get().pk])

    response = admin_client.get(detail, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="import-status"')
    assert "<html" not in html
    assert '<dd class="count-created">2</dd>' in html


def test_the_error_report_downloads_as_csv(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    member_import = ImportRun.objects.get()

    response = admin_client.get(
        reverse("staff:import-errors", args=[member_import.pk]),
        headers={"Accept-Language": "en"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeffline,source_id,column,problem\r\n")
    assert "3,P2,phone,“12345” is not a valid mobile phone number.\r\n" in text
    assert "5,P4,phone,The same phone number is on line 2.\r\n" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        ("编号,手机\n1,138\n".encode("gb18030"), "The file is not UTF-8 text."),
        # GBK bytes that are valid UTF-8 too ("卢梅" reads "¬÷"): refused the same way.
        (
            "source_id,phone,name\nG1,13900000001,卢梅\n".encode("gbk"),
            "The file is not UTF-8 text.",
        ),
        ("P1,13812340001,张伟\n".encode(), "The first line must be a header naming the columns"),
        (b"source_id,phone,name\n", "The file has a header but no members below it."),
        (b"PK\x03\x04\x14\x00\x00\x00", "This is not a CSV file."),
    ],
)
def test_a_file_that_is_not_an_importable_csv_gets_a_form_error(admin_client, content, message):
    response = upload(admin_client, content)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html
    assert not ImportRun.objects.exists()
    assert not Member.objects.exists()


def test_an_upload_without_a_file_gets_a_form_error(admin_client):
    response = admin_client.post(URL, {}, headers={"Accept-Language": "en"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


@pytest.mark.parametrize("role", ["store_staff", "store_manager", "marketer", "auditor"])
def test_only_administrators_may_import(client, role_user, role, store):
    client.force_login(role_user(role))
    MemberFactory()

    assert client.get(URL).status_code == 403
    assert upload(client).status_code == 403
    assert not ImportRun.objects.exists()


def test_other_roles_cannot_read_an_import_report_or_its_errors(
    client, role_user, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    member_import = ImportRun.objects.get()
    client.force_login(role_user("store_staff"))

    detail = reverse("staff:import-detail", args=[member_import.pk])
    errors = reverse("staff:import-errors", args=[member_import.pk])
    assert client.get(detail).status_code == 403
    assert client.get(errors).status_code == 403


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_an_unknown_import_is_not_found(admin_client):
    assert admin_client.get(reverse("staff:import-detail", args=[999])).status_code == 404


def test_pages_over_bad_rows_already_stored_still_render(admin_client):
    # Rows an older version wrote, or someone typed in: NUL characters (where the database
    # holds them), huge numbers, params of the wrong shape, a problem code no longer known.
    nul = "\x00" if connection.vendor != "postgresql" else ""
    huge = 2**31 - 1
    done = ImportRun.objects.create(
        kind="members",
        file_name=f"bad{nul}.csv",
        sha256="0" * 64,
        status=ImportRun.Status.DONE,
        total_rows=1,
        processed_rows=huge,
        created_count=huge,
        existing_count=huge,
        bad_count=huge,
        columns=[f"name{nul}", 10**40],
        ignored_columns=[f"x{nul}", 10**40, {"a": 1}],
        failure=f"DataError: {nul}",
    )
    ImportRun.objects.create(
        kind="members", file_name="waiting.csv", sha256="1" * 64, status=ImportRun.Status.RUNNING
    )
    for line, code, params in [
        (huge, "field_count", {"found": 10**40, "expected": 3}),
        (1, "phone_invalid", {"value": f"138{nul}0000"}),
        (2, "name_too_long", {"wrong": "keys"}),
        (3, "email_taken", ["a", "list"]),
        (4, "gender_invalid", "a string"),
        (5, "no_such_code", {}),
    ]:
        ImportRowError.objects.create(
            run=done,
            line=line,
            ref=f"S{nul}{line}",
            column="phone",
            code=code,
            params=params,
        )
    english = {"Accept-Language": "en"}

    listing = admin_client.get(URL, headers=english)
    detail = admin_client.get(reverse("staff:import-detail", args=[done.pk]), headers=english)
    fragment = admin_client.get(
        reverse("staff:import-detail", args=[done.pk]), headers={"HX-Request": "true"}
    )
    errors = admin_client.get(reverse("staff:import-errors", args=[done.pk]), headers=english)
    text = b"".join(errors.streaming_content).decode()

    assert listing.status_code == detail.status_code == fragment.status_code == 200
    assert errors.status_code == 200
    html = detail.content.decode()
    assert f"The line has {10**40} fields but the header has 3." in html
    assert "no_such_code" in html
    assert f"<td>{huge}</td>" in html
    assert "waiting.csv" in listing.content.decode()
    assert text.count("\r\n") == 7  # the header and the six problems
