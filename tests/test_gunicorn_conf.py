"""gunicorn.conf.py, loaded by gunicorn's own command-line reader as the Dockerfile runs it.

Nothing here starts a server: gunicorn reads the file and the environment into its Config
the way `gunicorn --config gunicorn.conf.py loyalty_site.wsgi` does before it forks.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from types import SimpleNamespace

import gunicorn.config
import pytest
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.config import Config
from gunicorn.glogging import Logger

ROOT = Path(__file__).resolve().parent.parent

COMMAND = ["gunicorn", "--config", "gunicorn.conf.py", "loyalty_site.wsgi"]
VARIABLES = (
    "GUNICORN_BIND",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_PRELOAD",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_MAX_REQUESTS_JITTER",
    "GUNICORN_ACCESS_LOG",
    "GUNICORN_CONTROL_SOCKET",
    "GUNICORN_CMD_ARGS",
)


@pytest.fixture
def gunicorn_config(monkeypatch):
    """gunicorn_config(command=COMMAND, **environment) → gunicorn's Config for that start."""

    def load(command: list[str] = COMMAND, **environment: str) -> Config:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        # Started in the repository: gunicorn's chdir default is the directory it was
        # imported in, whichever that was for this test process.
        monkeypatch.chdir(ROOT)
        monkeypatch.setattr(gunicorn.config.Chdir, "default", str(ROOT))
        monkeypatch.setattr("sys.argv", command)
        return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg

    return load


def test_by_default_it_serves_port_8000_with_processes_and_threads_for_the_cores(
    gunicorn_config,
):
    config = gunicorn_config()

    cores = len(os.sched_getaffinity(0))
    assert config.bind == ["0.0.0.0:8000"]
    assert config.workers == cores + 1
    assert config.threads == 2
    assert config.worker_class_str == "gthread"
    assert config.preload_app is True
    assert config.keepalive == 5
    assert (config.timeout, config.graceful_timeout) == (30, 30)
    assert (config.max_requests, config.max_requests_jitter) == (10_000, 1_000)
    assert config.worker_tmp_dir == ("/dev/shm" if Path("/dev/shm").is_dir() else None)
    assert (config.accesslog, config.errorlog) == ("-", "-")
    assert config.control_socket_disable is True


def test_the_environment_changes_every_setting(gunicorn_config):
    config = gunicorn_config(
        GUNICORN_BIND="127.0.0.1:9001",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="4",
        GUNICORN_PRELOAD="false",
        GUNICORN_KEEPALIVE="75",
        GUNICORN_TIMEOUT="60",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        GUNICORN_MAX_REQUESTS="500",
        GUNICORN_MAX_REQUESTS_JITTER="50",
        GUNICORN_ACCESS_LOG="/tmp/access.log",
        GUNICORN_CONTROL_SOCKET="/tmp/gunicorn.ctl",
    )

    assert config.bind == ["127.0.0.1:9001"]
    assert (config.workers, config.threads, config.worker_class_str) == (3, 4, "gthread")
    assert config.preload_app is False
    assert config.keepalive == 75
    assert (config.timeout, config.graceful_timeout) == (60, 20)
    assert (config.max_requests, config.max_requests_jitter) == (500, 50)
    assert config.accesslog == "/tmp/access.log"
    assert config.control_socket == "/tmp/gunicorn.ctl"
    assert config.control_socket_disable is False


def test_one_thread_means_the_sync_worker(gunicorn_config):
    config = gunicorn_config(GUNICORN_THREADS="1")

    assert (config.threads, config.worker_class_str) == (1, "sync")


def test_an_empty_access_log_turns_it_off(gunicorn_config):
    assert gunicorn_config(GUNICORN_ACCESS_LOG="").accesslog is None


def test_the_platforms_port_is_used_when_no_address_is_given(gunicorn_config):
    assert gunicorn_config(PORT="5000").bind == ["0.0.0.0:5000"]
    assert gunicorn_config(PORT="5000", GUNICORN_BIND="unix:/run/web.sock").bind == [
        "unix:/run/web.sock"
    ]


def test_gunicorn_reads_the_file_even_without_the_config_flag(gunicorn_config):
    config = gunicorn_config(["gunicorn", "loyalty_site.wsgi"], WEB_CONCURRENCY="3")

    assert config.workers == 3
    assert config.worker_class_str == "gthread"


def test_flags_on_the_command_line_still_win(gunicorn_config):
    config = gunicorn_config([*COMMAND, "--workers", "2"], WEB_CONCURRENCY="3")

    assert config.workers == 2


def test_an_access_log_line_has_the_client_request_status_size_and_time(gunicorn_config, tmp_path):
    access_log = tmp_path / "access.log"
    logger = Logger(gunicorn_config(GUNICORN_ACCESS_LOG=str(access_log)))
    response = SimpleNamespace(status="200 OK", sent=1234, headers=[])
    request = SimpleNamespace(headers=[("X-FORWARDED-FOR", "203.0.113.7")])
    environ = {
        "REMOTE_ADDR": "10.0.0.2",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/members/lookup?phone=13912345678",
        "PATH_INFO": "/api/v1/members/lookup",
        "QUERY_STRING": "phone=13912345678",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": "till/1.0",
    }
    took = datetime.timedelta(milliseconds=12, microseconds=345)

    logger.access(response, request, environ, took)

    line = access_log.read_text().rstrip("\n")
    assert line.startswith('10.0.0.2 "203.0.113.7" [')
    assert line.endswith('"GET /api/v1/members/lookup" 200 1234 12345us "till/1.0"')
    # Phone numbers in query strings stay out of the log.
    assert "13912345678" not in line
