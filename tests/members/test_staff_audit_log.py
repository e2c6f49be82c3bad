"""Auditors and administrators browse and filter the audit log."""

from __future__ import annotations

import ast
import csv
import datetime
import io
import pathlib
import re

import pytest
import time_machine
from django.urls import reverse

from members.models import AuditEntry
from members.services import audit_log
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

AUDIT_URL = "/staff/audit/"
UTC = datetime.UTC


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def auditor_client(client, role_user):
    client.force_login(role_user("auditor", email="auditor@example.com"))
    return client


def page(response) -> str:
    return response.content.decode()


def rows(html: str) -> list[str]:
    table = html.split('<table class="audit-log">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)


def log_at(when: datetime.datetime, **kwargs) -> AuditEntry:
    with time_machine.travel(when, tick=False):
        return audit_log(**kwargs)


# --- who may read it ---------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(AUDIT_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["store_staff", "store_manager", "marketer"])
def test_roles_other_than_auditor_and_administrator_cannot_read_it(client, role_user, role):
    client.force_login(role_user(role))
    assert client.get(AUDIT_URL).status_code == 403


@pytest.mark.parametrize("role", ["auditor", "administrator"])
def test_auditors_and_administrators_can_read_it(client, role_user, role):
    client.force_login(role_user(role))
    assert client.get(AUDIT_URL).status_code == 200


# --- what it shows -----------------------------------------------------------------------


def test_entries_show_newest_first_in_shanghai_time_with_readable_actions(auditor_client):
    cashier = UserFactory(email="cashier@example.com")
    member = MemberFactory(name="张伟")
    log_at(
        datetime.datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
        actor=cashier,
        action="member.enrol",
        target=member,
        member=member,
        details={"channel": "store", "store": "SH001"},
    )
    # 16:30 UTC is already the next morning in Shanghai.
    log_at(
        datetime.datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
        actor=cashier,
        action="member.reveal_phone",
        target=member,
        member=member,
    )
    html = page(auditor_client.get(AUDIT_URL))
    newest, oldest = rows(html)
    assert "2026-03-02 00:30:00" in newest
    assert "Full phone number shown" in newest
    assert "2026-03-01 10:00:00" in oldest
    assert "Member enrolled" in oldest
    assert "cashier@example.com" in oldest
    assert f"member {member.pk}" in oldest
    assert f'href="{reverse("staff:member-detail", args=[member.member_no])}"' in oldest
    assert "<dt>Channel</dt><dd>Store</dd>" in oldest  # the choice, not the code
    assert "<dt>Store</dt><dd>SH001</dd>" in oldest


def test_details_read_as_labels_and_words_not_keys_and_true(auditor_client, settings):
    member = MemberFactory(name="张伟")
    audit_log(
        actor=None,
        action="member.consent",
        target=member,
        member=member,
        details={"kind": "sms", "granted": True, "source": "portal"},
    )
    audit_log(
        actor=None,
        action="member.update_profile",
        target=member,
        member=member,
        details={"fields": ["name", "home_store"], "something_new": None},
    )
    profile, consent = rows(page(auditor_client.get(AUDIT_URL)))
    assert "<dt>Granted</dt><dd>Yes</dd>" in consent
    assert "<dt>Source</dt><dd>Member portal</dd>" in consent
    assert "True" not in consent
    assert "<dt>Fields</dt><dd>Name, Home store</dd>" in profile
    # A key nobody labelled shows as itself.
    assert "<dt>something_new</dt><dd>—</dd>" in profile
    assert "None" not in profile

    auditor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    profile, consent = rows(page(auditor_client.get(AUDIT_URL)))
    assert "<dt>已授权</dt><dd>是</dd>" in consent


def test_an_action_without_a_label_shows_its_code(auditor_client):
    audit_log(actor=None, action="something.new", actor_label="nightly job")
    (row,) = rows(page(auditor_client.get(AUDIT_URL)))
    assert "something.new" in row
    assert "nightly job" in row


# --- filters -----------------------------------------------------------------------------


@pytest.fixture
def history(db):
    wang = UserFactory(email="wang@example.com")
    li = UserFactory(email="li@example.com")
    first, second = MemberFactory(), MemberFactory()
    log_at(
        datetime.datetime(2026, 3, 1, 2, tzinfo=UTC),
        actor=wang,
        action="member.enrol",
        target=first,
        member=first,
    )
    log_at(
        datetime.datetime(2026, 3, 5, 2, tzinfo=UTC),
        actor=li,
        action="member.enrol",
        target=second,
        member=second,
    )
    log_at(
        datetime.datetime(2026, 3, 9, 2, tzinfo=UTC),
        actor=li,
        action="member.reveal_phone",
        target=first,
        member=first,
    )
    return {"first": first, "second": second}


def test_the_action_filter_offers_the_known_actions(auditor_client):
    html = page(auditor_client.get(AUDIT_URL))
    select = re.search(r'<select name="action".*?</select>', html, re.S).group(0)
    assert '<option value="member.reveal_phone">Full phone number shown</option>' in select
    assert '<option value="" selected>All actions</option>' in select


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "member.enrol"}, ["2026-03-05", "2026-03-01"]),
        ({"actor": "LI@"}, ["2026-03-09", "2026-03-05"]),
        ({"since": "2026-03-05"}, ["2026-03-09", "2026-03-05"]),
        ({"until": "2026-03-05"}, ["2026-03-05", "2026-03-01"]),
        ({"since": "2026-03-02", "until": "2026-03-08"}, ["2026-03-05"]),
        ({"action": "member.reveal_phone", "actor": "wang"}, []),
    ],
)
def test_filters_narrow_the_log(auditor_client, history, query, expected):
    html = page(auditor_client.get(AUDIT_URL, query))
    if not expected:
        assert "No audit entries match these filters." in html
        return
    found = re.findall(r"(\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}", "".join(rows(html)))
    assert found == expected


