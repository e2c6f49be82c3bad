"""A real Celery worker in a subprocess, against the test database and Redis.

The worker reads what the test committed (use `transactional_db`), and the test reads what
the worker committed. Each test gets its own queue, so a message left behind by one test
(a killed worker leaves its task unacknowledged) is never picked up by another.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from loyalty_site.celery import app

# Generous: a busy 2-core machine takes many seconds to boot a worker; only failures wait.
START_TIMEOUT = 60.0
# One process in the pool, as in production's prefork; nothing to gossip or synchronise
# with, so it starts in fewer round trips.
WORKER_ARGS = shlex.split(
    "-m celery -A loyalty_site worker --pool=prefork --concurrency=1 --loglevel=INFO"
    " --without-gossip --without-mingle --without-heartbeat"
)


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, worker=None):
    """Poll `condition` until it returns something truthy; fail with the worker's log if not.

    A real worker runs on its own clock: this is the one place the tests wait on time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            log = worker.log_tail() if worker is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{log}")
        time.sleep(0.02)


@dataclass
class Worker:
    process: subprocess.Popen
    queue: str
    log_path: Path
    stopped: bool = field(default=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "--- worker log (tail) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self) -> None:
        # Tasks sent before this wait in the queue; only a test that kills needs to know.
        wait_for(
            lambda: " ready." in self.log(), timeout=START_TIMEOUT, what="the worker", worker=self
        )

    def pool_children(self) -> list[int]:
        """The prefork pool's processes: the children of the worker's main process."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # Fields after the command name (which may hold spaces) start with state, ppid.
                after_name = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(after_name[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        # The test is over and nothing needs finishing: kill the whole group, pool included.
        # A task it held unacknowledged stays on this test's queue, which nobody reads again.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _test_database_url() -> str:
    """DATABASE_URL, pointing at the test database pytest-django made from it."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def eager_off():
    """Send tasks to the broker from this process (the test settings run them in-process)."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def celery_worker(transactional_db, eager_off, tmp_path) -> Iterator[Callable[..., Worker]]:
    """start(**env) → a worker starting on a fresh queue, stopped at the end of the test.

    It boots (a few seconds) while the test builds its data; tasks sent before it is ready
    wait in its queue.
    """
    workers: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        queue = f"test-{uuid.uuid4().hex[:12]}"
        env = {
            **os.environ,
            # The demo settings without DEBUG: with REDIS_URL set, tasks are not run eagerly.
            "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.dev",
            "DEBUG": "false",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "SMS_BACKEND": "members.sms.ConsoleBackend",
            # Django's system checks at worker start cost seconds; the suite runs them itself.
            "CELERY_SKIP_CHECKS": "1",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        log_path = tmp_path / f"{queue}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, *WORKER_ARGS, "-Q", queue, "-n", f"{queue}@%h"],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group, so stopping it stops its pool too.
                start_new_session=True,
            )
        worker = Worker(process=process, queue=queue, log_path=log_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
