"""Points benchmarks for `manage.py bench` (registry: core/benchmarks.py).

`bench ledger --writers 8 --seconds 20` drives `services.purchase_record` from concurrent
writer processes (each with its own database connection, so the GIL is not what is
measured) against the configured database: random members of the loaded data, unique
receipts. It runs one variant after the other and prints a JSON line for each (`variant`):
`promotion` (three multiplier campaigns running for the bench's members through the
campaigns' promotion provider, removed afterwards), `cashier` (recorded by a signed-in member
of store staff: audit entry), `points_payment` (¥1 of each purchase paid with points), and
`plain` last. `bench purchase_import --rows N [--writers W]` times the CSV import of purchases.
"""

from __future__ import annotations

import csv
import datetime
import io
import multiprocessing
import os
import random
import statistics
import threading
import time
from argparse import ArgumentParser
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connection, connections
from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register

MAX_BENCH_MEMBERS = 100_000


VARIANTS = ("promotion", "cashier", "points_payment", "plain")


def _bench_promotions_launch(members: list[Any], stores: list[Any]) -> list[Any]:
    """The `promotion` variant's campaigns, launched for the bench's members (10 % held
    out): ×2 everywhere, ×1.5 at half the stores, ×3 on apparel (the bench's purchases have
    no lines, so it never applies, but every purchase checks it)."""
    from campaigns.launch import campaign_launch_members
    from campaigns.models import Campaign

    now = timezone.now()
    audience = sorted(member.pk for member in members)
    campaigns = []
    for name, multiplier, at_stores, categories in (
        ("bench ×2", Decimal(2), [], []),
        ("bench ×1.5", Decimal("1.5"), stores[: max(1, len(stores) // 2)], []),
        ("bench ×3 apparel", Decimal(3), [], ["apparel"]),
    ):
        campaign = Campaign.objects.create(
            name=name,
            kind=Campaign.Kind.MULTIPLIER,
            multiplier=multiplier,
            starts_at=now - datetime.timedelta(hours=1),
            ends_at=now + datetime.timedelta(days=1),
            categories=categories,
            status=Campaign.Status.SCHEDULED,
            scheduled_at=now,
        )
        campaign.stores.set(at_stores)
        campaigns.append(campaign_launch_members(campaign=campaign, now=now, member_ids=audience))
    return campaigns


def _bench_promotions_remove(campaigns: list[Any]) -> None:
    from django.db import transaction

    from campaigns.models import Campaign, CampaignMember
    from campaigns.promotions import promotions_cache_clear

    ids = [campaign.pk for campaign in campaigns]
    with transaction.atomic():
        CampaignMember.objects.filter(campaign_id__in=ids).delete()
        Campaign.objects.filter(pk__in=ids).delete()
    promotions_cache_clear()


def _writer(
    *,
    index: int,
    members: list[Any],
    stores: list[Any],
    start_at: float,
    stop_at: float,
    token: str,
    results: Any,
    actor: Any = None,
    points_to_use: int = 0,
) -> None:
    """One writer: purchases until `stop_at`; puts (count, latencies in ms, errors, first error)."""
    from points.services import purchase_record

    rng = random.Random(index)  # noqa: S311 - load, not secrets
    latencies: list[float] = []
    errors = 0
    first_error = ""
    count = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        member = rng.choice(members)
        store = rng.choice(stores)
        amount = Decimal(rng.randrange(100, 100_000)) / 100
        began = time.perf_counter()
        try:
            purchase_record(
                member=member,
                store=store,
                receipt_no=f"B{token}-{index}-{count}",
                occurred_at=timezone.now(),
                amount=amount,
                actor=actor,
                points_to_use=points_to_use,
            )
        except Exception as error:  # counted and reported, the run goes on
            errors += 1
            first_error = first_error or f"{type(error).__name__}: {error}"
        latencies.append((time.perf_counter() - began) * 1000)
        count += 1
    connections.close_all()
    results.put((count - errors, latencies, errors, first_error))


def _process_writer(kwargs: dict[str, Any]) -> None:
    # A forked child shares the parent's open sockets: forget (never close) any connection
    # it inherited, so it opens its own and the parent's stays intact.
    for inherited in connections.all(initialized_only=True):
        inherited.connection = None
    _writer(**kwargs)


@benchmark_register
class LedgerBenchmark(Benchmark):
    name = "ledger"
    help = "Record purchases from concurrent writers through the purchase service; time them."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--writers", type=int, default=8, help="Concurrent writers.")
        parser.add_argument("--seconds", type=float, default=20, help="How long to run.")
        parser.add_argument(
            "--threads",
            action="store_true",
            help="Writers as threads, not processes (always so on SQLite).",
        )
        parser.add_argument(
            "--variants",
            default=",".join(VARIANTS),
            help=f"Comma-separated, run in this order (default {','.join(VARIANTS)}).",
        )
        parser.add_argument(
            "--load-members",
            type=int,
            default=10_000,
            help="Members loadgen creates first when the database has none.",
        )

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> list[dict[str, Any]]:
        from devtools.loadgen import loadgen
        from members.models import Member, Store

        if not Member.objects.exists():
            log(f"no members yet: loadgen --members {options['load_members']:,} …")
            loadgen(members=options["load_members"], purchases=0)
        members = list(
            Member.objects.filter(status=Member.Status.ACTIVE).order_by("?")[:MAX_BENCH_MEMBERS]
        )
        stores = list(Store.objects.filter(is_active=True))
        results = []
        for variant in options["variants"].split(","):
            if variant not in VARIANTS:
                raise ValueError(f"unknown variant {variant}: one of {', '.join(VARIANTS)}")
            results.append(
                {"variant": variant, **self._variant(variant, members, stores, options, log)}
            )
        return results

    def _variant(
        self,
        variant: str,
        members: list[Any],
        stores: list[Any],
        options: dict[str, Any],
        log: Callable[[str], None],
    ) -> dict[str, Any]:
        writers = max(1, options["writers"])
        seconds = options["seconds"]
        token = os.urandom(4).hex()
        threads = options["threads"] or connection.vendor == "sqlite"
        extra: dict[str, Any] = {}
        if variant == "cashier":
            extra["actor"] = _bench_cashier(stores)
        elif variant == "points_payment":
            extra["points_to_use"] = _bench_points_ready(members, seconds=seconds, log=log)
        promotions = []
        if variant == "promotion":
            log("promotion: launching three multiplier campaigns for the bench's members …")
            promotions = _bench_promotions_launch(members, stores)
        try:
            log(
                f"{variant}: {writers} writer {'threads' if threads else 'processes'} for "
                f"{seconds:g}s, {len(members):,} members, {len(stores)} stores …"
            )
            return self._measure(
                members=members,
                stores=stores,
                writers=writers,
                seconds=seconds,
                token=token,
                threads=threads,
                extra=extra,
                log=log,
            )
        finally:
            # Their purchases and ledger rows stay (append-only); the campaigns go.
            _bench_promotions_remove(promotions)

    def _measure(
        self,
        *,
        members: list[Any],
        stores: list[Any],
        writers: int,
        seconds: float,
        token: str,
        threads: bool,
        extra: dict[str, Any],
        log: Callable[[str], None],
    ) -> dict[str, Any]:
        start_at = time.time() + (0.2 if threads else 1.0)
        stop_at = start_at + seconds
        common = {
            "members": members,
            "stores": stores,
            "start_at": start_at,
            "stop_at": stop_at,
            "token": token,
            **extra,
        }
        if threads:
            import queue

            results: Any = queue.Queue()
            workers = [
                threading.Thread(target=_writer, kwargs={"index": i, "results": results, **common})
                for i in range(writers)
            ]
        else:
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            connections.close_all()  # the children must not share the parent's socket
            workers = [
                context.Process(
                    target=_process_writer,
                    args=({"index": i, "results": results, **common},),
                )
                for i in range(writers)
            ]
        for worker in workers:
            worker.start()
        collected = [results.get() for _worker in workers]
        for worker in workers:
            worker.join()
        done = sum(count for count, _latencies, _errors, _first in collected)
        errors = sum(errors for _count, _latencies, errors, _first in collected)
        latencies = sorted(
            value for _count, values, _errors, _first in collected for value in values
        )
        if errors:
            first = next(first for *_rest, first in collected if first)
            log(f"{errors:,} purchases failed, the first with {first}")

        def percentile(share: float) -> float:
            if not latencies:
                return 0.0
            return latencies[min(len(latencies) - 1, int(len(latencies) * share))]

        log(f"{done:,} purchases in {seconds:g}s; mean {statistics.fmean(latencies or [0]):.1f} ms")
        return {
            "purchases_per_s": round(done / seconds, 1) if seconds else 0,
            "p50_ms": round(percentile(0.50), 2),
            "p95_ms": round(percentile(0.95), 2),
            "writers": writers,
            "members": len(members),
        }


def _bench_cashier(stores: list[Any]) -> Any:
    """A signed-in member of store staff acting for every store of the bench."""
    from members.models import User

    user = User.objects.filter(email="bench-cashier@example.com").first()
    if user is None:
        user = User.objects.create_user(email="bench-cashier@example.com", password=None)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.stores.add(*stores)
    return User.objects.get(pk=user.pk)


def _bench_points_ready(members: list[Any], *, seconds: float, log: Callable[[str], None]) -> int:
    """Points enough for the `points_payment` variant: each member's account topped up with
    an opening balance (`points_credit_bulk`), so no purchase runs short; returns the points
    each purchase uses (¥1's worth)."""
    from points.earning import policy_get
    from points.ledger import expiry_for
    from points.ledger_bulk import BulkCredit, points_credit_bulk
    from points.models import Account, LedgerTransaction

    per_yuan = policy_get().points_per_yuan
    # At most ~3,000 purchases a second spread over the members, with room to spare.
    needed = per_yuan * (3 + int(3000 * seconds / max(len(members), 1)))
    balances = dict(Account.objects.filter(member__in=members).values_list("member_id", "balance"))
    now = timezone.now()
    token = os.urandom(4).hex()
    credits = [
        BulkCredit(
            member_id=member.pk,
            points=needed * 2,
            key=f"bench:topup:{token}:{member.pk}",
            fingerprint=token,
            source=LedgerTransaction.Source.IMPORT,
            source_ref="bench",
            occurred_at=now,
            available_at=now,
            expires_at=expiry_for(now),
            kind=LedgerTransaction.Kind.ADJUST,
            counts_as_earned=False,
        )
        for member in members
        if balances.get(member.pk, 0) < needed
    ]
    if credits:
        log(f"points_payment: topping up {len(credits):,} accounts with {needed * 2:,} points …")
        from django.db import transaction

        for start in range(0, len(credits), 5000):
            with transaction.atomic():
                points_credit_bulk(
                    credits=credits[start : start + 5000],
                    counter_kind=Account.Kind.ADJUSTMENT,
                    now=now,
                )
    return per_yuan


# The codes the synthetic file uses, with their names: the import accepts list codes only.
BENCH_CATEGORIES = {
    "apparel": ("服装", "Apparel"),
    "cosmetics": ("美妆", "Cosmetics"),
    "snacks": ("零食", "Snacks"),
}


def synthetic_purchases_csv(*, rows: int, seed: int | None = None, bad_ratio: float = 0.0) -> bytes:
    """A till export of `rows` purchases by the members in the database."""
    from members.models import Member, Store

    rng = random.Random(seed)  # noqa: S311 - test data
    numbers = list(Member.objects.filter(status="active").values_list("member_no", flat=True))
    stores = list(Store.objects.values_list("code", flat=True))
    token = os.urandom(4).hex()
    now = timezone.localtime()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("store", "receipt_no", "member_no", "occurred_at", "amount", "category"))
    categories = ("", "", "", *BENCH_CATEGORIES)
    for index in range(rows):
        when = now - datetime.timedelta(seconds=rng.randrange(365 * 86400))
        row = [
            rng.choice(stores),
            f"I{token}-{index:08d}",
            rng.choice(numbers),
            when.strftime("%Y-%m-%dT%H:%M:%S"),
            f"{rng.randrange(100, 100_000) / 100:.2f}",
            rng.choice(categories),
        ]
        if rng.random() < bad_ratio:
            row[2] = "M000000000"
        writer.writerow(row)
    return out.getvalue().encode()


@benchmark_register
class PurchaseImportBenchmark(Benchmark):
    name = "purchase_import"
    help = "Import a synthetic purchases CSV (members from the database) and time it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        from points.imports import PURCHASE_IMPORT

        writers = PURCHASE_IMPORT.writers
        parser.add_argument("--rows", type=int, default=200_000, help="Rows in the file.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed.")
        parser.add_argument(
            "--writers",
            type=int,
            default=writers,
            help=f"PostgreSQL connections writing side by side (default {writers}).",
        )
        parser.add_argument(
            "--history",
            action="store_true",
            help="Import as history: purchases, lines and qualifying activity, no points.",
        )

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        from core.imports import ImportProgress, import_file
        from devtools.loadgen import loadgen
        from members.models import Member
        from points.catalogue import category_ensure

        if not Member.objects.exists():
            log("no members yet: loadgen --members 10,000 …")
            loadgen(members=10_000, purchases=0)
        for code, (name_zh, name_en) in BENCH_CATEGORIES.items():
            category_ensure(code=code, name_zh=name_zh, name_en=name_en)
        rows = options["rows"]
        content = synthetic_purchases_csv(rows=rows, seed=options["seed"])
        log(
            f"importing {rows:,} purchases ({len(content) / 1e6:.1f} MB), "
            f"{'as history, ' if options['history'] else ''}"
            f"{options['writers']} writer(s), load average {os.getloadavg()[0]:.2f} …"
        )

        def progress(step: ImportProgress) -> None:
            log(f"{step.processed:,} / {step.total:,} rows · {step.rows_per_second:,.0f} rows/s")

        started = time.monotonic()
        points_import = import_file(
            kind="purchases",
            file_name=f"bench-{rows}.csv",
            content=content,
            actor_label="manage.py bench purchase_import",
            options={"history": True} if options["history"] else {},
            progress=progress,
            writers=options["writers"],
        )
        seconds = time.monotonic() - started
        # The machine's load is part of the figure: the database shares its two cores.
        log(f"load average after: {os.getloadavg()[0]:.2f}")
        return {
            "job": "import_purchases_history" if options["history"] else "import_purchases",
            "rows": points_import.processed_rows,
            "imported": points_import.created_count,
            "seconds": round(seconds, 3),
            "rows_per_s": round(points_import.processed_rows / seconds) if seconds else None,
            "writers": options["writers"],
        }
