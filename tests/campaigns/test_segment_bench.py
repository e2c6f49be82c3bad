"""`bench segments` prints a line per realistic segment with its count and time, and leaves
no segment of its own behind."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from campaigns.models import Segment

from .segment_population import population


def test_a_line_per_segment_and_nothing_left_behind(db):
    population()
    out = io.StringIO()
    call_command("bench", "segments", "--samples", "1", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    segments = [line for line in lines if "segment" in line]
    assert len(segments) == 7
    assert all(line["count_ms"] > 0 and line["funnel_ms"] > 0 for line in segments)
    counts = {line["segment"]: line["count"] for line in segments}
    # The population's gold members: a (high churn risk) and x (closed, never counted).
    assert counts["gold+ at high churn risk"] == 1
    # The bench counts as of now, months after the population's last purchase (July 2026).
    assert counts["bought at two stores in 30 days"] == 0
    assert lines[-1]["slowest_count_ms"] == max(line["count_ms"] for line in segments)
    assert not Segment.objects.exists()
