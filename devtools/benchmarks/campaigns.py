"""`bench campaigns`: launching and sending a bonus-points campaign to many members.

`bench campaigns --members 200000` takes that many active members of the database in
DATABASE_URL (random, fixed by `--seed`), launches a bonus campaign to them (the audience
frozen with its 10 % holdout) and sends it in CAMPAIGN_BATCH_SIZE batches through the
ledger's bulk posting, printing one JSON line: `launch_s`, `send_s` and `postings_per_s`
(postings over the send's time). Afterwards it removes the campaign and its audience; the
ledger rows stay (the ledger is append-only), and the line says how many.
"""

from __future__ import annotations

import random
import time
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register


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

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> list[dict]:
        return [self._bonus(options=options, log=log)]

    def _bonus(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        from django.conf import settings

        from campaigns.launch import campaign_launch_members, campaign_send
        from campaigns.models import Campaign
        from members.models import Member
        from points.models import LedgerTransaction

        ids = list(
            Member.objects.filter(status=Member.Status.ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        wanted = min(options["members"], len(ids))
        audience = sorted(random.Random(options["seed"]).sample(ids, wanted))  # noqa: S311
        now = timezone.now()
        campaign = Campaign.objects.create(
            name=f"bench {now:%Y-%m-%d %H:%M:%S}",
            kind=Campaign.Kind.BONUS,
            bonus_points=options["points"],
            status=Campaign.Status.SCHEDULED,
            scheduled_at=now,
        )
        try:
            log(f"launching a bonus campaign to {wanted:,} of {len(ids):,} active members …")
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

    @staticmethod
    def _remove(campaign: Any) -> None:
        from campaigns.models import Campaign, CampaignMember

        with transaction.atomic():
            CampaignMember.objects.filter(campaign_id=campaign.pk).delete()
            Campaign.objects.filter(pk=campaign.pk).delete()
