"""Members benchmarks for `manage.py bench` (registry: core/benchmarks.py), and the synthetic
member data (names, phone numbers, a member CSV) that loadgen and the tests draw on.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import random
import secrets
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from core.benchmarks import Benchmark, benchmark_register

# --- bench import -----------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
GIVEN_FEMALE = "芳娜敏静丽艳婷雪慧玲颖琳洁倩萍红霞燕佳欣怡悦诗雨晨梦思涵秀兰英华月莉媛瑶琪蕾薇晶"
GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳峰建国志文博睿轩晨"
# Three-digit prefixes where every following eight digits make a valid mobile number.
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *(f"18{d}" for d in range(10)),
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("170", "171", "173", "175", "176", "177", "178", "198", "199", "166", "145", "147"),
)
BENCH_STORES = (
    ("SH001", "上海南京路店", "上海"),
    ("BJ001", "北京王府井店", "北京"),
    ("GZ001", "广州天河店", "广州"),
)
HEADER = (
    "source_id",
    "phone",
    "name",
    "email",
    "gender",
    "birthday",
    "city",
    "home_store",
    "enrolled_at",
    "consent_sms",
    "consent_email",
)
BAD_KINDS = (
    "phone_invalid",
    "name_required",
    "date_invalid",
    "store_unknown",
    "phone_duplicate",
    "email_invalid",
    "consent_invalid",
)


def synthetic_members_csv(*, rows: int, bad_ratio: float = 0.01, seed: int | None = None) -> bytes:
    """A realistic export of `rows` members, about `bad_ratio` of them bad in known ways.

    Phones are unique within the file and drawn from 3 billion numbers, so runs against
    the same database rarely collide; source_ids carry a random run token so they never do.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible from a seed
    token = secrets.token_hex(4)
    space = len(MOBILE_PREFIXES) * 10**8
    numbers = rng.sample(range(space), rows)
    start = datetime.date(2012, 1, 1).toordinal()
    span = datetime.date(2025, 12, 31).toordinal() - start
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    phones: list[str] = []
    for index, number in enumerate(numbers):
        female = rng.random() < 0.55
        given = GIVEN_FEMALE if female else GIVEN_MALE
        name = rng.choice(SURNAMES) + "".join(rng.choice(given) for _ in range(rng.choice((1, 2))))
        national = MOBILE_PREFIXES[number // 10**8] + f"{number % 10**8:08d}"
        style = rng.random()
        phone = (
            national
            if style < 0.8
            else f"+86 {national[:3]} {national[3:7]} {national[7:]}"
            if style < 0.9
            else f"{national[:3]}-{national[3:7]}-{national[7:]}"
        )
        store, _store_name, city = rng.choice(BENCH_STORES)
        enrolled = datetime.date.fromordinal(start + rng.randrange(span))
        row = [
            f"B{token}-{index:07d}",
            phone,
            name,
            f"m{index}.{token}@example.com" if rng.random() < 0.3 else "",
            rng.choice(("女", "F")) if female else rng.choice(("男", "M", "")),
            datetime.date(
                rng.randrange(1950, 2008), rng.randrange(1, 13), rng.randrange(1, 29)
            ).isoformat()
            if rng.random() < 0.8
            else "",
            city,
            store if rng.random() < 0.9 else "",
            enrolled.isoformat()
            if rng.random() < 0.7
            else f"{enrolled.isoformat()}T{rng.randrange(9, 22):02d}:{rng.randrange(60):02d}:00",
            rng.choice(("1", "0", "是", "否", "")),
            rng.choice(("yes", "no", "")),
        ]
        if phones and rng.random() < bad_ratio:
            kind = BAD_KINDS[index % len(BAD_KINDS)]
            if kind == "phone_invalid":
                row[1] = national[:7]
            elif kind == "name_required":
                row[2] = ""
            elif kind == "date_invalid":
                row[5] = "1990-02-30"
            elif kind == "store_unknown":
                row[7] = "XX999"
            elif kind == "phone_duplicate":
                row[1] = rng.choice(phones)
            elif kind == "email_invalid":
                row[3] = "not-an-email"
            else:
                row[9] = "maybe"
        phones.append(national)
        writer.writerow(row)
    return out.getvalue().encode()


@benchmark_register
class ImportBenchmark(Benchmark):
    name = "import"
    help = "Import a synthetic member CSV into the configured database and time it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--rows", type=int, default=200_000, help="Rows in the file.")
        parser.add_argument(
            "--bad-ratio", type=float, default=0.01, help="Share of deliberately bad rows."
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed for the file.")

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        # Imported here so that listing benchmarks does not load the import machinery.
        from core.imports import ImportProgress, import_file
        from members.services import store_ensure

        for code, store_name, city in BENCH_STORES:
            store_ensure(code=code, name=store_name, city=city)
        rows = options["rows"]
        log(f"generating {rows:,} rows …")
        content = synthetic_members_csv(
            rows=rows, bad_ratio=options["bad_ratio"], seed=options["seed"]
        )
        log(f"importing {len(content) / 1e6:.1f} MB …")

        def progress(step: ImportProgress) -> None:
            log(
                f"{step.processed:,} / {step.total:,} rows · {step.rows_per_second:,.0f} rows/s"
                f" · created {step.created:,} · bad {step.bad:,}"
            )

        started = timezone.now()
        member_import = import_file(
            kind="members",
            file_name=f"bench-{rows}.csv",
            content=content,
            actor_label="manage.py bench import",
            progress=progress,
        )
        seconds = (member_import.finished_at - started).total_seconds()
        log(
            f"created {member_import.created_count:,}, already imported "
            f"{member_import.existing_count:,}, bad {member_import.bad_count:,}"
        )
        return {
            "job": "import_members",
            "rows": member_import.processed_rows,
            "seconds": round(seconds, 3),
            "rows_per_s": round(member_import.processed_rows / seconds) if seconds else None,
            # Python and PostgreSQL share the machine's cores with whatever else runs: the
            # load average says how busy it was, which figures from a shared machine need.
            "load_1m": round(os.getloadavg()[0], 2),
        }
