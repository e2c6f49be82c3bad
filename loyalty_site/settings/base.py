"""Settings shared by every environment, read from environment variables.

`production` is this module with guards (no DEBUG, no missing or weak SECRET_KEY); `dev` and
`test` only change defaults. Deployments point DJANGO_SETTINGS_MODULE at `production`; this
module stays importable on its own for tools that set their own environment.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with the back office's log-in rules (loyalty_site/admin.py).
    "loyalty_site.apps.LoyaltyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "template_partials",
    "csp",
    "core",
    "members",
    "tiers",
    "points",
    "analytics",
    "campaigns",
    "devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "loyalty_site.middleware.PrivacyHeadersMiddleware",
    # Django's session, log-in and message middleware, skipped on the POS API (/api/).
    "loyalty_site.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "loyalty_site.middleware.AuthenticationMiddleware",
    "loyalty_site.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "members.context_processors.backoffice_link",
            ],
        },
    }
]


def _connection_configure(database: dict) -> dict:
    """The connection options of an alias, the same for the primary and its replica."""
    database["ATOMIC_REQUESTS"] = False  # services own their transactions
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web server read while the demo's in-process jobs write.
        database.setdefault("OPTIONS", {}).update(
            {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
        )
        return database
    database.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Django turns psycopg's server-side prepared statements off (None), which also ignores
    # `prepare=True`: the live purchase's statements (`core.bulk.prepared_fetchall`) would be
    # parsed and planned on every purchase. A threshold no ORM query reaches prepares those
    # and nothing else. Behind a pooler in transaction mode without prepared-statement
    # support (PgBouncer before 1.21), set DATABASE_PREPARE_THRESHOLD=0 to turn it off.
    if threshold := env.int("DATABASE_PREPARE_THRESHOLD", default=1_000_000_000):
        database.setdefault("OPTIONS", {}).setdefault("prepare_threshold", threshold)
    database.setdefault("CONN_HEALTH_CHECKS", True)
    return database


# SQLite by default so `make run` needs nothing installed; DATABASE_URL selects PostgreSQL.
DATABASES = {
    "default": _connection_configure(
        env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    ),
}
# A read-only copy of the primary (PostgreSQL streaming replication, README "Reads off the
# primary"). The dashboards, their CSV exports and churn training read analytics rows from
# it (core.db: the router, `analytics_read_alias`); nothing is written to or migrated on it.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = _connection_configure(env.db("DATABASE_REPLICA_URL"))
DATABASE_ROUTERS = ["core.db.ReplicaRouter"]
# The models whose ORM reads may be served by the replica: figures a marketer can read a
# few seconds old. Never the ledger, members or anything read to decide a write.
DATABASE_REPLICA_MODELS = ["analytics.MemberFigures", "analytics.Rollup", "analytics.ChurnModel"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Every page reads the session: from Redis when there is one (written through to the
# database, which stays the record). Not with the per-process cache: a log-out in one
# process would leave the session in another's copy.
if REDIS_URL:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_USER_MODEL = "members.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:home"

# django-allauth: phone or e-mail + password; a phone must be verified by an SMS code.
ACCOUNT_ADAPTER = "members.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"phone", "email"}
ACCOUNT_SIGNUP_FIELDS = ["phone*", "email", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "members.forms.SignupExtraForm"
ACCOUNT_FORMS = {"request_login_code": "members.account_forms.RequestLoginCodeForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
# SMS codes as shoppers expect them: six digits, typed from the lock screen (3 tries each).
ACCOUNT_PHONE_VERIFICATION_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = True
# allauth resets passwords by e-mail only; a shopper who joined with a phone alone logs in
# with a code sent by SMS instead (the password reset page says so).
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_RATE_LIMITS = {
    # allauth's defaults stay on; login failures are also counted per account.
    "login_failed": "10/m/ip,5/5m/key",
}
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "会员 Loyalty"

# Staff roles must enrol TOTP before using /staff/ (on in production, off in the demo).
STAFF_REQUIRE_MFA = env.bool("STAFF_REQUIRE_MFA", default=True)

# The privacy notice members accept; bump the version when the text changes.
PRIVACY_NOTICE_VERSION = env.str("PRIVACY_NOTICE_VERSION", default="2026-01")

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="会员 Loyalty <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# SMS: console prints, locmem keeps an outbox for tests, http posts JSON to a gateway.
SMS_BACKEND = env.str("SMS_BACKEND", default="members.sms.ConsoleBackend")
SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_TOKEN = env.str("SMS_GATEWAY_TOKEN", default="")
# Texts the log-in, sign-up and code pages may send in an hour: per client address, and in
# total (members.sms.sms_budget_take). Reaching either is logged as a warning.
SMS_HOURLY_LIMIT_PER_IP = env.int("SMS_HOURLY_LIMIT_PER_IP", default=20)
SMS_HOURLY_LIMIT_TOTAL = env.int("SMS_HOURLY_LIMIT_TOTAL", default=1000)
# Behind N reverse proxies that append to X-Forwarded-For, set TRUSTED_PROXY_COUNT=N: the
# client address (SMS budget, allauth's rate limits) is then the one the outermost proxy
# saw, not the proxy's own. 0 (no proxy): REMOTE_ADDR, which a client cannot forge.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Content Security Policy: no inline scripts anywhere; every script is a static file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The header only makes the site eligible for browsers' preload list; being listed takes a
    # separate submission. Set SECURE_HSTS_PRELOAD=false for a host that must allow plain HTTP
    # on a subdomain.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Celery: without REDIS_URL tasks run in-process, so the demo needs no broker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than the longest task, so a slow task is not redelivered while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
# The nightly jobs at the times of PRODUCT.md (Asia/Shanghai, CELERY_TIMEZONE), one beat
# entry per job (tests/test_celery_settings.py checks each names a registered job). Each run
# is recorded as a JobRun and safe to repeat; `nightly_chain_task` queues them all for a date.
CELERY_BEAT_SCHEDULE = {
    job: {
        "task": "core.tasks.nightly_job_task",
        "schedule": crontab(hour=hour, minute=minute),
        "args": (job,),
    }
    for job, hour, minute in (
        ("points_expiry", 0, 30),
        ("tier_evaluation", 1, 0),
        ("analytics", 2, 0),
        ("churn_scoring", 3, 0),
        ("campaign_results", 3, 15),
        ("reconcile", 3, 30),
        ("expiry_reminders", 9, 0),
        ("birthday_benefits", 9, 0),
        # The night's tier changes are told at a decent hour, not at 01:00.
        ("tier_notices", 9, 0),
    )
}
# Due campaigns: launched and sent in batches, the outbox dispatched (campaigns/launch.py).
CELERY_BEAT_SCHEDULE["campaigns_tick"] = {
    "task": "campaigns.tasks.campaigns_tick_task",
    "schedule": crontab(),
}
# Accounts per transaction in the points expiry job: each batch commits on its own, so a
# run killed half-way keeps what it did (the tests make it tiny to kill a run mid-way).
POINTS_EXPIRY_BATCH = env.int("POINTS_EXPIRY_BATCH", default=5000)
# On PostgreSQL, planned purchases are written by one set-based statement
# (points/posting/writers.py); off, by the portable ORM writer (the reference).
POINTS_PURCHASE_FAST_PATH = env.bool("POINTS_PURCHASE_FAST_PATH", default=True)
# A return at one store for a purchase made at another (POS API and back office). Every such
# return is audited (`purchase.return_cross_store`); off, it is refused (API: 422).
POINTS_CROSS_STORE_RETURNS = env.bool("POINTS_CROSS_STORE_RETURNS", default=True)
# The limits of a purchase (points/purchase_limits.py): at most this many yuan, at the till
# and in an import; a live one (the POS API, the staff form) dated at most so many days back
# and minutes ahead of the server.
POINTS_PURCHASE_MAX_AMOUNT = Decimal(env.str("POINTS_PURCHASE_MAX_AMOUNT", default="200000"))
POINTS_PURCHASE_MAX_DAYS_BACK = env.int("POINTS_PURCHASE_MAX_DAYS_BACK", default=30)
POINTS_PURCHASE_MAX_MINUTES_AHEAD = env.int("POINTS_PURCHASE_MAX_MINUTES_AHEAD", default=5)
# The earliest day an imported purchase, enrolment or opening balance may carry (YYYY-MM-DD,
# Beijing time); nothing later than now is taken either.
IMPORT_EARLIEST_DATE = datetime.date.fromisoformat(
    env.str("IMPORT_EARLIEST_DATE", default="1990-01-01")
)

# Limits that protect the ledger (points adjustments by hand, manual tiers, the reconcile).
# Store staff (points.adjust_points): points per adjustment, and in all per member per
# business day (the absolute values of every adjustment made under the store-staff limit).
POINTS_ADJUST_STAFF_MAX = env.int("POINTS_ADJUST_STAFF_MAX", default=500)
POINTS_ADJUST_STAFF_DAILY_MAX = env.int("POINTS_ADJUST_STAFF_DAILY_MAX", default=2000)
# Store managers (points.adjust_unlimited): points per adjustment. Above it an
# administrator's request (points.approve_adjustment) waits for a second administrator.
POINTS_ADJUST_MANAGER_MAX = env.int("POINTS_ADJUST_MANAGER_MAX", default=100_000)
# No adjustment, not even an approved administrator's, moves more points than this.
POINTS_ADJUST_MAX = env.int("POINTS_ADJUST_MAX", default=100_000_000)
# A manual tier ends at most this many months after the day it is set.
TIER_OVERRIDE_MAX_MONTHS = env.int("TIER_OVERRIDE_MAX_MONTHS", default=24)
# The nightly reconcile lists the postings of the day that moved at least this many points.
RECONCILE_LARGE_POSTING_POINTS = env.int("RECONCILE_LARGE_POSTING_POINTS", default=100_000)

# Analytics (ANALYTICS.md). Lifecycle: new = enrolled at most NEW days ago with at most one
# purchase; active = last purchase at most ACTIVE days ago; silent up to SILENT days; churned
# after that.
ANALYTICS_NEW_DAYS = env.int("ANALYTICS_NEW_DAYS", default=30)
ANALYTICS_ACTIVE_DAYS = env.int("ANALYTICS_ACTIVE_DAYS", default=90)
ANALYTICS_SILENT_DAYS = env.int("ANALYTICS_SILENT_DAYS", default=180)
# Points liability (¥) = outstanding × POINT_VALUE × (1 − expected breakage). The expected
# breakage is this share when set, else the average breakage of the closed issue months.
ANALYTICS_POINT_VALUE = Decimal(env.str("ANALYTICS_POINT_VALUE", default="0.01"))
ANALYTICS_EXPECTED_BREAKAGE = env.float("ANALYTICS_EXPECTED_BREAKAGE", default=None)
# Churn: no purchase in the HORIZON days after a date. Risk bands by probability.
CHURN_HORIZON_DAYS = env.int("CHURN_HORIZON_DAYS", default=90)
CHURN_BAND_HIGH = env.float("CHURN_BAND_HIGH", default=0.7)
CHURN_BAND_MEDIUM = env.float("CHURN_BAND_MEDIUM", default=0.4)
# The churn model is trained again when the newest is this many days old or more (7: weekly).
CHURN_RETRAIN_DAYS = env.int("CHURN_RETRAIN_DAYS", default=7)
# Early warning on the dashboard: the share of scored members at high risk, and the monthly
# churn rate (members who passed SILENT days without a purchase in the month ÷ members
# not churned at its start), above which the marketers see an alert.
ANALYTICS_ALERT_HIGH_RISK_SHARE = env.float("ANALYTICS_ALERT_HIGH_RISK_SHARE", default=0.30)
ANALYTICS_ALERT_CHURN_RATE = env.float("ANALYTICS_ALERT_CHURN_RATE", default=0.10)

# Campaigns (PRODUCT.md, ANALYTICS.md). A campaign whose points cost (points × POINT_VALUE)
# passes APPROVAL_COST yuan needs an administrator's approval before it can launch.
CAMPAIGN_APPROVAL_COST = Decimal(env.str("CAMPAIGN_APPROVAL_COST", default="10000"))
# Estimated share of campaign points that will be redeemed (cost = points × value × this).
CAMPAIGN_EXPECTED_REDEMPTION = env.float("CAMPAIGN_EXPECTED_REDEMPTION", default=0.7)
# Price of one SMS in yuan and of one e-mail, for cost estimates.
CAMPAIGN_SMS_UNIT_PRICE = Decimal(env.str("CAMPAIGN_SMS_UNIT_PRICE", default="0.05"))
CAMPAIGN_EMAIL_UNIT_PRICE = Decimal(env.str("CAMPAIGN_EMAIL_UNIT_PRICE", default="0"))
# Members per transaction when a campaign posts points, issues coupons or enqueues messages;
# each batch commits on its own, so a worker killed mid-send resumes where it stopped.
CAMPAIGN_BATCH_SIZE = env.int("CAMPAIGN_BATCH_SIZE", default=5000)
# Database connections sending a campaign's batches at once (PostgreSQL; coupons use one).
CAMPAIGN_SEND_WORKERS = env.int("CAMPAIGN_SEND_WORKERS", default=2)
# Messages: quiet hours (Asia/Shanghai, [start, end) hours) delay marketing and service
# messages to the end hour; at most FREQUENCY_CAP marketing messages per member in any
# FREQUENCY_DAYS (service messages are exempt).
MESSAGE_QUIET_START_HOUR = env.int("MESSAGE_QUIET_START_HOUR", default=21)
MESSAGE_QUIET_END_HOUR = env.int("MESSAGE_QUIET_END_HOUR", default=9)
MESSAGE_FREQUENCY_CAP = env.int("MESSAGE_FREQUENCY_CAP", default=3)
MESSAGE_FREQUENCY_DAYS = env.int("MESSAGE_FREQUENCY_DAYS", default=7)
# A message claimed for sending but not marked sent after this many minutes (a worker died
# mid-send) is marked failed, never sent again: a member gets a message at most once.
MESSAGE_SENDING_TIMEOUT_MINUTES = env.int("MESSAGE_SENDING_TIMEOUT_MINUTES", default=10)
# Where members reach the site, for links in messages sent outside a request (the
# unsubscribe link of marketing e-mails): scheme and host, no trailing path.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")

# Configuration (tier ladder, earning policy, category rates) is kept per process
# (core/config.py); each process looks at the configuration's version at most this often,
# so an administrator's change reaches every server and worker within this many seconds.
CONFIG_VERSION_CHECK_SECONDS = env.float("CONFIG_VERSION_CHECK_SECONDS", default=2.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # python-barcode announces at import that it has no Pillow; we only draw SVG.
    "loggers": {"pyBarcode": {"level": "WARNING"}},
}
