"""Segment rules compiled to one parameterised SQL statement over the members.

    FROM members_member m [LEFT JOIN figures f / tier mt / points account pa]
    WHERE m.status = 'active' AND <the rule tree>

or, for the count and the member ids of rules that read the nightly figures alone and that
a member without a figures row fails, the same members from the figures table alone:

    FROM analytics_memberfigures f
    WHERE NOT EXISTS (<its member is not active>) AND <the rule tree>

Only active members can be targeted. Every condition compiles to a fragment that is TRUE
or FALSE, never NULL, so a NOT group is exactly "everyone the group does not match", and
"≠" / "is none of" are the NOT of "=" / "is one of" (a member without a birthday has a
birthday month ≠ 5). Values are parameters; field names and operators come from the
catalogue (fields.py), never from the rules' text.

Dates are business dates in Asia/Shanghai. "The last N days" are the N complete business
days before today, the windows of the nightly figures (analytics.figures): purchase count
and net spend over 30, 90 or 365 days read the figures' columns; other windows add up the
purchases (count) and purchases − returns (net spend, each by its own business date) in the
same way. Days since the last purchase count business days from today to the figures' last
purchase (kept current as purchases post); points expiring within N days are the open lots
expiring from the start of today to the end of the Nth business day counting today (for 30
days, the figures' column, as of last night; other N add up the lots). A member without a
figures row (enrolled since the last nightly run) is at stage "never", has no RFM cell or
churn band, no last purchase, and 0 purchases and spend.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from analytics.figures import day_end, figures_day, window_start
from analytics.models import Stage
from members.models import Member
from tiers.selectors import add_months, business_date, start_of, tier_levels

from .fields import (
    BETWEEN,
    DECIMAL,
    EMPTY,
    EQ,
    FIELDS,
    FIGURE_WINDOWS,
    GE,
    GT,
    IN,
    LE,
    LT,
    NE,
    NOT_IN,
)
from .rules import SegmentRuleError, segment_rules_validate

FALSE = "1 = 0"
TRUE = "1 = 1"
JOINS = {
    "f": "LEFT JOIN analytics_memberfigures f ON f.member_id = m.id",
    "mt": "LEFT JOIN tiers_membertier mt ON mt.member_id = m.id",
    "pa": "LEFT JOIN points_account pa ON pa.member_id = m.id",
}
# The figures keep the points expiring within this many days (analytics.figures).
EXPIRING_FIGURE_DAYS = 30
_SQL_OPS = {EQ: "=", LT: "<", LE: "<=", GT: ">", GE: ">="}

Fragment = tuple[str, list[Any]]
# A fragment that names one of these aliases needs more than the member's figures row.
_BEYOND_FIGURES = re.compile(r"\b(m|mt|pa)\.")


def segment_members_sql(*, rules: dict, at: datetime.datetime) -> tuple[str, list]:
    """SQL of the members the rules match at `at` (column `member_id`, one row each)."""
    compiled = segment_compile(rules=rules, at=at)
    if _figures_suffice(compiled):
        return f"SELECT f.member_id AS member_id {_figures_from_where(compiled)}", [
            Member.Status.ACTIVE,
            *compiled.rule_params,
        ]
    return f"SELECT m.id AS member_id {compiled.from_where}", compiled.params


def segment_count_sql(*, rules: dict, at: datetime.datetime) -> tuple[str, list]:
    """SQL of the number of members the rules match at `at` (one row, one column)."""
    compiled = segment_compile(rules=rules, at=at)
    if _figures_suffice(compiled):
        return f"SELECT COUNT(*) {_figures_from_where(compiled)}", [
            Member.Status.ACTIVE,
            *compiled.rule_params,
        ]
    return f"SELECT COUNT(*) {compiled.from_where}", compiled.params


def _figures_suffice(compiled: CompiledSegment) -> bool:
    """Whether the members are exactly the active members' figures rows the rules match:
    the rules read the figures alone, and a member without a figures row (every figure
    NULL, as the LEFT JOIN gives it) does not match. Then PostgreSQL scans the figures and
    leaves the members table out, but for the few members that are not active."""
    if not compiled.figures_only:
        return False
    probe = (
        "SELECT COUNT(*) FROM (SELECT 1 AS one) d "  # noqa: S608 - compiled, parameterised
        f"LEFT JOIN analytics_memberfigures f ON 1 = 0 WHERE {compiled.rule_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(probe, compiled.rule_params)
        return cursor.fetchone()[0] == 0


def _figures_from_where(compiled: CompiledSegment) -> str:
    # NOT EXISTS over the members that are not active (a partial index holds just those)
    # rather than a join with the million that are: a figures row has its member (FK).
    return (
        "FROM analytics_memberfigures f WHERE NOT EXISTS (SELECT 1 FROM members_member x "  # noqa: S608
        f"WHERE x.id = f.member_id AND x.status <> %s) AND {compiled.rule_sql}"
    )


class CompiledSegment:
    """`from_where`: "FROM members_member m … WHERE …" with its `params`; selectors put
    their own SELECT list in front. `rule_sql` / `rule_params`: the rule tree alone;
    `figures_only`: whether it reads nothing but the figures row (alias f)."""

    def __init__(
        self, *, joins: list[str], rule_sql: str, rule_params: list[Any], figures_only: bool
    ) -> None:
        self.joins = joins
        self.rule_sql = rule_sql
        self.rule_params = rule_params
        self.figures_only = figures_only
        self.where = f"m.status = %s AND {rule_sql}"
        self.params = [Member.Status.ACTIVE, *rule_params]

    def from_where_with(self, *, join: str = "") -> str:
        """With one more join (whose parameters go before `params`)."""
        joins = " ".join([*(JOINS[name] for name in self.joins), join])
        return f"FROM members_member m {joins} WHERE {self.where}"

    @property
    def from_where(self) -> str:
        return self.from_where_with()


def segment_compile(*, rules: object, at: datetime.datetime) -> CompiledSegment:
    """Validate and compile; SegmentRuleError for rules that cannot be used."""
    checked = segment_rules_validate(rules=rules)
    compiler = _Compiler(at=at)
    sql, params = compiler.group(checked["rule"])
    return CompiledSegment(
        joins=[name for name in JOINS if name in compiler.joins],
        rule_sql=sql,
        rule_params=params,
        figures_only=not compiler.beyond_figures,
    )


def adapt(value: Any) -> Any:
    """A parameter as the database compares it with its columns (SQLite: UTC text times,
    ISO dates, floats for amounts, which an expression without affinity compares as
    numbers)."""
    ops = connection.ops
    if isinstance(value, datetime.datetime):
        return ops.adapt_datetimefield_value(value)
    if isinstance(value, datetime.date):
        return ops.adapt_datefield_value(value)
    if isinstance(value, Decimal) and connection.vendor == "sqlite":
        return float(value)
    return value


def _not(fragment: Fragment) -> Fragment:
    return f"NOT ({fragment[0]})", fragment[1]


def _and(*fragments: Fragment) -> Fragment:
    return (
        "(" + " AND ".join(sql for sql, _p in fragments) + ")",
        [p for _sql, params in fragments for p in params],
    )


def _placeholders(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _holds(op: str, left: Any, value: Any) -> bool:
    """Whether `left op value` is true, in Python (for the members with no rows at all)."""
    if op == BETWEEN:
        return value[0] <= left <= value[1]
    return {
        EQ: left == value,
        NE: left != value,
        LT: left < value,
        LE: left <= value,
        GT: left > value,
        GE: left >= value,
    }[op]


def _compare(expr: str, op: str, value: Any) -> Fragment:
    """`expr op value` for an expression that is never NULL."""
    if op == BETWEEN:
        return f"{expr} BETWEEN %s AND %s", [adapt(value[0]), adapt(value[1])]
    if op == NE:
        return _not(_compare(expr, EQ, value))
    return f"{expr} {_SQL_OPS[op]} %s", [adapt(value)]


def _one_of(expr: str, op: str, value: Any, *, nullable: bool = False) -> Fragment:
    """= / ≠ / is one of / is none of over a set of values; NOT for the negative ones."""
    if op in (NE, NOT_IN):
        return _not(_one_of(expr, EQ if op == NE else IN, value, nullable=nullable))
    values = value if isinstance(value, list) else [value]
    sql = f"{expr} IN ({_placeholders(values)})"
    if nullable:
        sql = f"({expr} IS NOT NULL AND {sql})"
    return sql, [adapt(v) for v in values]


def _count_range(op: str, value: Any, *, at_least, at_most) -> Fragment:
    """A whole-number comparison built from ≥ n and ≤ n fragments (days, age)."""
    if op == NE:
        return _not(_count_range(EQ, value, at_least=at_least, at_most=at_most))
    if op == EQ:
        return _and(at_least(value), at_most(value))
    if op == BETWEEN:
        return _and(at_least(value[0]), at_most(value[1]))
    return {
        GE: lambda: at_least(value),
        GT: lambda: at_least(value + 1),
        LE: lambda: at_most(value),
        LT: lambda: at_most(value - 1),
    }[op]()


class _Compiler:
    def __init__(self, *, at: datetime.datetime) -> None:
        self.at = at
        self.today = business_date(at)
        # The figures' day: the last complete business day, which "the last N days" end with.
        self.as_of = figures_day(self.today)
        self.joins: set[str] = set()
        self.beyond_figures = False
        self.path: tuple[int, ...] = ()
        levels = tier_levels()
        self.base_level = levels[0].pk if levels else 0
        self.levels = {level.code: level for level in levels}

    def group(self, node: dict) -> Fragment:
        parts = [self.group(c) if "group" in c else self.condition(c) for c in node["rules"]]
        joiner = " OR " if node["group"] == "or" else " AND "
        sql = "(" + joiner.join(sql for sql, _p in parts) + ")"
        params = [p for _sql, ps in parts for p in ps]
        if node["group"] == "not":
            sql = f"(NOT {sql})"
        return sql, params

    def condition(self, node: dict) -> Fragment:
        field = FIELDS[node["field"]]
        value = node.get("value")
        if field.value_type == DECIMAL and value is not None:
            value = [Decimal(v) for v in value] if isinstance(value, list) else Decimal(value)
        fragment = getattr(self, f"c_{field.name}")(node["op"], value, node.get("days"))
        if field.name != "segment" and _BEYOND_FIGURES.search(fragment[0]):
            self.beyond_figures = True
        return fragment

    def window(self, days: int) -> tuple[datetime.datetime, datetime.datetime]:
        return window_start(as_of=self.as_of, days=days), day_end(day=self.as_of)

    # --- From the nightly figures --------------------------------------------------------

    def _defaulted(self, column: str, default: Any, op: str, value: Any) -> Fragment:
        """`column op value` for a column of a LEFT JOINed row that a member may lack, read
        as `default` then. Written without COALESCE, so that when the default fails the
        test PostgreSQL can use the column's index and join only the rows that exist."""
        if op in (NE, NOT_IN):
            return _not(self._defaulted(column, default, EQ if op == NE else IN, value))
        if op in (EQ, IN):
            values = value if isinstance(value, list) else [value]
            sql, params = _one_of(column, IN, values)
            holds = default in values
        else:
            sql, params = _compare(column, op, value)
            holds = _holds(op, default, value)
        if holds:
            return f"({column} IS NULL OR {sql})", params
        return f"({column} IS NOT NULL AND {sql})", params

    def c_tier(self, op: str, value: Any, days: int | None) -> Fragment:
        self.joins.add("mt")
        if op in (NE, NOT_IN):
            return _not(self.c_tier(EQ if op == NE else IN, value, days))
        if op in (EQ, IN):
            codes = value if isinstance(value, list) else [value]
            ids = [self.levels[c].pk for c in codes]
        else:
            rank = self.levels[value].rank
            ids = [lv.pk for lv in self.levels.values() if _holds(op, lv.rank, rank)]
        if not ids:
            return FALSE, []
        # No tier row: the base level.
        return self._defaulted("mt.level_id", self.base_level, IN, ids)

    def _figure(self, column: str, default: Any, op: str, value: Any) -> Fragment:
        self.joins.add("f")
        return self._defaulted(f"f.{column}", default, op, value)

    def c_stage(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._figure("stage", Stage.NEVER.value, op, value)

    def _blankable(self, column: str, op: str, value: Any) -> Fragment:
        if op == EMPTY:
            self.joins.add("f")
            return f"(f.{column} IS NULL OR f.{column} = '')", []
        return self._figure(column, "", op, value)

    def c_rfm_cell(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._blankable("rfm_cell", op, value)

    def c_churn_band(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._blankable("churn_band", op, value)

    def c_days_since_purchase(self, op: str, value: Any, days: int | None) -> Fragment:
        self.joins.add("f")
        return self._days_since("f.last_purchase_at", op, value, nullable=True)

    def _days_since(self, column: str, op: str, value: Any, *, nullable: bool) -> Fragment:
        """Whole business days from the day of `column` to today, compared."""
        if op == EMPTY:
            return f"{column} IS NULL", []
        if op == NE:
            return _not(self._days_since(column, EQ, value, nullable=nullable))

        def at_least(n: int) -> Fragment:
            # n or more days ago: on or before the day today − n.
            return f"{column} < %s", [adapt(start_of(self.today - datetime.timedelta(n - 1)))]

        def at_most(n: int) -> Fragment:
            return f"{column} >= %s", [adapt(start_of(self.today - datetime.timedelta(n)))]

        sql, params = _count_range(op, value, at_least=at_least, at_most=at_most)
        if nullable:
            sql = f"({column} IS NOT NULL AND {sql})"
        return sql, params

    def c_purchase_count(self, op: str, value: Any, days: int) -> Fragment:
        if days in FIGURE_WINDOWS:
            return self._figure(f"orders_{days}", 0, op, value)
        if op == NE:
            return _not(self.c_purchase_count(EQ, value, days))
        start, end = self.window(days)
        # Counted per member through the (member, occurred_at) index, and only up to one
        # more than the largest number compared with, which decides the comparison as well
        # as the whole count would: the members the other conditions leave cost a few index
        # entries each, where a GROUP BY would add up every purchase in the window first.
        cap = (max(value) if isinstance(value, list) else value) + 1
        counted = (
            "(SELECT COUNT(*) FROM (SELECT 1 AS one FROM points_purchase p "
            "WHERE p.member_id = m.id AND p.occurred_at >= %s AND p.occurred_at < %s "
            "LIMIT %s) n)"
        )
        sql, params = _compare(counted, op, value)
        return sql, [adapt(start), adapt(end), cap, *params]

    def c_net_spend(self, op: str, value: Any, days: int) -> Fragment:
        if days in FIGURE_WINDOWS:
            return self._figure(f"net_spend_{days}", Decimal(0), op, value)
        start, end = self.window(days)
        sub = (
            "SELECT t.member_id FROM ("
            "SELECT p.member_id, p.amount FROM points_purchase p "
            "WHERE p.occurred_at >= %s AND p.occurred_at < %s "
            "UNION ALL SELECT p.member_id, -r.amount FROM points_return r "
            "JOIN points_purchase p ON p.id = r.purchase_id "
            "WHERE r.occurred_at >= %s AND r.occurred_at < %s"
            ") t GROUP BY t.member_id"
        )
        params = [adapt(start), adapt(end)] * 2
        return self._aggregate(sub, params, "SUM(t.amount)", op, value, Decimal(0))

    def _aggregate(
        self, sub: str, params: list, aggregate: str, op: str, value: Any, zero: Any
    ) -> Fragment:
        """A per-member total of the rows in `sub` compared with the value, set-based: the
        members whose total passes, or (when a member with no rows, total zero, passes too)
        everyone but those whose total fails."""
        test_sql, test_params = _compare(aggregate, op, value)
        if _holds(op, zero, value):
            return (
                f"m.id NOT IN ({sub} HAVING NOT ({test_sql}))",
                [*params, *test_params],
            )
        return f"m.id IN ({sub} HAVING {test_sql})", [*params, *test_params]

    # --- From the ledger, purchases and lines ----------------------------------------------

    def c_balance(self, op: str, value: Any, days: int | None) -> Fragment:
        self.joins.add("pa")
        return self._defaulted("pa.balance", 0, op, value)

    def c_points_expiring(self, op: str, value: Any, days: int) -> Fragment:
        if days == EXPIRING_FIGURE_DAYS:
            return self._figure("expiring_30", 0, op, value)
        start = start_of(self.today)
        until = start_of(self.today + datetime.timedelta(days=days))
        sub = (
            "SELECT a.member_id FROM points_lot l JOIN points_account a ON a.id = l.account_id "
            "WHERE l.remaining > 0 AND l.expires_at >= %s AND l.expires_at < %s "
            "AND a.member_id IS NOT NULL GROUP BY a.member_id"
        )
        params = [adapt(start), adapt(until)]
        return self._aggregate(sub, params, "SUM(l.remaining)", op, value, 0)

    def c_categories_bought(self, op: str, value: Any, days: int) -> Fragment:
        if op == NOT_IN:
            return _not(self.c_categories_bought(IN, value, days))
        start, end = self.window(days)
        return (
            "EXISTS (SELECT 1 FROM points_purchase p "  # noqa: S608 - placeholders only
            "JOIN points_purchaseline l ON l.purchase_id = p.id "
            "WHERE p.member_id = m.id AND p.occurred_at >= %s AND p.occurred_at < %s "
            f"AND l.category IN ({_placeholders(value)}))",
            [adapt(start), adapt(end), *value],
        )

    def c_stores_bought_at(self, op: str, value: Any, days: int | None) -> Fragment:
        if op == NOT_IN:
            return _not(self.c_stores_bought_at(IN, value, days))
        sql = (
            "EXISTS (SELECT 1 FROM points_purchase p WHERE p.member_id = m.id "  # noqa: S608
            f"AND p.store_id IN ({_placeholders(value)})"
        )
        params = list(value)
        if days is not None:
            start, end = self.window(days)
            sql += " AND p.occurred_at >= %s AND p.occurred_at < %s"
            params += [adapt(start), adapt(end)]
        return sql + ")", params

    # --- From the member -----------------------------------------------------------------

    def c_birthday_month(self, op: str, value: Any, days: int | None) -> Fragment:
        if op == EMPTY:
            return "m.birthday IS NULL", []
        if connection.vendor == "postgresql":
            expr = "EXTRACT(MONTH FROM m.birthday)::int"
        else:
            expr = "CAST(strftime('%%m', m.birthday) AS INTEGER)"
        this = self.today.month
        months = {"this": this, "next": this % 12 + 1}
        resolved = (
            [months.get(v, v) for v in value]
            if isinstance(value, list)
            else months.get(value, value)
        )
        return _one_of(expr, op, resolved, nullable=True)

    def c_age(self, op: str, value: Any, days: int | None) -> Fragment:
        if op == EMPTY:
            return "m.birthday IS NULL", []
        if op == NE:
            return _not(self.c_age(EQ, value, days))

        def at_least(n: int) -> Fragment:
            return "m.birthday <= %s", [adapt(add_months(self.today, -12 * n))]

        def at_most(n: int) -> Fragment:
            return "m.birthday > %s", [adapt(add_months(self.today, -12 * (n + 1)))]

        sql, params = _count_range(op, value, at_least=at_least, at_most=at_most)
        return f"(m.birthday IS NOT NULL AND {sql})", params

    def c_gender(self, op: str, value: Any, days: int | None) -> Fragment:
        return ("m.gender = ''", []) if op == EMPTY else _one_of("m.gender", op, value)

    def c_city(self, op: str, value: Any, days: int | None) -> Fragment:
        return ("m.city = ''", []) if op == EMPTY else _one_of("m.city", op, value)

    def c_enrolment_channel(self, op: str, value: Any, days: int | None) -> Fragment:
        return _one_of("m.enrolment_channel", op, value)

    def c_home_store(self, op: str, value: Any, days: int | None) -> Fragment:
        if op == EMPTY:
            return "m.home_store_id IS NULL", []
        return _one_of("m.home_store_id", op, value, nullable=True)

    def c_enrolled_on(self, op: str, value: Any, days: int | None) -> Fragment:
        def day(text: str, after: int = 0) -> Any:
            return adapt(start_of(datetime.date.fromisoformat(text) + datetime.timedelta(after)))

        if op == NE:
            return _not(self.c_enrolled_on(EQ, value, days))
        if op == BETWEEN:
            return "(m.enrolled_at >= %s AND m.enrolled_at < %s)", [
                day(value[0]),
                day(value[1], 1),
            ]
        return {
            EQ: ("(m.enrolled_at >= %s AND m.enrolled_at < %s)", [day(value), day(value, 1)]),
            LT: ("m.enrolled_at < %s", [day(value)]),
            LE: ("m.enrolled_at < %s", [day(value, 1)]),
            GT: ("m.enrolled_at >= %s", [day(value, 1)]),
            GE: ("m.enrolled_at >= %s", [day(value)]),
        }[op]

    def c_days_since_enrolment(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._days_since("m.enrolled_at", op, value, nullable=False)

    def _json_list(self, column: str, op: str, value: Any) -> Fragment:
        if op == EMPTY:
            if connection.vendor == "postgresql":
                return f"{column} = '[]'::jsonb", []
            return f"json_array_length({column}) = 0", []
        if op == NOT_IN:
            return _not(self._json_list(column, IN, value))
        if connection.vendor == "postgresql":
            return f"{column} ?| %s::text[]", [list(value)]
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}) j "  # noqa: S608 - a catalogue column
            f"WHERE j.value IN ({_placeholders(value)}))",
            list(value),
        )

    def c_tags(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._json_list("m.tags", op, value)

    def c_preferred_categories(self, op: str, value: Any, days: int | None) -> Fragment:
        return self._json_list("m.preferred_categories", op, value)

    def c_consent_sms(self, op: str, value: Any, days: int | None) -> Fragment:
        return "m.consent_sms = %s", [value]

    def c_consent_email(self, op: str, value: Any, days: int | None) -> Fragment:
        return "m.consent_email = %s", [value]

    def c_segment(self, op: str, value: Any, days: int | None) -> Fragment:
        """Another segment's rules, inline (the same members, joins and `at`)."""
        from campaigns.models import Segment

        if op == NE:
            return _not(self.c_segment(EQ, value, days))
        if value in self.path:
            raise SegmentRuleError("cycle", _("Segment %(id)s contains itself.") % {"id": value})
        stored = Segment.objects.filter(pk=value).values_list("rules", flat=True).first()
        if stored is None:
            raise SegmentRuleError(
                "bad_value", _("There is no segment %(id)s to use.") % {"id": value}
            )
        checked = segment_rules_validate(rules=stored, segment_id=value)
        self.path = (*self.path, value)
        try:
            return self.group(checked["rule"])
        finally:
            self.path = self.path[:-1]
