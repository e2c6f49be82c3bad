"""Timing HTTP requests for `bench api` and `bench pages` (devtools/benchmarks/serving.py).

Two ways to send the same `Call`s:

- in process (`wsgi_call`): straight into Django's WSGI handler with a hand-built environ, the
  way gunicorn calls it, so nothing is timed that gunicorn does not do (django.test.Client
  would also instrument template rendering);
- through the server (`gunicorn_running` + `load_run`): gunicorn started the repository's own
  way (`gunicorn --config gunicorn.conf.py loyalty_site.wsgi`), driven by an asyncio load
  generator (aiohttp) with one keep-alive connection per client.

Requests say they come through a TLS-terminating proxy (`X-Forwarded-Proto: https`), so
production's HTTPS redirect lets them through, as it does behind the real proxy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

HOST = "127.0.0.1"
GUNICORN_CONF = "gunicorn.conf.py"
SERVER_START_SECONDS = 120
SERVER_STOP_SECONDS = 35  # gunicorn's graceful timeout is 30 s by default


@dataclass(frozen=True)
class Call:
    """One request: `headers` by their HTTP names (`Authorization`, `Cookie`)."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def percentile(ordered: list[float], share: float) -> float:
    """The value `share` of the way up an ordered list (the nearest rank below)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# --- In process --------------------------------------------------------------------------


def wsgi_environ(call: Call) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": call.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": call.path,
        "QUERY_STRING": call.query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": HOST,
        "HTTP_HOST": HOST,
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(call.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if call.body:
        environ["CONTENT_LENGTH"] = str(len(call.body))
        environ["CONTENT_TYPE"] = "application/json"
    for name, value in call.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def wsgi_call(handler: Callable[..., Any], call: Call) -> tuple[int, bytes]:
    """Send `call` through the WSGI `handler`; its status and the whole body, read and closed
    (closing sends request_finished, as gunicorn's does)."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Callable:
        statuses.append(status)
        return lambda data: None

    response = handler(wsgi_environ(call), start_response)
    try:
        body = b"".join(response)
    finally:
        if hasattr(response, "close"):
            response.close()
    return int(statuses[0].split(" ", 1)[0]), body


# --- Through gunicorn --------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    workers: int
    threads: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# The figures gunicorn will run with: the conf file over gunicorn's defaults (which read
# WEB_CONCURRENCY themselves), worked out by gunicorn's own Config in the server's environment.
_CONF_FIGURES = """
import json, runpy, sys
from gunicorn.config import Config
config = Config()
for name, value in runpy.run_path(sys.argv[1]).items():
    if name in config.settings:
        config.set(name, value)
print(json.dumps({"workers": config.workers, "threads": config.threads}))
"""


def _conf_figures(conf: Path, env: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and file
        [sys.executable, "-c", _CONF_FIGURES, str(conf)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise CommandError(f"{GUNICORN_CONF} could not be read:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _log_tail(path: str, lines: int = 40) -> str:
    with open(path, encoding="utf-8", errors="replace") as log_file:
        return "".join(log_file.readlines()[-lines:])


def _wait_healthy(process: subprocess.Popen, url: str, log_path: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        url + "/healthz", headers={"X-Forwarded-Proto": "https"}
    )
    deadline = time.monotonic() + SERVER_START_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"gunicorn exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
                last = f"{response.status}"
        except urllib.error.HTTPError as error:
            last = f"{error.code} {error.read()[:200]!r}"
        except OSError as error:
            last = f"{type(error).__name__}"
        time.sleep(0.2)
    raise CommandError(
        f"gunicorn did not answer /healthz with 200 in {SERVER_START_SECONDS} s "
        f"(last: {last}):\n{_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
    try:
        process.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        # Its own session (start_new_session): the group is gunicorn and its workers alone.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def gunicorn_conf() -> Path:
    """The repository's gunicorn.conf.py; a clear error when there is none."""
    conf = Path(settings.BASE_DIR) / GUNICORN_CONF
    if not conf.exists():
        raise CommandError(
            f"There is no {GUNICORN_CONF} at {conf.parent}: server mode starts gunicorn the "
            f"way production does (gunicorn --config {GUNICORN_CONF} loyalty_site.wsgi)."
        )
    return conf


@contextlib.contextmanager
def gunicorn_running(
    *, settings_module: str, env: dict[str, str], log: Callable[[str], None]
) -> Iterator[Server]:
    """gunicorn serving this checkout with `settings_module`, on a free port of 127.0.0.1,
    until the block ends (also by Ctrl-C or an error); `env` is added to this process's."""
    conf = gunicorn_conf()
    port = _free_port()
    server_env = {
        **os.environ,
        **env,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "GUNICORN_BIND": f"{HOST}:{port}",
    }
    figures = _conf_figures(conf, server_env)
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept until the server stops
        prefix="bench-gunicorn-", suffix=".log", delete=False
    )
    log(
        f"gunicorn --config {GUNICORN_CONF} loyalty_site.wsgi on {HOST}:{port}: "
        f"{figures['workers']} workers × {figures['threads']} threads, {settings_module} "
        f"(log {log_file.name}) …"
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and checkout
        [sys.executable, "-m", "gunicorn", "--config", str(conf), "loyalty_site.wsgi"],
        cwd=conf.parent,
        env=server_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Its own session: Ctrl-C in the terminal reaches this process, which stops it.
        start_new_session=True,
    )
    url = f"http://{HOST}:{port}"
    failed = True
    try:
        _wait_healthy(process, url, log_file.name)
        yield Server(url=url, workers=figures["workers"], threads=figures["threads"])
        failed = False
    finally:
        _stop(process)
        log_file.close()
        if failed:
            log(f"gunicorn's log is kept at {log_file.name}")
        else:
            os.unlink(log_file.name)


# --- The load generator ------------------------------------------------------------------


@dataclass
class LoadResult:
    per_s: float
    p50_ms: float
    p95_ms: float
    requests: int
    errors: int
    first_error: str


async def _load(
    *,
    url: str,
    call: Callable[[int, int], Call],
    ok: frozenset[int],
    clients: int,
    warmup: float,
    seconds: float,
) -> LoadResult:
    import aiohttp

    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    measure_until = measure_from + seconds
    latencies: list[float] = []
    errors = 0
    first_error = ""

    async def client(index: int) -> None:
        nonlocal errors, first_error
        # One keep-alive connection per client, as a till or a browser keeps one; no cookie
        # jar: each call sends the session it is for.
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            number = 0
            while (began := loop.time()) < measure_until:
                request = call(index, number)
                number += 1
                headers = {"X-Forwarded-Proto": "https", **request.headers}
                if request.body:
                    headers["Content-Type"] = "application/json"
                problem = ""
                try:
                    async with session.request(
                        request.method,
                        url + request.target,
                        data=request.body or None,
                        headers=headers,
                        allow_redirects=False,
                    ) as response:
                        body = await response.read()
                        if response.status not in ok:
                            problem = f"{response.status} for {request.target}: {body[:300]!r}"
                except (aiohttp.ClientError, TimeoutError) as error:
                    problem = f"{type(error).__name__}: {error}"
                if began < measure_from:
                    continue  # warm-up
                if problem:
                    errors += 1
                    first_error = first_error or problem
                else:
                    latencies.append((loop.time() - began) * 1000)

    await asyncio.gather(*(client(index) for index in range(clients)))
    latencies.sort()
    return LoadResult(
        per_s=round(len(latencies) / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(latencies, 0.50), 2),
        p95_ms=round(percentile(latencies, 0.95), 2),
        requests=len(latencies) + errors,
        errors=errors,
        first_error=first_error,
    )


def load_run(
    *,
    url: str,
    call: Callable[[int, int], Call],
    ok: frozenset[int],
    clients: int,
    warmup: float,
    seconds: float,
) -> LoadResult:
    """`clients` clients each sending `call(client, n)` back to back for `warmup` + `seconds`;
    the figures of the requests sent in the last `seconds` (per_s: answered with a status in
    `ok`, per second)."""

    def run() -> LoadResult:
        return asyncio.run(
            _load(url=url, call=call, ok=ok, clients=clients, warmup=warmup, seconds=seconds)
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # This thread already runs an event loop (Playwright's sync API earlier in a test
    # process): the load gets a thread, and a loop, of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
