"""The catalogue of segment fields: for each, the operators it takes and the type of its
value. The one table the validator, the compiler and the builder's JavaScript read (the
page hands it over with json_script), so a field cannot accept what it cannot compile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# Operator codes as stored in the rule JSON, with the symbol a marketer reads.
EQ, NE, LT, LE, GT, GE = "eq", "ne", "lt", "le", "gt", "ge"
BETWEEN, IN, NOT_IN, EMPTY = "between", "in", "not_in", "is_empty"

OPERATORS: dict[str, str | Promise] = {
    EQ: "=",
    NE: "≠",
    LT: "<",
    LE: "≤",
    GT: ">",
    GE: "≥",
    BETWEEN: _("between"),
    IN: _("is one of"),
    NOT_IN: _("is none of"),
    EMPTY: _("is empty"),
}

NUMBER_OPS = (EQ, NE, LT, LE, GT, GE, BETWEEN)
CHOICE_OPS = (EQ, NE, IN, NOT_IN)

# Value types. A list operator (in / not in) takes a non-empty list of the type; between
# takes [low, high]; is empty takes no value.
INT = "int"  # a whole number ≥ 0
DECIMAL = "decimal"  # an amount in ¥ (kept as a string in the JSON)
DATE = "date"  # YYYY-MM-DD
BOOL = "bool"
CHOICE = "choice"  # one of the field's choices (a code)
TEXT = "text"  # free text, non-empty
MONTH = "month"  # 1–12, or "this" / "next" (the month of today, Asia/Shanghai)
STORE = "store"  # a store's id
SEGMENT = "segment"  # another segment's id

# The windows the nightly figures keep: purchase count and net spend over these read them.
FIGURE_WINDOWS = (30, 90, 365)
MAX_DAYS = 3650
MAX_DAYS_SINCE = 36500
MAX_AGE = 150
# Dates a condition may name: beyond them a date is a typing slip.
MIN_YEAR, MAX_YEAR = 1900, 2200


@dataclass(frozen=True)
class Field:
    name: str
    label: str | Promise
    value_type: str
    ops: tuple[str, ...]
    # "required": the condition needs `days` (the last N days); "optional": without it, ever.
    days: str = ""
    # The largest whole number the field takes (ages and day counts stay within the calendar).
    max_value: int = 10**12


FIELDS: dict[str, Field] = {
    field.name: field
    for field in (
        Field("tier", _("Tier"), CHOICE, (EQ, NE, IN, NOT_IN, LT, LE, GT, GE)),
        Field("stage", _("Lifecycle stage"), CHOICE, CHOICE_OPS),
        Field("rfm_cell", _("RFM cell"), CHOICE, (*CHOICE_OPS, EMPTY)),
        Field("churn_band", _("Churn risk"), CHOICE, (*CHOICE_OPS, EMPTY)),
        Field(
            "days_since_purchase",
            _("Days since the last purchase"),
            INT,
            (*NUMBER_OPS, EMPTY),
            max_value=MAX_DAYS_SINCE,
        ),
        Field("purchase_count", _("Purchases in the last N days"), INT, NUMBER_OPS, "required"),
        Field("net_spend", _("Net spend in the last N days (¥)"), DECIMAL, NUMBER_OPS, "required"),
        Field(
            "categories_bought",
            _("Categories bought in the last N days"),
            TEXT,
            (IN, NOT_IN),
            "required",
        ),
        Field("stores_bought_at", _("Stores bought at"), STORE, (IN, NOT_IN), "optional"),
        Field("balance", _("Points balance"), INT, NUMBER_OPS),
        Field("points_expiring", _("Points expiring within N days"), INT, NUMBER_OPS, "required"),
        Field("birthday_month", _("Birthday month"), MONTH, (EQ, NE, IN, NOT_IN, EMPTY)),
        Field("age", _("Age"), INT, (*NUMBER_OPS, EMPTY), max_value=MAX_AGE),
        Field("gender", _("Gender"), CHOICE, (*CHOICE_OPS, EMPTY)),
        Field("city", _("City"), TEXT, (*CHOICE_OPS, EMPTY)),
        Field("enrolled_on", _("Enrolment date"), DATE, NUMBER_OPS),
        Field(
            "days_since_enrolment",
            _("Days since enrolment"),
            INT,
            NUMBER_OPS,
            max_value=MAX_DAYS_SINCE,
        ),
        Field("enrolment_channel", _("Enrolment channel"), CHOICE, CHOICE_OPS),
        Field("home_store", _("Home store"), STORE, (*CHOICE_OPS, EMPTY)),
        Field("tags", _("Tags"), TEXT, (IN, NOT_IN, EMPTY)),
        Field("preferred_categories", _("Preferred categories"), TEXT, (IN, NOT_IN, EMPTY)),
        Field("consent_sms", _("SMS marketing consent"), BOOL, (EQ,)),
        Field("consent_email", _("E-mail marketing consent"), BOOL, (EQ,)),
        Field("segment", _("Member of segment"), SEGMENT, (EQ, NE)),
    )
}


def field_choices() -> dict[str, list[tuple[str, str]]]:
    """The choices of the CHOICE fields (and suggestions for categories), read now: tiers,
    stores and categories are rows an administrator edits."""
    from analytics.models import RiskBand, Stage
    from analytics.rfm import RFM_CELLS
    from campaigns.models import Segment
    from members.models import Member, Store
    from points.models import Category
    from tiers.selectors import tier_levels

    stores = [(str(s.pk), str(s)) for s in Store.objects.order_by("code")]
    return {
        "tier": [(level.code, str(level.name)) for level in tier_levels()],
        "stage": [(value, str(label)) for value, label in Stage.choices],
        "rfm_cell": [(cell.code, str(cell.label)) for cell in RFM_CELLS],
        "churn_band": [(value, str(label)) for value, label in RiskBand.choices],
        "stores_bought_at": stores,
        "home_store": stores,
        "gender": [(v, str(label)) for v, label in Member.Gender.choices if v],
        "enrolment_channel": [(v, str(label)) for v, label in Member.Channel.choices],
        "categories_bought": [(c.code, str(c)) for c in Category.objects.order_by("code")],
        "preferred_categories": [(c.code, str(c)) for c in Category.objects.order_by("code")],
        "segment": [
            (str(pk), name)
            for pk, name in Segment.objects.filter(is_archived=False).values_list("pk", "name")
        ],
    }


def field_catalogue() -> dict[str, Any]:
    """The table for the builder's JavaScript: fields with labels, operators, value types
        and choices, in the reader's language. A segment cannot contain itself: the validator
    refuses the cycle, so the list need not leave it out."""
    choices = field_choices()
    return {
        "operators": {code: str(label) for code, label in OPERATORS.items()},
        "fields": [
            {
                "name": field.name,
                "label": str(field.label),
                "type": field.value_type,
                "ops": list(field.ops),
                "days": field.days,
                "choices": choices.get(field.name, []),
            }
            for field in FIELDS.values()
        ],
    }
