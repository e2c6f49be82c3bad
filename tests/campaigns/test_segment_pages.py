"""The segment pages: who may build and read, the live preview, saving, the CSV export and
the JSON count."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from campaigns.models import Segment
from members.models import AuditEntry
from tests.conftest import make_role_user

from .segment_population import population

GOLD = {
    "version": 1,
    "rule": {"group": "and", "rules": [{"field": "tier", "op": "eq", "value": "gold"}]},
}
BEIJING_OR_GOLD = {
    "version": 1,
    "rule": {
        "group": "or",
        "rules": [
            {"field": "tier", "op": "eq", "value": "gold"},
            {"field": "city", "op": "eq", "value": "北京"},
        ],
    },
}


@pytest.fixture
def people(db):
    return population()


def login(client, role: str):
    user = make_role_user(role)
    client.force_login(user)
    return user


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Gold members", rules=GOLD)


def test_store_staff_and_strangers_are_kept_out(client, segment):
    list_url = reverse("staff:segments")
    assert client.get(list_url).status_code == 302
    login(client, "store_staff")
    for url in (
        list_url,
        reverse("staff:segment-new"),
        reverse("staff:segment-detail", args=[segment.pk]),
        reverse("staff:segment-export", args=[segment.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post(
            reverse("staff:segment-count-json"), {}, content_type="application/json"
        ).status_code
        == 403
    )


def test_auditors_read_but_do_not_build(client, segment):
    login(client, "auditor")
    page = client.get(reverse("staff:segment-detail", args=[segment.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Gold members" in html
    assert 'data-readonly="true"' in html
    assert "readonly" in html
    # The preview still counts for a reader.
    preview = client.post(
        reverse("staff:segment-preview"),
        {"rules": json.dumps(GOLD), "segment_id": segment.pk},
        HTTP_HX_REQUEST="true",
    )
    assert 'data-count="0"' in preview.content.decode()
    assert client.get(reverse("staff:segment-new")).status_code == 403
    posted = client.post(
        reverse("staff:segment-detail", args=[segment.pk]),
        {"name": "Renamed", "description": "", "rules": json.dumps(GOLD)},
    )
    assert posted.status_code == 403
    segment.refresh_from_db()
    assert segment.name == "Gold members"
    assert client.post(reverse("staff:segment-archive", args=[segment.pk])).status_code == 403


def test_a_marketer_saves_a_segment_and_bad_rules_stay_on_the_page(client, db):
    user = login(client, "marketer")
    new = reverse("staff:segment-new")
    page = client.get(new)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="segment-fields"' in html and 'name="rules"' in html
    assert '<label class="label" for="id_rules">' in html

    empty = {"version": 1, "rule": {"group": "and", "rules": []}}
    refused = client.post(new, {"name": "Nothing", "description": "", "rules": json.dumps(empty)})
    assert refused.status_code == 400
    assert "empty group" in refused.content.decode().lower() or "空" in refused.content.decode()
    not_json = client.post(new, {"name": "Broken", "description": "", "rules": "{"})
    assert not_json.status_code == 400
    assert not Segment.objects.exists()

    saved = client.post(
        new, {"name": "Gold", "description": "gold tier", "rules": json.dumps(GOLD)}
    )
    segment = Segment.objects.get()
    assert saved.status_code == 302
    assert saved["Location"] == reverse("staff:segment-detail", args=[segment.pk])
    assert segment.rules == GOLD
    assert segment.created_by == user
    assert AuditEntry.objects.filter(action="segment.create", target_id=str(segment.pk)).exists()

    # Editing it to contain itself is refused with the message on the page.
    itself = {
        "version": 1,
        "rule": {"group": "and", "rules": [{"field": "segment", "op": "eq", "value": segment.pk}]},
    }
    cycle = client.post(
        reverse("staff:segment-detail", args=[segment.pk]),
        {"name": "Gold", "description": "", "rules": json.dumps(itself)},
    )
    assert cycle.status_code == 400
    assert "field-error" in cycle.content.decode()
    segment.refresh_from_db()
    assert segment.rules == GOLD


def test_the_live_preview_counts_and_shows_masked_phones(client, people):
    login(client, "marketer")
    url = reverse("staff:segment-preview")
    answer = client.post(url, {"rules": json.dumps(BEIJING_OR_GOLD)}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    html = answer.content.decode()
    # a (gold) and b (北京): x is gold too but closed.
    assert 'data-count="2"' in html
    assert people["a"].member_no in html and people["b"].member_no in html
    assert people["x"].member_no not in html
    for who in ("a", "b"):
        phone = people[who].phone.removeprefix("+86")
        assert phone not in html
        assert phone[:3] + "****" + phone[-4:] in html
    # Adding a condition narrows it.
    narrower = json.loads(json.dumps(BEIJING_OR_GOLD))
    narrower["rule"] = {
        "group": "and",
        "rules": [narrower["rule"], {"field": "consent_sms", "op": "eq", "value": True}],
    }
    html = client.post(
        url, {"rules": json.dumps(narrower)}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-count="1"' in html


def test_bad_rules_show_their_message_in_the_preview(client, people):
    login(client, "marketer")
    url = reverse("staff:segment-preview")
    unknown = {
        "version": 1,
        "rule": {"group": "and", "rules": [{"field": "shoe_size", "op": "eq", "value": 1}]},
    }
    answer = client.post(url, {"rules": json.dumps(unknown)}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "segment-error" in html and "shoe_size" in html
    assert (
        "segment-error"
        in client.post(url, {"rules": "not json"}, HTTP_HX_REQUEST="true").content.decode()
    )
    # Without JavaScript the whole page comes back with the figures.
    whole = client.post(url, {"name": "x", "rules": json.dumps(GOLD)})
    assert whole.status_code == 200
    assert 'data-count="1"' in whole.content.decode()
    assert "<html" in whole.content.decode()


def test_export_streams_the_members_with_masked_phones_and_is_audited(client, people):
    user = login(client, "marketer")
    segment = Segment.objects.create(name="Gold or Beijing", rules=BEIJING_OR_GOLD)
    answer = client.get(reverse("staff:segment-export", args=[segment.pk]))
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    text = b"".join(answer.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3
    by_number = {row[0]: row for row in rows[1:]}
    a, b = people["a"], people["b"]
    assert set(by_number) == {a.member_no, b.member_no}
    phone = a.phone.removeprefix("+86")
    assert by_number[a.member_no][2] == phone[:3] + "****" + phone[-4:]
    assert phone not in text
    # Tier, stage, RFM cell, churn band, last purchase.
    assert by_number[a.member_no][7] == "2026-07-10"
    assert by_number[b.member_no][7] == "2026-02-01"
    assert by_number[a.member_no][3] in ("金卡会员", "Gold")
    assert by_number[b.member_no][6] in ("低风险", "Low risk")
    entry = AuditEntry.objects.get(action="segment.export")
    assert entry.actor == user and entry.target_id == str(segment.pk)


def test_count_json_answers_or_explains(client, people):
    login(client, "auditor")
    url = reverse("staff:segment-count-json")
    answer = client.post(url, {"rules": BEIJING_OR_GOLD}, content_type="application/json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 2
    # a: SMS consent and a login; b: e-mail consent.
    assert body["funnel"]["reachable_sms"] == 1
    assert body["funnel"]["reachable_email"] == 1
    assert body["funnel"]["reachable"] == 2

    def error(payload, *, raw: str | None = None) -> dict:
        data = raw if raw is not None else json.dumps(payload)
        reply = client.post(url, data, content_type="application/json")
        assert reply.status_code == 400
        return reply.json()

    assert error(None, raw="{nope")["error"] == "bad_json"
    assert error([1, 2])["error"] == "bad_rules"
    assert error({"rules": {"version": 9, "rule": {}}})["error"] == "bad_version"
    unknown = error(
        {"rules": {"version": 1, "rule": {"group": "and", "rules": [{"field": "x", "op": "eq"}]}}}
    )
    assert unknown["error"] == "unknown_field" and unknown["detail"]
    assert (
        error({"rules": {"version": 1, "rule": {"group": "or", "rules": []}}})["error"]
        == "empty_group"
    )
    assert error({"rules": GOLD, "holdout_percent": 80})["error"] == "bad_holdout"
    assert error({"rules": GOLD, "channels": [["sms"]]})["error"] == "bad_channels"
    assert error({"rules": GOLD, "channels": "sms"})["error"] == "bad_channels"


def test_the_list_shows_segments_and_their_counts(client, people):
    login(client, "marketer")
    segment = Segment.objects.create(name="Gold or Beijing", rules=BEIJING_OR_GOLD)
    page = client.get(reverse("staff:segments"))
    assert page.status_code == 200
    assert "Gold or Beijing" in page.content.decode()
    count = client.get(reverse("staff:segment-count", args=[segment.pk]), HTTP_HX_REQUEST="true")
    assert count.content.decode().strip().endswith('<span class="segment-count">2</span>')


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_preview_reads_in_one_language(client, people, language):
    from django.conf import settings

    from tests.test_page_languages import leftovers

    login(client, "marketer")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    html = client.post(
        reverse("staff:segment-preview"),
        {"rules": json.dumps(BEIJING_OR_GOLD)},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-count="2"' in html
    names = [people[who].name for who in ("a", "b")]
    assert leftovers(html, language=language, entered=names) == []
