"""The registry of `manage.py bench NAME`: apps and devtools add their benchmarks to it.

The bench command (devtools) imports every app's `benchmarks` module, so a module can
register a benchmark with `@benchmark_register` without anything importing it. A benchmark
prints progress through `log` and returns the result that the command prints as the last
line of its output, as JSON.
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, ClassVar


class Benchmark:
    name: ClassVar[str]
    help: ClassVar[str] = ""

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Add this benchmark's own options."""

    def run(self, *, options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
        raise NotImplementedError


BENCHMARKS: dict[str, type[Benchmark]] = {}


def benchmark_register(cls: type[Benchmark]) -> type[Benchmark]:
    BENCHMARKS[cls.name] = cls
    return cls
