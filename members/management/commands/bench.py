"""`manage.py bench NAME [options]`: run one registered benchmark and print its result.

Benchmarks live in each app's `benchmarks` module (see members/benchmarks.py). Progress
goes to stderr; the last line of stdout is the result as one JSON object.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import autodiscover_modules

from members.benchmarks import BENCHMARKS


class Command(BaseCommand):
    help = "Run a benchmark, e.g. `bench import --rows 200000`; prints a JSON result last."

    def add_arguments(self, parser: CommandParser) -> None:
        autodiscover_modules("benchmarks")
        subparsers = parser.add_subparsers(dest="benchmark", required=True, metavar="NAME")
        for name, benchmark in sorted(BENCHMARKS.items()):
            benchmark().add_arguments(subparsers.add_parser(name, help=benchmark.help))

    def handle(self, *args, benchmark: str, **options: Any) -> None:
        def log(message: str) -> None:
            self.stderr.write(message)
            self.stderr.flush()

        result = BENCHMARKS[benchmark]().run(options=options, log=log)
        # A benchmark of several variants returns one result each: one JSON line each.
        for line in result if isinstance(result, list) else [result]:
            self.stdout.write(json.dumps(line, ensure_ascii=False))
