# syntax=docker/dockerfile:1
# One image for the web server, the Celery worker and Celery beat (see docker-compose.yml).

# --- Front-end files from the npm registry (htmx, ECharts), as `make install` does ---
FROM node:20-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
COPY scripts/copy_vendor.mjs scripts/
RUN npm ci --no-audit --no-fund && npm run --silent vendor

# --- The application ---
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    DJANGO_SETTINGS_MODULE=loyalty_site.settings.production

RUN python -m pip install --no-cache-dir "uv>=0.5"

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
COPY --from=vendor /build/static/vendor static/vendor
# collectstatic only reads settings; the key and database here are placeholders for it alone
# (a random key: production settings refuse a short or known one, and this one is thrown away).
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home app \
    && mkdir -p /app/media \
    && chown app:app /app/media
USER app

EXPOSE 8000
# Every server setting is in gunicorn.conf.py, each from an environment variable (README).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "loyalty_site.wsgi"]
