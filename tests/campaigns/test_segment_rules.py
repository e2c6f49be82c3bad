"""Rules that cannot be used are refused with a code and a message; good ones come back
normalised; a segment never contains itself, however far round."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Segment
from campaigns.segments import (
    SegmentRuleError,
    segment_archive,
    segment_count,
    segment_create,
    segment_rules_validate,
    segment_update,
)
from campaigns.segments.rules import MAX_DEPTH
from members.models import AuditEntry


def rules(*conditions, group: str = "and") -> dict:
    return {"version": 1, "rule": {"group": group, "rules": list(conditions)}}


def refused(code: str, value: object, **kwargs) -> SegmentRuleError:
    with pytest.raises(SegmentRuleError) as caught:
        segment_rules_validate(rules=value, **kwargs)
    assert caught.value.code == code, caught.value.detail
    assert caught.value.detail
    return caught.value


@pytest.mark.django_db
def test_each_problem_has_its_code():
    refused("bad_rules", [])
    refused("bad_version", {"version": 2, "rule": {"group": "and", "rules": []}})
    refused("bad_version", {"rule": {"group": "and", "rules": []}})
    refused("bad_rules", {"version": 1, "rule": {"group": "xor", "rules": []}})
    refused("empty_group", rules())
    refused("empty_group", rules({"group": "or", "rules": []}))
    error = refused("unknown_field", rules({"field": "shoe_size", "op": "eq", "value": 42}))
    assert "shoe_size" in error.detail
    refused("bad_operator", rules({"field": "tier", "op": "between", "value": ["a", "b"]}))
    refused("bad_operator", rules({"field": "consent_sms", "op": "ne", "value": True}))
    refused("bad_value", rules({"field": "age", "op": "ge", "value": "old"}))
    refused("bad_value", rules({"field": "age", "op": "ge", "value": True}))
    refused("bad_value", rules({"field": "age", "op": "between", "value": [40, 30]}))
    refused("bad_value", rules({"field": "tier", "op": "eq", "value": "bronze"}))
    refused("bad_value", rules({"field": "tier", "op": "in", "value": "gold"}))
    refused("bad_value", rules({"field": "tier", "op": "in", "value": []}))
    refused("bad_value", rules({"field": "birthday_month", "op": "eq", "value": 13}))
    refused("bad_value", rules({"field": "enrolled_on", "op": "eq", "value": "2026-02-30"}))
    refused("bad_value", rules({"field": "net_spend", "op": "gt", "value": "lots", "days": 30}))
    refused("bad_value", rules({"field": "home_store", "op": "eq", "value": 999999}))
    refused("bad_value", rules({"field": "segment", "op": "eq", "value": 999999}))
    # Ages and day counts stay within the calendar; so do dates.
    refused("bad_value", rules({"field": "age", "op": "ge", "value": 10**6}))
    refused("bad_value", rules({"field": "days_since_purchase", "op": "gt", "value": 10**9}))
    refused("bad_value", rules({"field": "enrolled_on", "op": "le", "value": "9999-12-31"}))
    # A windowed field needs its days; others take none.
    refused("bad_value", rules({"field": "purchase_count", "op": "gt", "value": 1}))
    refused("bad_value", rules({"field": "purchase_count", "op": "gt", "value": 1, "days": 0}))
    refused("bad_value", rules({"field": "age", "op": "gt", "value": 1, "days": 30}))


@pytest.mark.django_db
def test_too_deep():
    tree: dict = {"field": "age", "op": "ge", "value": 18}
    for _ in range(MAX_DEPTH):
        tree = {"group": "and", "rules": [tree]}
    segment_rules_validate(rules={"version": 1, "rule": tree})
    refused("too_deep", {"version": 1, "rule": {"group": "not", "rules": [tree]}})


@pytest.mark.django_db
def test_good_rules_come_back_normalised():
    checked = segment_rules_validate(
        rules=rules(
            {"field": "age", "op": "between", "value": ["18", 30], "extra": 1},
            {"field": "net_spend", "op": "ge", "value": 100, "days": "90"},
            {"field": "city", "op": "in", "value": [" 上海", "上海", "北京"]},
            {"field": "gender", "op": "is_empty", "value": "ignored"},
        )
    )
    assert checked["rule"]["rules"] == [
        {"field": "age", "op": "between", "value": [18, 30]},
        {"field": "net_spend", "op": "ge", "value": "100.00", "days": 90},
        {"field": "city", "op": "in", "value": ["上海", "北京"]},
        {"field": "gender", "op": "is_empty"},
    ]


def _in(segment: Segment) -> dict:
    return rules({"field": "segment", "op": "eq", "value": segment.pk})


@pytest.mark.django_db
def test_a_segment_cannot_contain_itself(django_user_model):
    gold = segment_create(
        actor=None,
        name="Gold",
        description="",
        rules=rules({"field": "tier", "op": "eq", "value": "gold"}),
    )
    uses_gold = segment_create(actor=None, name="Uses gold", description="", rules=_in(gold))
    # Directly, and through another segment.
    with pytest.raises(SegmentRuleError) as direct:
        segment_update(segment=gold, actor=None, name="Gold", description="", rules=_in(gold))
    assert direct.value.code == "cycle"
    with pytest.raises(SegmentRuleError) as round_about:
        segment_update(segment=gold, actor=None, name="Gold", description="", rules=_in(uses_gold))
    assert round_about.value.code == "cycle"
    gold.refresh_from_db()
    assert gold.rules["rule"]["rules"][0]["field"] == "tier"
    # A new segment may use both: no cycle.
    segment_rules_validate(
        rules=rules(
            {"field": "segment", "op": "eq", "value": gold.pk},
            {"field": "segment", "op": "ne", "value": uses_gold.pk},
        )
    )


@pytest.mark.django_db
def test_services_validate_before_writing():
    with pytest.raises(SegmentRuleError):
        segment_create(actor=None, name="Bad", description="", rules=rules())
    with pytest.raises(SegmentRuleError) as no_name:
        segment_create(
            actor=None,
            name="  ",
            description="",
            rules=rules({"field": "age", "op": "ge", "value": 1}),
        )
    assert no_name.value.code == "bad_name"
    assert not Segment.objects.exists()


@pytest.mark.django_db
def test_rules_that_use_an_archived_segment_keep_working():
    gold = segment_create(
        actor=None,
        name="Gold",
        description="",
        rules=rules({"field": "tier", "op": "eq", "value": "gold"}),
    )
    user = segment_create(actor=None, name="Uses gold", description="", rules=_in(gold))
    segment_archive(segment=gold, actor=None)
    gold.refresh_from_db()
    assert gold.is_archived
    assert segment_count(rules=user.rules, at=timezone.now()) == 0
    assert AuditEntry.objects.filter(action="segment.archive", target_id=str(gold.pk)).count() == 1
