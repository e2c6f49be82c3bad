"""Segment rules: the JSON a marketer builds, checked and normalised before anything stores
or compiles it.

    {"version": 1, "rule": {"group": "and" | "or" | "not", "rules": [group or condition, …]}}
    condition: {"field": "<name>", "op": "<operator>", "value": …, "days": N}

A NOT group is its children AND-ed, then negated. Each problem raises `SegmentRuleError`
with a code for APIs and a message for people.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from .fields import (
    BETWEEN,
    BOOL,
    CHOICE,
    DATE,
    DECIMAL,
    EMPTY,
    FIELDS,
    IN,
    INT,
    MAX_DAYS,
    MAX_YEAR,
    MIN_YEAR,
    MONTH,
    NOT_IN,
    SEGMENT,
    STORE,
    TEXT,
    Field,
    field_choices,
)

VERSION = 1
GROUPS = ("and", "or", "not")
MAX_DEPTH = 6
MAX_CONDITIONS = 100
MAX_LIST = 500
MAX_TEXT = 100
MONTH_RELATIVE = ("this", "next")


class SegmentRuleError(Exception):
    """A segment's rules cannot be used: `code` for machines, `detail` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def segment_rules_validate(*, rules: object, segment_id: int | None = None) -> dict:
    """The rules checked and normalised (values in their JSON form, keys in order), or
    SegmentRuleError. `segment_id` is the segment being edited: its rules may not reach it
    again through segment membership."""
    if not isinstance(rules, dict):
        raise SegmentRuleError("bad_rules", _("The rules must be a JSON object."))
    if rules.get("version") != VERSION:
        raise SegmentRuleError(
            "bad_version",
            _("Unknown rules version %(version)s: this system reads version %(known)s.")
            % {"version": rules.get("version"), "known": VERSION},
        )
    checker = _Checker()
    rule = checker.group(rules.get("rule"), depth=1)
    normalised = {"version": VERSION, "rule": rule}
    _cycle_check(rules=normalised, segment_id=segment_id)
    return normalised


def segment_references(*, rules: dict) -> set[int]:
    """The ids of the segments whose membership the (validated) rules use."""
    found: set[int] = set()

    def walk(node: dict) -> None:
        if "group" in node:
            for child in node["rules"]:
                walk(child)
        elif node["field"] == "segment":
            found.add(node["value"])

    walk(rules["rule"])
    return found


def _cycle_check(*, rules: dict, segment_id: int | None) -> None:
    from campaigns.models import Segment

    def visit(refs: set[int], path: tuple[int, ...]) -> None:
        for ref in sorted(refs):
            if ref == segment_id or ref in path:
                raise SegmentRuleError(
                    "cycle",
                    _(
                        "These rules use segment %(id)s, whose own rules lead back here: a "
                        "segment cannot contain itself."
                    )
                    % {"id": ref},
                )
            stored = Segment.objects.filter(pk=ref).values_list("rules", flat=True).first()
            if isinstance(stored, dict) and isinstance(stored.get("rule"), dict):
                visit(_stored_references(stored["rule"]), (*path, ref))

    visit(segment_references(rules=rules), (segment_id,) if segment_id else ())


def _stored_references(node: Any) -> set[int]:
    """Segment ids in stored rules, read leniently (they were valid when saved)."""
    if not isinstance(node, dict):
        return set()
    if "group" in node:
        return set().union(*(_stored_references(c) for c in node.get("rules") or []))
    if node.get("field") == "segment" and isinstance(node.get("value"), int):
        return {node["value"]}
    return set()


