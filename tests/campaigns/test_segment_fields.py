"""Worked examples for every segment field and operator on the population of
segment_population.py (its docstring has the table the answers below are read from)."""

from __future__ import annotations

import pytest
from django.db import connection

from analytics.models import MemberFigures
from campaigns.models import Segment
from campaigns.segments import segment_count, segment_members_sql

from .segment_population import NOW, population

ACTIVE = {"a", "b", "c", "n", "e"}


@pytest.fixture
def people(db):
    return population()


def matching(people, rule: dict) -> set[str]:
    """The population's names the rule (a condition or a group) matches, and the count
    agrees with the rows."""
    tree = rule if "group" in rule else {"group": "and", "rules": [rule]}
    rules = {"version": 1, "rule": tree}
    sql, params = segment_members_sql(rules=rules, at=NOW)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    assert len(ids) == len(set(ids)), "one row per member"
    assert segment_count(rules=rules, at=NOW) == len(ids)
    names = {name for name, m in people.items() if name in ACTIVE | {"x", "z"} and m.pk in ids}
    assert len(names) == len(ids), "only population members"
    return names


def cond(field: str, op: str, value=None, days=None) -> dict:
    out = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    if days is not None:
        out["days"] = days
    return out


def check(people, field: str, cases: list[tuple]) -> None:
    for case in cases:
        *args, expected = case
        assert matching(people, cond(field, *args)) == set(expected), (field, args)


def test_closed_and_frozen_members_are_never_targeted(people):
    # x is gold and bought apparel; z consented to SMS: neither can be targeted.
    assert matching(people, cond("days_since_enrolment", "ge", 0)) == ACTIVE
    assert matching(people, cond("consent_sms", "eq", True)) == {"a"}


def test_a_closed_members_figures_row_is_not_targeted(people):
    # x closed after last night's figures were written: the row still counts the purchase
    # of 10 July, and a rule over the figures alone must still leave x out.
    assert MemberFigures.objects.get(member=people["x"]).orders_30 == 1
    assert matching(people, cond("purchase_count", "ge", 1, 30)) == {"a"}
    assert matching(people, cond("stage", "eq", "active")) == {"a"}


def test_tier_compares_by_the_ladder(people):
    check(
        people,
        "tier",
        [
            ("eq", "gold", "a"),
            ("ne", "gold", "bcne"),
            ("in", ["silver", "gold"], "ab"),
            ("not_in", ["regular"], "ab"),
            ("ge", "silver", "ab"),
            ("gt", "silver", "a"),
            ("le", "silver", "bcne"),
            # Members without a tier row are at the base level.
            ("lt", "silver", "cne"),
        ],
    )


def test_lifecycle_stage_with_no_figures_row_is_never(people):
    check(
        people,
        "stage",
        [
            ("eq", "never", "ne"),
            ("ne", "active", "bcne"),
            ("in", ["silent", "churned"], "bc"),
            ("not_in", ["never"], "abc"),
        ],
    )


def test_rfm_cell(people):
    check(
        people,
        "rfm_cell",
        [
            ("eq", "champions", "a"),
            ("ne", "champions", "bcne"),
            ("in", ["at_risk", "hibernating"], "bc"),
            ("not_in", ["champions"], "bcne"),
            ("is_empty", None, "ne"),
        ],
    )


def test_churn_band(people):
    check(
        people,
        "churn_band",
        [
            ("eq", "high", "a"),
            ("ne", "high", "bcne"),
            ("in", ["low", "medium"], "bc"),
            ("not_in", ["high", "low"], "cne"),
            ("is_empty", None, "ne"),
        ],
    )


def test_days_since_the_last_purchase_counts_business_days(people):
    # a: 10 July → 5 days; b: 1 February → 164; c: 20 July 2025 → 360; n, e: none.
    check(
        people,
        "days_since_purchase",
        [
            ("eq", 5, "a"),
            ("ne", 5, "bcne"),
            ("lt", 5, ""),
            ("le", 5, "a"),
            ("le", 4, ""),
            ("gt", 5, "bc"),
            ("gt", 164, "c"),
            ("ge", 164, "bc"),
            ("between", [5, 164], "ab"),
            ("is_empty", None, "ne"),
        ],
    )


def test_purchase_count_from_the_figures_windows(people):
    # 30 days (15 June – 14 July): a 1. 90 days: a 2. e bought today: not in the figures.
    check(
        people,
        "purchase_count",
        [
            ("eq", 1, 30, "a"),
            ("ne", 1, 30, "bcne"),
            ("lt", 1, 30, "bcne"),
            ("le", 0, 30, "bcne"),
            ("gt", 0, 30, "a"),
            ("ge", 1, 30, "a"),
            ("between", [0, 0], 30, "bcne"),
            ("ge", 2, 90, "a"),
            ("eq", 1, 365, "bc"),
        ],
    )