def test_the_member_number_filter_shows_one_members_entries(auditor_client, history):
    first = history["first"]
    html = page(auditor_client.get(AUDIT_URL, {"member_no": first.member_no}))
    assert len(rows(html)) == 2
    assert history["second"].member_no not in "".join(rows(html))


def test_dates_are_shanghai_dates(auditor_client):
    log_at(datetime.datetime(2026, 3, 1, 16, 30, tzinfo=UTC), actor=None, action="store.create")
    assert len(rows(page(auditor_client.get(AUDIT_URL, {"since": "2026-03-02"})))) == 1
    html = page(auditor_client.get(AUDIT_URL, {"until": "2026-03-01"}))
    assert "No audit entries match these filters." in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"since": "2026-02-30"}, "since", "Enter a valid date."),
        ({"until": "yesterday"}, "until", "Enter a valid date."),
        ({"since": "2026-03-09", "until": "2026-03-01"}, "until", "before the start date"),
        ({"member_no": "812345678902"}, "member_no", "check digit wrong"),
        ({"action": "drop.table"}, "action", "Select a valid choice."),
    ],
)
def test_bad_filters_get_a_message_not_an_error_page(
    auditor_client, history, query, field, message
):
    response = auditor_client.get(AUDIT_URL, query)
    html = page(response)
    assert response.status_code == 400
    error = re.search(
        rf'<label for="id_{field}".*?<div class="field-error" role="alert">(.*?)</div>', html, re.S
    )
    assert error, html
    assert message in error.group(1)
    assert '<table class="audit-log">' not in html


# --- pages -------------------------------------------------------------------------------


def test_the_log_shows_fifty_entries_a_page_and_pages_keep_the_filters(auditor_client):
    start = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    for minute in range(120):
        log_at(start + datetime.timedelta(minutes=minute), actor=None, action="store.create")
    log_at(start, actor=None, action="user.create")

    first_page = page(auditor_client.get(AUDIT_URL, {"action": "store.create"}))
    assert len(rows(first_page)) == 50
    assert "Page 1 of 3" in first_page
    assert "2026-01-01 09:59:00" in rows(first_page)[0]  # 08:00 Shanghai + 119 minutes
    assert 'href="?action=store.create&amp;page=2"' in first_page

    last_page = page(auditor_client.get(AUDIT_URL, {"action": "store.create", "page": "3"}))
    assert len(rows(last_page)) == 20
    assert "2026-01-01 08:00:00" in rows(last_page)[-1]
    assert 'href="?action=store.create&amp;page=2"' in last_page

    # A page number past the end or not a number shows a real page, not an error.
    assert auditor_client.get(AUDIT_URL, {"page": "99"}).status_code == 200
    assert auditor_client.get(AUDIT_URL, {"page": "x"}).status_code == 200