class _Checker:
    def __init__(self) -> None:
        self.conditions = 0
        self._choices: dict[str, set[str]] | None = None

    def choices(self, field: str) -> set[str]:
        if self._choices is None:
            self._choices = {
                name: {code for code, _label in pairs} for name, pairs in field_choices().items()
            }
        return self._choices.get(field, set())

    def group(self, node: Any, *, depth: int) -> dict:
        if depth > MAX_DEPTH:
            raise SegmentRuleError(
                "too_deep",
                _("Groups may be nested at most %(depth)s deep.") % {"depth": MAX_DEPTH},
            )
        if not isinstance(node, dict) or node.get("group") not in GROUPS:
            raise SegmentRuleError(
                "bad_rules", _("A group must be an AND, OR or NOT group with a list of rules.")
            )
        children = node.get("rules")
        if not isinstance(children, list):
            raise SegmentRuleError("bad_rules", _("A group's rules must be a list."))
        if not children:
            raise SegmentRuleError(
                "empty_group",
                _("An empty group matches nothing sensible: add a condition or remove it."),
            )
        rules = [
            self.group(child, depth=depth + 1)
            if isinstance(child, dict) and "group" in child
            else self.condition(child)
            for child in children
        ]
        return {"group": node["group"], "rules": rules}

    def condition(self, node: Any) -> dict:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise SegmentRuleError(
                "too_deep",
                _("A segment may have at most %(n)s conditions.") % {"n": MAX_CONDITIONS},
            )
        if not isinstance(node, dict) or not isinstance(node.get("field"), str):
            raise SegmentRuleError(
                "bad_rules", _("A condition must name a field, an operator and a value.")
            )
        field = FIELDS.get(node["field"])
        if field is None:
            raise SegmentRuleError(
                "unknown_field", _("Unknown field “%(field)s”.") % {"field": node["field"]}
            )
        op = node.get("op")
        if op not in field.ops:
            raise SegmentRuleError(
                "bad_operator",
                _("“%(field)s” cannot be compared with “%(op)s”.")
                % {"field": field.label, "op": op},
            )
        out: dict[str, Any] = {"field": field.name, "op": op}
        if op != EMPTY:
            out["value"] = self.value(field, op, node.get("value"))
        days = self.days(field, node.get("days"))
        if days is not None:
            out["days"] = days
        return out

    def days(self, field: Field, raw: Any) -> int | None:
        if not field.days:
            if raw is not None:
                raise SegmentRuleError(
                    "bad_value",
                    _("“%(field)s” takes no number of days.") % {"field": field.label},
                )
            return None
        if raw is None and field.days == "optional":
            return None
        days = _int(raw)
        if days is None or not 1 <= days <= MAX_DAYS:
            raise SegmentRuleError(
                "bad_value",
                _("“%(field)s” needs a number of days from 1 to %(max)s.")
                % {"field": field.label, "max": MAX_DAYS},
            )
        return days

    def value(self, field: Field, op: str, raw: Any) -> Any:
        if op in (IN, NOT_IN):
            if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
                raise SegmentRuleError(
                    "bad_value",
                    _("“%(field)s” needs a list of one or more values.") % {"field": field.label},
                )
            values = [self.scalar(field, item) for item in raw]
            return list(dict.fromkeys(values))
        if op == BETWEEN:
            if not isinstance(raw, list) or len(raw) != 2:
                raise SegmentRuleError(
                    "bad_value",
                    _("“%(field)s” between needs two values, the lower first.")
                    % {"field": field.label},
                )
            low, high = (self.scalar(field, item) for item in raw)
            if _ordered(field, high) < _ordered(field, low):
                raise SegmentRuleError(
                    "bad_value",
                    _("“%(field)s” between needs the lower value first.") % {"field": field.label},
                )
            return [low, high]
        return self.scalar(field, raw)

    def scalar(self, field: Field, raw: Any) -> Any:
        kind = field.value_type
        value: Any = None
        if kind in (INT, STORE, SEGMENT):
            value = _int(raw)
            if value is not None and not 0 <= value <= field.max_value:
                value = None
        elif kind == DECIMAL:
            value = _decimal(raw)
        elif kind == DATE:
            value = _date(raw)
        elif kind == BOOL:
            value = raw if isinstance(raw, bool) else None
        elif kind == MONTH:
            if raw in MONTH_RELATIVE:
                value = raw
            else:
                value = _int(raw)
                if value is not None and not 1 <= value <= 12:
                    value = None
        elif kind == TEXT:
            if isinstance(raw, str) and raw.strip() and len(raw) <= MAX_TEXT:
                value = raw.strip()
        elif kind == CHOICE and isinstance(raw, str) and raw in self.choices(field.name):
            value = raw
        if value is None:
            raise SegmentRuleError("bad_value", _bad_value_message(field, raw))
        if kind == STORE:
            from members.models import Store

            if not Store.objects.filter(pk=value).exists():
                raise SegmentRuleError("bad_value", _("There is no store %(id)s.") % {"id": value})
        if kind == SEGMENT:
            from campaigns.models import Segment

            # An archived segment still counts for the rules that already use it; the builder
            # offers only live ones.
            if not Segment.objects.filter(pk=value).exists():
                raise SegmentRuleError(
                    "bad_value", _("There is no segment %(id)s to use.") % {"id": value}
                )
        return value


def _bad_value_message(field: Field, raw: Any) -> str:
    expected = {
        INT: _("a whole number"),
        STORE: _("a store"),
        SEGMENT: _("a segment"),
        DECIMAL: _("an amount"),
        DATE: _("a date (YYYY-MM-DD)"),
        BOOL: _("yes or no"),
        MONTH: _("a month from 1 to 12, this month or next month"),
        TEXT: _("a text of at most %(n)s characters") % {"n": MAX_TEXT},
        CHOICE: _("one of its choices"),
    }[field.value_type]
    return _("“%(field)s” needs %(expected)s, not %(value)s.") % {
        "field": field.label,
        "expected": expected,
        "value": repr(raw)[:40],
    }


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        return int(raw.strip())
    return None


def _decimal(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
        return None
    return str(value.quantize(Decimal("0.01")))


def _date(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        day = datetime.date.fromisoformat(raw.strip())
    except ValueError:
        return None
    return day.isoformat() if MIN_YEAR <= day.year <= MAX_YEAR else None


def _ordered(field: Field, value: Any) -> Any:
    return Decimal(value) if field.value_type == DECIMAL else value
