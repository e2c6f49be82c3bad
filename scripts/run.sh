#!/usr/bin/env bash
# Serve the site on http://127.0.0.1:8000 (called by `make run` after migrate and seed_demo).
#
# With REDIS_URL set, Celery tasks go to Redis, so a worker and beat start here in the
# background and stop with the web server. Without it, tasks run in-process and nothing else
# is needed.
set -euo pipefail

UV="${UV:-uv}"
# The demo's settings for every process here. manage.py defaults to them by itself, but the
# Celery worker and beat default to production settings (loyalty_site/celery.py), which
# refuse the demo's DEBUG and secret key; they must run with what the web server runs with.
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-loyalty_site.settings.dev}"
ADDRESS="${RUN_ADDRESS:-127.0.0.1:8000}"
pids=()

stop_background() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait
}
trap stop_background EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${REDIS_URL:-}" ]]; then
    echo "REDIS_URL is set: starting a Celery worker and beat beside the web server"
    "$UV" run --frozen celery -A loyalty_site worker --loglevel=INFO --concurrency=2 &
    pids+=("$!")
    "$UV" run --frozen celery -A loyalty_site beat --loglevel=INFO \
        --schedule="${TMPDIR:-/tmp}/huiyuan-loyalty-celerybeat-schedule" &
    pids+=("$!")
fi

echo "Serving http://${ADDRESS}/ (Ctrl-C stops it). Demo logins are listed in README.md."
"$UV" run --frozen python manage.py runserver "$ADDRESS"
