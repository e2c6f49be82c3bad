"""`bench campaigns`: a campaign to many members, launched, sent and measured.

`bench campaigns --members 200000` takes that many active members of the database in
DATABASE_URL (random, fixed by `--seed`) and prints one JSON line per part (`--parts`):

- `bonus`: launch a bonus-points campaign to them (the audience frozen with its 10 %
  holdout) and send it in CAMPAIGN_BATCH_SIZE batches through the ledger's bulk posting:
  `launch_s`, `send_s` and `postings_per_s` (postings over the send's time);
- `messages`: a message-only SMS campaign to them launched at 10:00 Shanghai today (out
  of quiet hours), its messages enqueued (`messages_enqueue`) and dispatched through the
  console SMS backend (`outbox_dispatch`; the console's text goes to /dev/null):
  `enqueued_per_s`, `dispatched_per_s` and `messages_per_s` over both;
- `results`: a campaign to them launched 20 days before the last purchase in the data (so
  its 14-day window holds purchases), its results computed (`campaign_results_compute`):
  `results_s`.

Afterwards it removes its campaigns, their audiences and messages; the bonus's ledger rows stay (the
ledger is append-only), and the line says how many.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register

PARTS = ("bonus", "messages", "results")


@benchmark_register
class CampaignsBenchmark(Benchmark):
    name = "campaigns"
    help = (
        "Launch and send a bonus-points campaign to --members members (postings per second); "
        "removes the campaign afterwards, the ledger rows stay."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--members", type=int, default=200_000, help="Audience size.")
        parser.add_argument("--points", type=int, default=100, help="Bonus per member.")
        parser.add_argument("--seed", type=int, default=13, help="Which members (random).")
        parser.add_argument(
            "--parts",
            default=",".join(PARTS),
            help=f"Comma-separated, run in this order (default {','.join(PARTS)}).",
        )

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> list[dict]:
        from members.models import Member

        ids = list(
            Member.objects.filter(status=Member.Status.ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        wanted = min(options["members"], len(ids))
        audience = sorted(random.Random(options["seed"]).sample(ids, wanted))  # noqa: S311
        log(f"{wanted:,} of {len(ids):,} active members")
        parts = {"bonus": self._bonus, "messages": self._messages, "results": self._results}
        lines = []
        for part in options["parts"].split(","):
            if part not in parts:
                raise ValueError(f"unknown part {part}: one of {', '.join(PARTS)}")
            lines.append(parts[part](audience=audience, options=options, log=log))
        return lines

    def _bonus(
        self, *, audience: list[int], options: dict[str, Any], log: Callable[[str], None]
    ) -> dict[str, Any]:
        from django.conf import settings

        from campaigns.launch import campaign_launch_members, campaign_send
        from campaigns.models import Campaign
        from points.models import LedgerTransaction

        wanted = len(audience)
        now = timezone.now()
        campaign = Campaign.objects.create(
            name=f"bench {now:%Y-%m-%d %H:%M:%S}",
            kind=Campaign.Kind.BONUS,
            bonus_points=options["points"],
            status=Campaign.Status.SCHEDULED,
            scheduled_at=now,
        )
        try:
            log(f"bonus: launching a campaign to {wanted:,} members …")
            began = time.perf_counter()
            campaign = campaign_launch_members(campaign=campaign, now=now, member_ids=audience)
            launch_s = time.perf_counter() - began
            treated = campaign.audience_size - campaign.control_size
            log(f"launched in {launch_s:.1f}s; sending to {treated:,} treated members …")
            began = time.perf_counter()
            sent = campaign_send(campaign=campaign, now=now)
            send_s = time.perf_counter() - began
            posted = LedgerTransaction.objects.filter(
                source=LedgerTransaction.Source.CAMPAIGN, source_ref=str(campaign.pk)
            ).count()
        finally:
            self._remove(campaign)
        return {
            "bench": "campaign_bonus",
            "vendor": connection.vendor,
            "members": wanted,
            "treated": treated,
            "batch_size": settings.CAMPAIGN_BATCH_SIZE,
            "launch_s": round(launch_s, 2),
            "send_s": round(send_s, 2),
            "sent": sent,
            "postings": posted,
            "postings_per_s": round(posted / send_s) if send_s else 0,
            "ledger_rows_kept": posted,
            "note": "campaign and audience removed; its ledger postings stay (append-only)",
        }

    def _messages(
        self, *, audience: list[int], options: dict[str, Any], log: Callable[[str], None]
    ) -> dict[str, Any]:
        from campaigns import messages
        from campaigns.launch import campaign_launch_members
        from campaigns.models import Campaign, OutboxMessage

        # Out of quiet hours whatever the time the bench runs: every SMS is due at once.
        now = timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0)
        campaign = Campaign.objects.create(
            name=f"bench messages {now:%Y-%m-%d %H:%M:%S}",
            kind=Campaign.Kind.MESSAGE,
            status=Campaign.Status.SCHEDULED,
            scheduled_at=now,
            holdout_percent=0,
            send_sms=True,
            message_body_zh="{name}您好，本周会员日全场双倍积分。",
            message_body_en="Hello {name}, double points all week for members.",
        )
        try:
            campaign = campaign_launch_members(campaign=campaign, now=now, member_ids=audience)
            log(f"messages: enqueuing SMS to {len(audience):,} members …")
            began = time.perf_counter()
            enqueued = messages.messages_enqueue(campaign=campaign, member_ids=audience, now=now)
            enqueue_s = time.perf_counter() - began
            log(f"messages: {enqueued:,} enqueued in {enqueue_s:.1f}s; dispatching …")
            began = time.perf_counter()
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                dispatched = messages.outbox_dispatch(now=now)
            dispatch_s = time.perf_counter() - began
            statuses = dict(
                OutboxMessage.objects.filter(campaign=campaign)
                .values("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
        finally:
            with transaction.atomic():
                OutboxMessage.objects.filter(campaign_id=campaign.pk).delete()
            self._remove(campaign)
        return {
            "bench": "campaign_messages",
            "vendor": connection.vendor,
            "members": len(audience),
            "enqueued": enqueued,
            "dispatched": dispatched,
            "statuses": statuses,
            "enqueue_s": round(enqueue_s, 2),
            "dispatch_s": round(dispatch_s, 2),
            "enqueued_per_s": round(enqueued / enqueue_s) if enqueue_s else 0,
            "dispatched_per_s": round(dispatched / dispatch_s) if dispatch_s else 0,
            "messages_per_s": round(enqueued / (enqueue_s + dispatch_s))
            if enqueue_s + dispatch_s
            else 0,
            "note": "console SMS backend, its text discarded; messages removed afterwards",
        }

    def _results(
        self, *, audience: list[int], options: dict[str, Any], log: Callable[[str], None]
    ) -> dict[str, Any]:
        from django.db.models import Max

        from campaigns.launch import campaign_launch_members
        from campaigns.models import Campaign
        from campaigns.results import campaign_results_compute
        from points.models import Purchase

        now = timezone.now()
        last = Purchase.objects.aggregate(last=Max("occurred_at"))["last"] or now
        launched = min(last, now) - datetime.timedelta(days=20)
        campaign = Campaign.objects.create(
            name=f"bench results {now:%Y-%m-%d %H:%M:%S}",
            kind=Campaign.Kind.MESSAGE,
            status=Campaign.Status.SCHEDULED,
            scheduled_at=launched,
        )
        try:
            log(f"results: a campaign to {len(audience):,} members launched {launched:%Y-%m-%d} …")
            campaign = campaign_launch_members(campaign=campaign, now=launched, member_ids=audience)
            began = time.perf_counter()
            figures = campaign_results_compute(campaign=campaign, now=now)
            results_s = time.perf_counter() - began
        finally:
            self._remove(campaign)
        return {
            "bench": "campaign_results",
            "vendor": connection.vendor,
            "members": len(audience),
            "window_start": figures.window_start.isoformat() if figures.window_start else None,
            "results_s": round(results_s, 2),
        }

    @staticmethod
    def _remove(campaign: Any) -> None:
        from campaigns.models import Campaign, CampaignMember

        with transaction.atomic():
            CampaignMember.objects.filter(campaign_id=campaign.pk).delete()
            Campaign.objects.filter(pk=campaign.pk).delete()