def test_a_full_page_takes_a_fixed_number_of_queries(auditor_client, django_assert_max_num_queries):
    members = [MemberFactory() for _ in range(5)]
    for index in range(60):
        audit_log(actor=None, action="member.enrol", member=members[index % 5])
    auditor_client.get(AUDIT_URL)  # the configuration each process keeps, read once
    # Session, user, permissions (2), count, the page with its members.
    with django_assert_max_num_queries(6):
        html = page(auditor_client.get(AUDIT_URL))
    assert len(rows(html)) == 50


# --- CSV export --------------------------------------------------------------------------

CSV_URL = "/staff/audit/export.csv"


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # so Excel reads the Chinese right
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_log_exports_as_csv_with_its_filters(auditor_client, history):
    html = page(auditor_client.get(AUDIT_URL, {"action": "member.enrol"}))
    assert f'href="{CSV_URL}?action=member.enrol"' in html

    response = auditor_client.get(CSV_URL, {"action": "member.enrol"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, *lines = csv_rows(response)
    assert header == ["Time", "Actor", "Action", "Target", "Member", "Details"]
    assert [line[0][:10] for line in lines] == ["2026-03-05", "2026-03-01"]
    assert lines[0][2] == "Member enrolled"
    assert lines[0][4] == history["second"].member_no


def test_csv_cells_that_look_like_formulas_are_made_text(auditor_client):
    for label in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "ok"):
        audit_log(actor=None, action="store.create", actor_label=label, details={"name": "=1+1"})
    _header, *lines = csv_rows(auditor_client.get(CSV_URL))
    actors = sorted(line[1] for line in lines)
    assert actors == sorted(
        ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "ok"]
    )
    assert all(line[5] == "Name: =1+1" for line in lines)  # not at the start: harmless


def test_the_csv_is_in_the_readers_language(auditor_client, settings):
    audit_log(actor=None, action="store.create", details={"code": "SH001"})
    auditor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    header, line = csv_rows(auditor_client.get(CSV_URL))
    assert header[0] == "时间"
    assert line[2] == "已创建门店"
    assert line[5] == "代码: SH001"


def test_the_csv_export_needs_the_audit_permission(client, role_user):
    client.force_login(role_user("store_staff"))
    assert client.get(CSV_URL).status_code == 403


def test_bad_filters_on_the_export_show_the_form_not_a_file(auditor_client):
    response = auditor_client.get(CSV_URL, {"since": "2026-02-30"})
    assert response.status_code == 400
    assert "Enter a valid date." in page(response)


def test_the_audit_log_has_no_inline_styles_or_scripts(auditor_client, history):
    html = page(auditor_client.get(AUDIT_URL))
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


# --- every action and details key the services write has a label --------------------------

APPS = ("core", "members", "tiers", "points", "analytics", "campaigns")


