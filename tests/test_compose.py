"""docker-compose.yml and the Dockerfile, read as files: Docker does not run in the test suite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")
INIT_DIR = "/docker-entrypoint-initdb.d"


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves the YAML anchors and `<<` merges, as Compose does.
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_has_the_five_services(services):
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)


def test_web_worker_and_beat_share_one_image_built_once(services):
    builds = {str(services[name]["build"]) for name in APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert builds == {"."}
    assert len(images) == 1
    # The one-shot migrate service runs that same image too.
    assert services["migrate"]["image"] in images


def test_each_app_service_runs_its_own_process(services):
    commands = {name: " ".join(services[name]["command"]) for name in APP_SERVICES}
    # Every server setting is in gunicorn.conf.py (tests/test_gunicorn_conf.py), none here.
    assert commands["web"] == "gunicorn --config gunicorn.conf.py loyalty_site.wsgi"
    assert commands["worker"].startswith("celery -A loyalty_site worker")
    assert commands["beat"].startswith("celery -A loyalty_site beat")
    assert " ".join(services["migrate"]["command"]) == "python manage.py migrate --noinput"


def test_app_services_are_configured_from_the_environment(services):
    for name in (*APP_SERVICES, "migrate"):
        environment = services[name]["environment"]
        for variable in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
            assert variable in environment, (name, variable)
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        # No default secret key: starting without one is an error, not a guessable key.
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
        # The settings that refuse DEBUG and a weak key (tests/test_entry_points.py).
        assert environment["DJANGO_SETTINGS_MODULE"] == "loyalty_site.settings.production"


def test_the_web_server_is_tuned_from_env_and_stopped_after_its_graceful_timeout(services):
    environment = services["web"]["environment"]
    for variable in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_GRACEFUL_TIMEOUT"):
        # No value: passed on from .env or the shell when set there, else left unset.
        assert variable in environment
        assert environment[variable] is None
    # Docker kills the container after stop_grace_period: give gunicorn's graceful_timeout
    # (30 s by default) time to let the requests in flight finish.
    assert services["web"]["stop_grace_period"] == "40s"


def test_app_services_wait_for_healthy_databases_and_migrations(services):
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}
        assert depends_on["redis"] == {"condition": "service_healthy"}
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["restart"] == "no"


def test_health_checks(services):
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in web_check
    # The check calls the server as 127.0.0.1, so that host must always be allowed.
    assert services["web"]["environment"]["ALLOWED_HOSTS"].endswith(",127.0.0.1")


def test_data_lives_in_named_volumes(compose, services):
    assert re.match(r"^postgres:16", services["postgres"]["image"])
    assert re.match(r"^redis:7", services["redis"]["image"])
    declared = set(compose["volumes"])
    mounts = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "web": "/app/media",
    }
    for service, target in mounts.items():
        volume_names = [
            volume.split(":")[0]
            for volume in services[service]["volumes"]
            if volume.split(":")[1] == target
        ]
        assert volume_names, (service, target)
        assert volume_names[0] in declared


def test_every_named_volume_is_used(compose, services):
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
    }
    assert set(compose["volumes"]) <= used


def test_dockerfile_builds_one_non_root_gunicorn_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages[-1] == "python:3.11-slim"
    assert any(stage.startswith("node:") for stage in stages[:-1])
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "npm ci" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert "DJANGO_SETTINGS_MODULE=loyalty_site.settings.production" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    command = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    assert command == ["gunicorn", "--config", "gunicorn.conf.py", "loyalty_site.wsgi"]


def test_docker_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", ".env", "node_modules", "db.sqlite3*", "static/vendor"):
        assert path in ignored


def test_the_app_connects_as_its_own_role_not_the_superuser(services):
    postgres = services["postgres"]["environment"]
    superuser = postgres["POSTGRES_USER"]
    for name in (*APP_SERVICES, "migrate"):
        url = services[name]["environment"]["DATABASE_URL"]
        user = re.match(r"postgres://([^:@]+)", url).group(1)
        assert user == postgres["LOYALTY_DB_USER"] == "loyalty", name
        assert user != superuser
        assert url.endswith("/" + postgres["LOYALTY_DB_NAME"])
    # The app's password and the role's are the same variable, with the same default.
    assert "${POSTGRES_PASSWORD:-loyalty}" in services["web"]["environment"]["DATABASE_URL"]
    assert postgres["LOYALTY_DB_PASSWORD"] == "${POSTGRES_PASSWORD:-loyalty}"


def test_the_init_script_creates_an_ordinary_role_owning_the_database(services):
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in services["postgres"]["volumes"])
    folder = next(source for source, target in mounts.items() if target == INIT_DIR)
    scripts = sorted((ROOT / folder).glob("*.sh"))
    assert scripts, folder
    text = "\n".join(script.read_text() for script in scripts)
    create_role = re.search(r"CREATE ROLE :\"role\" ([^;]+);", text).group(1)
    assert "LOGIN" in create_role.split()
    assert "NOSUPERUSER" in create_role.split()
    assert re.search(r'CREATE DATABASE :"db" OWNER :"role";', text)
    for variable in ("LOYALTY_DB_USER", "LOYALTY_DB_PASSWORD", "LOYALTY_DB_NAME"):
        assert f"${variable}" in text
        assert variable in services["postgres"]["environment"]
    assert all(script.stat().st_mode & 0o111 for script in scripts)


def test_the_database_is_healthy_only_once_it_listens_on_the_network(services):
    # During the init scripts the server listens on its socket only: a socket check would
    # let the migrate service start before the role exists.
    check = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready -h 127.0.0.1 -U loyalty -d loyalty" in check