def test_purchase_count_over_other_windows_counts_purchases(people):
    # 60 days (16 May – 14 July): a 1 (10 July); today's purchase of e is not in it.
    # 200 days (27 Dec 2025 – 14 July): a 2, b 1; c's July 2025 purchase is older.
    check(
        people,
        "purchase_count",
        [
            ("eq", 1, 60, "a"),
            ("lt", 1, 60, "bcne"),
            ("ge", 1, 60, "a"),
            ("between", [1, 2], 200, "ab"),
            ("eq", 0, 200, "cne"),
            ("gt", 1, 200, "a"),
            ("ne", 2, 200, "bcne"),
            ("le", 1, 200, "bcne"),
            # Counted only up to one past the number compared with: a's 2 is not 1, not < 2.
            ("eq", 1, 200, "b"),
            ("lt", 2, 200, "bcne"),
        ],
    )


def test_net_spend_from_the_figures_is_net_of_returns(people):
    # 30 days: a ¥300; b −¥200 (the ¥200 return of 1 July, for a February purchase).
    check(
        people,
        "net_spend",
        [
            ("lt", "0", 30, "b"),
            ("ge", "300", 30, "a"),
            ("eq", "0", 30, "cne"),
            ("between", ["-200", "0"], 30, "bcne"),
            ("ne", "0", 30, "ab"),
            ("gt", "0", 30, "a"),
            ("le", "0", 30, "bcne"),
            # 365 days: a 400, b 500 − 200 = 300, c 80.
            ("gt", "100", 365, "ab"),
        ],
    )


def test_net_spend_over_other_windows_adds_purchases_less_returns(people):
    check(
        people,
        "net_spend",
        [
            ("lt", "0", 60, "b"),
            ("ge", "300", 60, "a"),
            ("eq", "0", 60, "cne"),
            ("le", "0", 60, "bcne"),
            ("between", ["300", "400"], 200, "ab"),
            ("ne", "300", 200, "acne"),
        ],
    )


def test_categories_bought_in_the_last_n_days(people):
    check(
        people,
        "categories_bought",
        [
            ("in", ["apparel"], 30, "a"),
            ("not_in", ["apparel"], 30, "bcne"),
            ("in", ["food"], 30, ""),
            ("in", ["food"], 90, "a"),
            ("in", ["shoes", "toys"], 365, "c"),
        ],
    )


def test_stores_bought_at_ever_or_in_the_last_n_days(people):
    s1, s2 = people["s1"].pk, people["s2"].pk
    check(
        people,
        "stores_bought_at",
        [
            ("in", [s1], "ace"),
            ("in", [s1], 30, "a"),
            ("not_in", [s2], "cne"),
            ("in", [s2], 90, "a"),
            ("in", [s1, s2], 200, "ab"),
        ],
    )


def test_balance_is_the_points_account_now(people):
    # a 100 + 600 (¥300 in the birthday month, doubled), b 500 − 200 reversed, c 80, e 50.
    check(
        people,
        "balance",
        [
            ("eq", 300, "b"),
            ("ne", 300, "acne"),
            ("lt", 80, "ne"),
            ("le", 80, "cne"),
            ("gt", 300, "a"),
            ("ge", 300, "ab"),
            ("between", [50, 300], "bce"),
        ],
    )


def test_points_expiring_within_n_days(people):
    # c's 80 points expire at the end of July: 1 August 00:00 is day 18 counting today.
    # 30 days read last night's figures; other windows add up the open lots now.
    check(
        people,
        "points_expiring",
        [
            ("ge", 80, 18, "c"),
            ("ge", 1, 17, ""),
            ("eq", 0, 30, "abne"),
            ("gt", 0, 30, "c"),
            ("between", [1, 100], 30, "c"),
            ("lt", 100, 30, "abcne"),
            ("ne", 80, 30, "abne"),
            ("le", 0, 30, "abne"),
            ("eq", 0, 31, "abne"),
            ("lt", 81, 31, "abcne"),
        ],
    )


def test_birthday_month_with_this_month_in_shanghai(people):
    check(
        people,
        "birthday_month",
        [
            ("eq", 7, "an"),
            ("eq", "this", "an"),
            ("eq", "next", ""),
            ("in", [3, 7], "abn"),
            ("ne", 7, "bce"),
            ("not_in", [3], "acne"),
            ("is_empty", None, "ce"),
        ],
    )


def test_age_on_todays_date(people):
    # a (20 July 1990) is 35 until Monday; b 66; n turns 18 today.
    check(
        people,
        "age",
        [
            ("eq", 18, "n"),
            ("lt", 18, ""),
            ("ge", 18, "abn"),
            ("gt", 18, "ab"),
            ("lt", 36, "an"),
            ("le", 35, "an"),
            ("between", [35, 66], "ab"),
            ("ne", 35, "bcne"),
            ("is_empty", None, "ce"),
        ],
    )