def _audit_log_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for app in APPS:
        for path in sorted(pathlib.Path(app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                # audit_log(...), or the import framework's hooks.audit(...) (core).
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", "") or getattr(node.func, "attr", "")
                if name in ("audit_log", "audit"):
                    calls.append((str(path), node.lineno, node))
    return calls


def _written_actions_and_keys() -> tuple[dict[str, str], dict[str, str]]:
    """Each action (an f-string's kinds filled in) and each literal details key that an
    audit_log call in the apps writes, with where."""
    from core.imports import import_kinds

    actions, keys = {}, {}
    for path, line, call in _audit_log_calls():
        where = f"{path}:{line}"
        arguments = {keyword.arg: keyword.value for keyword in call.keywords}
        action = arguments.get("action")
        if isinstance(action, ast.Constant):
            actions[action.value] = where
        elif action is not None and ast.unparse(action) == "kind.audit_action":
            for kind in import_kinds():
                actions[kind.audit_action] = where
        for node in ast.walk(arguments.get("details", ast.Constant(None))):
            if isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant):
                        keys[key.value] = where
    return actions, keys


def test_every_action_and_details_key_written_has_a_label_in_both_languages():
    from django.utils import translation

    from members.selectors import audit_action_label, audit_detail_label

    actions, keys = _written_actions_and_keys()
    assert "points.adjust" in actions and "authority" in keys  # the scan finds the services
    for language in ("en", "zh-hans"):
        with translation.override(language):
            unlabelled = {a: w for a, w in actions.items() if str(audit_action_label(a)) == a}
            assert unlabelled == {}, language
            unlabelled = {k: w for k, w in keys.items() if str(audit_detail_label(k)) == k}
            assert unlabelled == {}, language


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                ("Points", "2"),
                ("Reason", "goodwill"),
                ("Authority", "Store staff"),
                ("Limit (points)", "500"),
                ("Adjustment", "7"),
            ],
        ),
        (
            "zh-hans",
            [
                ("积分", "2"),
                ("原因", "goodwill"),
                ("权限", "店员"),
                ("上限（积分）", "500"),
                ("调整单", "7"),
            ],
        ),
    ],
)
def test_a_points_adjustment_reads_as_labels_on_the_page_and_in_the_csv(
    auditor_client, settings, language, expected
):
    member = MemberFactory()
    audit_log(
        actor=None,
        action="points.adjust",
        member=member,
        details={
            "points": 2,
            "reason": "goodwill",
            "authority": "staff",
            "limit": 500,
            "adjustment": 7,
        },
    )
    auditor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    (row,) = rows(page(auditor_client.get(AUDIT_URL)))
    _header, line = csv_rows(auditor_client.get(CSV_URL))

    for label, value in expected:
        assert f"<dt>{label}</dt><dd>{value}</dd>" in row
    # In any order: PostgreSQL's jsonb keeps its own order of keys.
    assert sorted(line[5].split("; ")) == sorted(f"{label}: {value}" for label, value in expected)
    for key in ("authority", "limit", "adjustment"):
        assert f"<dt>{key}</dt>" not in row and key not in line[5]
    assert "<dd>staff</dd>" not in row


@pytest.mark.parametrize(
    ("language", "details"), [("en", "Job: Ledger reconcile"), ("zh-hans", "任务: 账本对账")]
)
def test_a_job_run_again_is_named_by_its_title_not_its_code(
    auditor_client, settings, language, details
):
    audit_log(actor=None, action="job.rerun", details={"job": "reconcile"})
    auditor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    (row,) = rows(page(auditor_client.get(AUDIT_URL)))
    _header, line = csv_rows(auditor_client.get(CSV_URL))

    label, title = details.split(": ")
    assert f"<dt>{label}</dt><dd>{title}</dd>" in row
    assert line[5] == details


@pytest.mark.parametrize(
    ("language", "actor"),
    [("en", "API token hyl_iMct (SH001)"), ("zh-hans", "API 令牌 hyl_iMct（SH001）")],
)
def test_an_api_tokens_entries_name_it_in_the_readers_language(
    auditor_client, settings, language, actor
):
    from members.services import api_token_label
    from tests.factories import StoreFactory

    store = StoreFactory(code="SH001")
    token = type("Token", (), {"prefix": "hyl_iMct", "store": store})()
    member = MemberFactory()
    audit_log(
        actor=None, action="member.enrol", member=member, actor_label=api_token_label(token=token)
    )
    auditor_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    (row,) = rows(page(auditor_client.get(AUDIT_URL)))
    _header, line = csv_rows(auditor_client.get(CSV_URL))

    assert f'<td data-label="{"Actor" if language == "en" else "操作人"}">{actor}</td>' in row
    assert line[1] == actor
    if language == "zh-hans":
        assert "API token" not in row and "API token" not in line[1]
    # The entry keeps the English label: the actor filter finds it in any language.
    assert AuditEntry.objects.get().actor_label == "API token hyl_iMct (SH001)"
    assert len(rows(page(auditor_client.get(AUDIT_URL, {"actor": "API token hyl_"})))) == 1
