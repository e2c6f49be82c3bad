"""`bench segments`: the time to count a set of realistic segments (one JSON line each).

`count_ms` is the median over `--samples` counts after one warm-up, on the database in
DATABASE_URL; `funnel_ms` likewise for the builder's reachability funnel. The segment that
uses another segment's membership needs a stored segment: the benchmark creates it and
deletes it again when done.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register


def _rules(group: str, *rules: dict) -> dict:
    return {"version": 1, "rule": {"group": group, "rules": list(rules)}}


def _c(field: str, op: str, value: Any = None, days: int | None = None) -> dict:
    out: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    if days is not None:
        out["days"] = days
    return out


def segments(*, store_ids: list[int], city: str, gold_plus_id: int) -> dict[str, dict]:
    store = store_ids[0]
    return {
        "gold+ at high churn risk": _rules(
            "and", _c("tier", "ge", "gold"), _c("churn_band", "eq", "high")
        ),
        "apparel in 90 days at a store, RFM champions": _rules(
            "and",
            _c("categories_bought", "in", ["apparel"], 90),
            _c("stores_bought_at", "in", [store], 90),
            _c("rfm_cell", "eq", "champions"),
        ),
        "silent, SMS consent, birthday this month": _rules(
            "and",
            _c("stage", "eq", "silent"),
            _c("consent_sms", "eq", True),
            _c("birthday_month", "eq", "this"),
        ),
        "nested OR / NOT": _rules(
            "or",
            {
                "group": "and",
                "rules": [
                    _c("stage", "in", ["active", "new"]),
                    _c("net_spend", "ge", "500", 90),
                ],
            },
            {
                "group": "not",
                "rules": [_c("days_since_purchase", "le", 180), _c("age", "between", [18, 60])],
            },
        ),
        "member of gold+, in the city, 2+ purchases in 60 days": _rules(
            "and",
            _c("segment", "eq", gold_plus_id),
            _c("city", "eq", city) if city else _c("city", "is_empty"),
            _c("purchase_count", "ge", 2, 60),
        ),
        "bought at two stores in 30 days": _rules(
            "and", _c("stores_bought_at", "in", store_ids[:2], 30)
        ),
        "100+ points expiring within 30 days, active": _rules(
            "and", _c("points_expiring", "ge", 100, 30), _c("stage", "eq", "active")
        ),
    }


def _median_ms(call: Callable[[], Any], samples: int) -> tuple[float, Any]:
    result = call()  # warm-up: plans, caches
    timings = []
    for _ in range(samples):
        began = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - began)
    return round(statistics.median(timings) * 1000, 1), result


@benchmark_register
class SegmentsBenchmark(Benchmark):
    name = "segments"
    help = "Count realistic segments (median ms per count and funnel, one JSON line each)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--samples", type=int, default=5, help="counts per segment")
        parser.add_argument("--no-funnel", action="store_true", help="skip the funnel timing")

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        from campaigns.models import Segment
        from campaigns.segments import segment_count, segment_funnel
        from members.models import Store

        out = options.get("stdout") or sys.stdout
        samples = max(options.get("samples") or 0, 1)
        stores = list(Store.objects.order_by("pk")[:2])
        if not stores:
            raise SystemExit("no stores: load the bench data first")
        at = timezone.now()
        helper = Segment.objects.create(
            name="bench segments: gold+",
            rules=_rules("and", {"field": "tier", "op": "ge", "value": "gold"}),
        )
        worst = 0.0
        try:
            for name, rules in segments(
                store_ids=[s.pk for s in stores], city=stores[0].city, gold_plus_id=helper.pk
            ).items():
                count_ms, count = _median_ms(lambda r=rules: segment_count(rules=r, at=at), samples)
                line: dict[str, Any] = {"segment": name, "count": count, "count_ms": count_ms}
                if not options.get("no_funnel"):
                    line["funnel_ms"], _funnel = _median_ms(
                        lambda r=rules: segment_funnel(rules=r, at=at), samples
                    )
                worst = max(worst, count_ms)
                log(f"{name}: {line}")
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
        finally:
            helper.delete()
        return {"benchmark": "segments", "slowest_count_ms": worst, "samples": samples}
