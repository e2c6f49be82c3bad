# 会员 Loyalty — `make run` serves the demo, `make test` runs every test.
# Needs only python3.11, make and node/npm: uv is installed on first use if missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The uv to use: found or installed by scripts/ensure_uv.sh on first use, then remembered.
# (~/.local/bin need not be on PATH: the script prints the full path.)
UV ?= $(eval UV := $(shell sh scripts/ensure_uv.sh))$(UV)
MANAGE = $(UV) run --frozen python manage.py
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x tests/members"`.
PYTEST_ARGS ?=

.PHONY: help install run test lint format messages clean

help:
	@echo "make run       install, migrate, load the demo data, serve http://127.0.0.1:8000"
	@echo "make test      install (Chromium too), run the whole test suite (PostgreSQL/Redis if DATABASE_URL/REDIS_URL set)"
	@echo "make lint      ruff check, ruff format --check, makemigrations --check"
	@echo "make format    ruff format and ruff check --fix"
	@echo "make messages  update and compile the zh_Hans translations (needs gettext)"
	@echo "make clean     remove installed front-end files, collected static files and caches"

install: static/vendor/htmx.min.js
	@test -n "$(UV)" || { echo "uv could not be found or installed" >&2; exit 1; }
	$(UV) sync --frozen

# npm ci only when the lock file changed since the last install.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

static/vendor/htmx.min.js: node_modules/.package-lock.json scripts/copy_vendor.mjs
	npm run --silent vendor

run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo
	$(MANAGE) run_nightly
	UV="$(UV)" bash scripts/run.sh

# The browser tests drive Debian's Chromium: installed here when missing (as root), or the
# run stops first and says what to install.
test: install
	sh scripts/ensure_chromium.sh
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(MANAGE) makemigrations --check --dry-run

format: install
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

messages: install
	$(MANAGE) makemessages --locale zh_Hans --ignore ".venv/*" --ignore "node_modules/*" --ignore "staticfiles/*"
	$(MANAGE) compilemessages --locale zh_Hans --ignore ".venv/*"

clean:
	rm -rf node_modules static/vendor staticfiles test-artifacts .pytest_cache .ruff_cache .coverage htmlcov
	find . -name __pycache__ -type d -not -path "./.venv/*" -prune -exec rm -rf {} +
