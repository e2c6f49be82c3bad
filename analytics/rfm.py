"""RFM cells: the one table that names a member's (R, F, M) scores.

Scores are 1–5 by quintile (analytics.figures computes them); R is reversed, so a recent
buyer scores 5. Each score is "high" (4 or 5) or "low" (1 to 3), which gives the eight
cells of the usual Chinese RFM model; their zh-hans names are the model's own (重要价值 for
Champions … 一般挽留 for Hibernating, in locale/).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class RfmCell:
    code: str
    label: str | Promise
    # Inclusive score ranges for R, F and M.
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]


HIGH = (4, 5)
LOW = (1, 3)

RFM_CELLS: tuple[RfmCell, ...] = (
    RfmCell("champions", _("Champions"), HIGH, HIGH, HIGH),
    RfmCell("at_risk", _("At risk"), LOW, HIGH, HIGH),
    RfmCell("big_spenders", _("Big spenders"), HIGH, LOW, HIGH),
    RfmCell("cant_lose", _("Can't lose them"), LOW, LOW, HIGH),
    RfmCell("loyal", _("Loyal"), HIGH, HIGH, LOW),
    RfmCell("promising", _("Promising"), HIGH, LOW, LOW),
    RfmCell("needs_attention", _("Needs attention"), LOW, HIGH, LOW),
    RfmCell("hibernating", _("Hibernating"), LOW, LOW, LOW),
)
# Every combination of scores matches exactly one row above; the test proves it, so a
# cell is never left unnamed.
_BY_CODE = {cell.code: cell for cell in RFM_CELLS}


def rfm_cell_of(*, r: int, f: int, m: int) -> RfmCell:
    for cell in RFM_CELLS:
        if (
            cell.r[0] <= r <= cell.r[1]
            and cell.f[0] <= f <= cell.f[1]
            and cell.m[0] <= m <= cell.m[1]
        ):
            return cell
    raise ValueError(f"no RFM cell for scores {r}-{f}-{m}")


def rfm_cell_label(code: str) -> str | Promise:
    """The name a marketer reads for a cell code ('' for a member without scores)."""
    cell = _BY_CODE.get(code)
    return cell.label if cell is not None else ""


def rfm_cell_case_sql(*, r: str, f: str, m: str) -> str:
    """A SQL CASE giving the cell code from the score columns: the table above, as SQL,
    so the nightly job names 1M members in one statement (the test compares it with
    rfm_cell_of for every combination)."""
    whens = " ".join(
        f"WHEN {r} BETWEEN {c.r[0]} AND {c.r[1]} AND {f} BETWEEN {c.f[0]} AND {c.f[1]} "
        f"AND {m} BETWEEN {c.m[0]} AND {c.m[1]} THEN '{c.code}'"
        for c in RFM_CELLS
    )
    return f"CASE WHEN {r} IS NULL THEN '' {whens} ELSE '' END"
