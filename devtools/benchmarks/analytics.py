"""`bench analytics`: the server time of every dashboard panel, and churn training.

A panel's time is what the server spends on its htmx request past authentication: read the
roll-ups, build the chart option and the table, render the fragment. Each panel is timed
for all stores and all tiers over the last 12 months, and for one store and one tier (the
smallest slices read the fewest rows; "all" reads the most months of the widest rows).
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register


@benchmark_register
class AnalyticsBenchmark(Benchmark):
    name = "analytics"
    help = (
        "Time every dashboard panel (median server time, one JSON line each), then churn "
        "training as of a date. Run after the nightly analytics job (bench nightly)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--samples", type=int, default=20, help="renders per panel")
        parser.add_argument("--date", help="as-of date for churn_train (default: today)")
        parser.add_argument("--no-train", action="store_true", help="skip churn training")

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        from analytics.charts import PANELS, panel_build
        from analytics.churn.services import churn_train
        from analytics.selectors import Scope, analytics_as_of
        from members.models import Store
        from tiers.selectors import tier_levels

        out = options.get("stdout") or sys.stdout
        as_of = analytics_as_of() or timezone.localdate()
        end = as_of.replace(day=1)
        start = (end - datetime.timedelta(days=335)).replace(day=1)
        store = Store.objects.order_by("pk").first()
        levels = tier_levels()
        scopes = {
            "all": Scope(start=start, end=end),
            "store_tier": Scope(
                start=start,
                end=end,
                store_key=store.pk if store else 0,
                tier_key=levels[-1].pk if levels else 0,
            ),
        }
        samples = max(options.get("samples") or 0, 3)
        for name in PANELS:
            line: dict[str, Any] = {"panel": name}
            for label, scope in scopes.items():
                timings = []
                for _ in range(samples + 2):
                    began = time.perf_counter()
                    panel = panel_build(name=name, scope=scope)
                    render_to_string("analytics/_panel.html", {"panel": panel, "query": ""})
                    timings.append(time.perf_counter() - began)
                # The first two warm the caches (templates, prepared plans).
                median = round(statistics.median(timings[2:]) * 1000, 2)
                line["median_ms" if label == "all" else f"{label}_median_ms"] = median
            log(f"{name}: {line}")
            out.write(json.dumps(line) + "\n")
            out.flush()
        result: dict[str, Any] = {"job": "churn_train"}
        if options.get("no_train"):
            return result
        day = (
            datetime.date.fromisoformat(options["date"])
            if options.get("date")
            else timezone.localdate()
        )
        began = time.perf_counter()
        model = churn_train(as_of=day)
        result["seconds"] = round(time.perf_counter() - began, 1)
        result["kind"] = model.kind
        return result
