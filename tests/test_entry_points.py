"""Which settings each way of starting the site loads when DJANGO_SETTINGS_MODULE is unset.

gunicorn, the ASGI server and `celery -A loyalty_site` default to production settings, which
refuse DEBUG and a missing secret key; manage.py is the developer's and defaults to dev. Each
case runs in a fresh process whose environment holds only PATH, HOME and what the case sets,
so nothing from this test process (its own DJANGO_SETTINGS_MODULE) leaks in. The processes
start together: each imports the whole application, which takes seconds.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = secrets.token_urlsafe(50)

# The settings a process ended up with, printed as `celery report` prints them.
PRINT_SETTINGS = (
    "from django.conf import settings; "
    "print(f'SETTINGS_MODULE: {settings.SETTINGS_MODULE!r}'); "
    "print(f'DEBUG: {settings.DEBUG!r}')"
)
# gunicorn imports the application before it forks the workers (preload_app): a connection
# opened at import would be one socket shared by every worker.
PRINT_OPEN_CONNECTIONS = (
    "from django.db import connections; "
    "print(f'OPEN_CONNECTIONS: {[c.alias for c in connections.all() if c.connection]}')"
)
ENTRY_POINTS = {
    "wsgi": [
        sys.executable,
        "-c",
        f"import loyalty_site.wsgi; {PRINT_SETTINGS}; {PRINT_OPEN_CONNECTIONS}",
    ],
    "asgi": [sys.executable, "-c", f"import loyalty_site.asgi; {PRINT_SETTINGS}"],
    # What `celery -A loyalty_site worker` and `beat` load; `report` lists Django's settings.
    "celery": [sys.executable, "-m", "celery", "-A", "loyalty_site", "report"],
}
ENVIRONMENTS = {
    "a good key": {"SECRET_KEY": GOOD_KEY},
    "no key": {},
    "DEBUG on": {"SECRET_KEY": GOOD_KEY, "DEBUG": "true"},
}


def clean_environment(**variables: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], **variables}


def start(command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """(entry point, environment) → the finished process."""
    processes = {
        (entry_point, case): (command, start(command, clean_environment(**variables)))
        for entry_point, command in ENTRY_POINTS.items()
        for case, variables in ENVIRONMENTS.items()
    }
    finished = {}
    for key, (command, process) in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        finished[key] = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return finished


def loaded_settings(run: subprocess.CompletedProcess) -> dict[str, str]:
    assert run.returncode == 0, run.stderr
    return dict(re.findall(r"^(SETTINGS_MODULE|DEBUG): (.+)$", run.stdout, re.MULTILINE))


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_with_a_good_key_an_entry_point_runs_on_production_settings(runs, entry_point):
    loaded = loaded_settings(runs[entry_point, "a good key"])

    assert loaded == {"SETTINGS_MODULE": "'loyalty_site.settings.production'", "DEBUG": "False"}


def test_importing_the_wsgi_application_opens_no_database_connection(runs):
    run = runs["wsgi", "a good key"]

    assert run.returncode == 0, run.stderr
    assert "OPEN_CONNECTIONS: []" in run.stdout.splitlines()


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_without_a_secret_key_an_entry_point_refuses_to_start(runs, entry_point):
    run = runs[entry_point, "no key"]

    assert run.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in run.stderr
    assert "secrets.token_urlsafe(50)" in run.stderr


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_with_debug_on_an_entry_point_refuses_to_start(runs, entry_point):
    run = runs[entry_point, "DEBUG on"]

    assert run.returncode != 0
    assert "ImproperlyConfigured: DEBUG is on" in run.stderr


def test_manage_py_still_defaults_to_the_development_settings(monkeypatch, capsys):
    # In this process (a fresh one would import the whole application once more): what
    # manage.py sets when nothing is set, then runs a command that needs no settings.
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    monkeypatch.setattr(sys, "argv", ["manage.py", "version"])

    runpy.run_path(str(ROOT / "manage.py"), run_name="__main__")

    assert os.environ["DJANGO_SETTINGS_MODULE"] == "loyalty_site.settings.dev"
    assert capsys.readouterr().out.startswith("5.")


def test_make_runs_worker_and_beat_on_the_demo_settings_like_its_web_server(tmp_path):
    # scripts/run.sh with REDIS_URL set starts a worker, beat and the web server through uv;
    # a stand-in uv writes down each command and the settings it was given.
    calls = tmp_path / "calls"
    fake_uv = tmp_path / "uv"
    fake_uv.write_text(f'#!/bin/sh\necho "$DJANGO_SETTINGS_MODULE $*" >> {calls}\n')
    fake_uv.chmod(0o755)

    subprocess.run(
        ["bash", "scripts/run.sh"],
        cwd=ROOT,
        env=clean_environment(
            UV=str(fake_uv), REDIS_URL="redis://127.0.0.1:1/0", TMPDIR=str(tmp_path)
        ),
        capture_output=True,
        check=True,
        timeout=30,
    )

    started = dict(
        reversed(line.split(" run --frozen ", 1)) for line in calls.read_text().splitlines()
    )
    assert sorted(" ".join(command.split()[:4]) for command in started) == [
        "celery -A loyalty_site beat",
        "celery -A loyalty_site worker",
        "python manage.py runserver 127.0.0.1:8000",
    ]
    assert set(started.values()) == {"loyalty_site.settings.dev"}
