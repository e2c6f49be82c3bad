"""A year of buying at two stores, for the dashboard tests that run the nightly job."""

from __future__ import annotations

from decimal import Decimal

from points.services import purchase_record

from .history import at, buy, give_back, member


def dashboard_history(*, stores) -> None:
    """A year of buying at two stores, for the dashboard tests that run the nightly job."""
    x, y = stores
    a = member(enrolled="2025-07-03", store=x, phone="+8613812341234")
    b = member(enrolled="2025-09-15", store=y)
    c = member(enrolled="2026-01-20", store=x)
    member(enrolled="2026-02-01", store=y)
    for n, day in enumerate(("2025-07-05", "2025-08-09", "2025-12-24", "2026-03-02", "2026-03-20")):
        buy(a, store=x, day=day, amount=str(120 + 10 * n), receipt=f"A{n}")
    for n, day in enumerate(("2025-09-16", "2025-10-01", "2026-02-14")):
        buy(b, store=y, day=day, amount=str(300 + 50 * n), receipt=f"B{n}")
    buy(c, store=x, day="2026-01-21", amount="88", receipt="C0")
    buy(c, store=y, day="2026-03-03", amount="66", receipt="C1")
    give_back(store=y, receipt="R-B1", day="2026-02-20", amount="50", original="B1")
    # Over ¥2,000 in a year: a moves up a tier; then pays with 100 points at the till.
    buy(a, store=x, day="2026-01-15", amount="2500", receipt="A-BIG")
    when = at("2026-03-25")
    purchase_record(
        member=a,
        store=x,
        receipt_no="A-PTS",
        occurred_at=when,
        amount=Decimal("40"),
        points_to_use=100,
        now=when,
    )