def test_gender(people):
    check(
        people,
        "gender",
        [
            ("eq", "F", "a"),
            ("ne", "F", "bcne"),
            ("in", ["F", "M"], "ab"),
            ("not_in", ["M"], "acne"),
            ("is_empty", None, "cne"),
        ],
    )


def test_city(people):
    check(
        people,
        "city",
        [
            ("eq", "上海", "a"),
            ("ne", "上海", "bcne"),
            ("in", ["上海", "北京"], "ab"),
            ("not_in", ["北京"], "acne"),
            ("is_empty", None, "cne"),
        ],
    )


def test_enrolment_date_by_business_day(people):
    check(
        people,
        "enrolled_on",
        [
            ("eq", "2024-01-01", "cn"),
            ("ne", "2024-01-01", "abe"),
            ("lt", "2025-01-01", "cn"),
            ("le", "2025-01-01", "acn"),
            ("gt", "2025-01-01", "be"),
            ("ge", "2026-06-01", "be"),
            ("between", ["2025-01-01", "2026-06-01"], "ab"),
        ],
    )


def test_days_since_enrolment(people):
    # a 560 days, b 44, c and n 926, e enrolled today: 0.
    check(
        people,
        "days_since_enrolment",
        [
            ("eq", 0, "e"),
            ("lt", 44, "e"),
            ("le", 44, "be"),
            ("gt", 44, "acn"),
            ("ge", 560, "acn"),
            ("between", [1, 560], "ab"),
            ("ne", 0, "abcn"),
        ],
    )


def test_enrolment_channel(people):
    check(
        people,
        "enrolment_channel",
        [
            ("eq", "online", "b"),
            ("ne", "online", "acne"),
            ("in", ["online", "app"], "b"),
            ("not_in", ["online"], "acne"),
        ],
    )


def test_home_store(people):
    s1, s2 = people["s1"].pk, people["s2"].pk
    check(
        people,
        "home_store",
        [
            ("eq", s1, "a"),
            ("ne", s1, "bcne"),
            ("in", [s1, s2], "ab"),
            ("not_in", [s2], "acne"),
            ("is_empty", None, "cne"),
        ],
    )


def test_tags_and_preferred_categories(people):
    check(
        people,
        "tags",
        [
            ("in", ["vip"], "ac"),
            ("in", ["new", "other"], "c"),
            ("not_in", ["new"], "abne"),
            ("is_empty", None, "bne"),
        ],
    )
    check(
        people,
        "preferred_categories",
        [
            ("in", ["apparel"], "a"),
            ("not_in", ["apparel"], "bcne"),
            ("is_empty", None, "bcne"),
        ],
    )


def test_consent_per_channel(people):
    check(people, "consent_sms", [("eq", True, "a"), ("eq", False, "bcne")])
    check(people, "consent_email", [("eq", True, "b"), ("eq", False, "acne")])


def test_membership_of_another_segment(people):
    gold = Segment.objects.create(
        name="gold",
        rules={"version": 1, "rule": {"group": "and", "rules": [cond("tier", "eq", "gold")]}},
    )
    check(people, "segment", [("eq", gold.pk, "a"), ("ne", gold.pk, "bcne")])
    # Two levels deep, combined with the outer rules.
    gold_or_beijing = Segment.objects.create(
        name="gold or Beijing",
        rules={
            "version": 1,
            "rule": {
                "group": "or",
                "rules": [cond("segment", "eq", gold.pk), cond("city", "eq", "北京")],
            },
        },
    )
    rule = {
        "group": "and",
        "rules": [cond("segment", "eq", gold_or_beijing.pk), cond("consent_email", "eq", True)],
    }
    assert matching(people, rule) == {"b"}


def test_groups_or_not_and_nested(people):
    assert matching(
        people, {"group": "or", "rules": [cond("tier", "eq", "gold"), cond("city", "eq", "北京")]}
    ) == {"a", "b"}
    assert matching(people, {"group": "not", "rules": [cond("tier", "ge", "silver")]}) == {
        "c",
        "n",
        "e",
    }
    # NOT of two conditions: everyone but those matching both (c only).
    assert matching(
        people,
        {
            "group": "not",
            "rules": [cond("tags", "in", ["vip"]), cond("birthday_month", "is_empty")],
        },
    ) == {"a", "b", "n", "e"}
    # (never purchased or churned) and not tagged new: n, e (c is tagged new).
    nested = {
        "group": "and",
        "rules": [
            {
                "group": "or",
                "rules": [cond("stage", "eq", "never"), cond("stage", "eq", "churned")],
            },
            {"group": "not", "rules": [cond("tags", "in", ["new"])]},
        ],
    }
    assert matching(people, nested) == {"n", "e"}
    # NOT of a condition that is unknown for some members still takes them (no NULLs).
    assert matching(people, {"group": "not", "rules": [cond("age", "ge", 18)]}) == {"c", "e"}
