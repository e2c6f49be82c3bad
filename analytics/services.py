"""Writes of the analytics app: the nightly figures and the live last purchase."""

from __future__ import annotations

import datetime

from django.db import connection

from .figures import member_figures_write
from .rollups import rollups_write
from .sql import adapted


def analytics_rollup(*, business_date: datetime.date) -> tuple[int, int]:
    """The nightly analytics job's work for a business day: every member's figures, then
    the dashboards' roll-ups from them. Returns (members, roll-up rows). Safe to repeat."""
    members = member_figures_write(as_of=business_date)
    if connection.vendor == "postgresql":
        # The roll-ups join every purchase to these rows: plan with their new statistics.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE analytics_memberfigures")
    rows = rollups_write(as_of=business_date)
    return members, rows


def member_figures_purchase_record(*, member_id: int, occurred_at: datetime.datetime) -> None:
    """Keep a member's last (and first) purchase current between nightly runs: called in the
    transaction that posts a purchase. The other figures wait for the night."""
    params = adapted({"member_id": member_id, "at": occurred_at})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE analytics_memberfigures
            SET last_purchase_at = CASE WHEN last_purchase_at IS NULL
                                          OR last_purchase_at < %(at)s
                                        THEN %(at)s ELSE last_purchase_at END,
                first_purchase_at = COALESCE(first_purchase_at, %(at)s)
            WHERE member_id = %(member_id)s
              AND (last_purchase_at IS NULL OR last_purchase_at < %(at)s
                   OR first_purchase_at IS NULL)
            """,
            params,
        )
