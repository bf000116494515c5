"""Tally settings: one module for development, tests and production, configured from the environment.

Every variable read here is listed, with its default, in the README's configuration table.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules
TALLY_ENV = os.environ.get("TALLY_ENV", "development")
if TALLY_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("TALLY_ENV must be 'development' or 'production'")
PRODUCTION = TALLY_ENV == "production"

DEFAULT_SECRET_KEY = "django-insecure-tally-development-only"  # noqa: S105 - refused in production below
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG is on")
    if SECRET_KEY == DEFAULT_SECRET_KEY:
        problems.append("SECRET_KEY is the development default")
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        problems.append("DATABASE_URL and REDIS_URL must be set (no embedded servers in production)")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "config.middleware.csrf_failure"  # JSON in the error shape under /api/

# --- Apps ----------------------------------------------------------------------------------------

INSTALLED_APPS = [
    "unfold",  # the partner-portal theme; must precede django.contrib.admin
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: the docs work offline
    "ledger",
    "loyalty",
    "perks",
    "livestream",
    "economics",
    "integrations",
    "engagement",
]

MIDDLEWARE = [
    # First: every answer, a redirect or a 413 too, has its request id and is counted for /metrics.
    "config.middleware.RequestIdMiddleware",
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ApiBodyLimitMiddleware",
    "config.middleware.ApiErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data: PostgreSQL and Redis, embedded unless given -----------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.ensure_postgres()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
# Django's backend, with a health check of reused connections that needs no round trip (config.postgres).
DATABASES["default"]["ENGINE"] = "config.postgres"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Prepared statements only where the code asks for them (`cursor.execute(..., prepare=True)` on a
# config.db.bulk_cursor): psycopg's automatic preparation after N runs is off (the threshold is never
# reached), and what is prepared is planned once per connection, generically, instead of re-planned
# with each run's values. For hot statements of many joins (the redemption path) planning cost more
# than running them. Nothing else is prepared, so nothing else is affected.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options.setdefault("prepare_threshold", 2**31 - 1)
_db_options["options"] = f"{_db_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_tally")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = (os.environ.get("REDIS_URL") or embedded.ensure_redis()).rstrip("/")
# One Redis, separate logical databases: the broker, and the cache / locks / hot counters.
# Tests use their own pair so that a test run never touches development data.
_redis_base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.rsplit("/", 1)[-1].isdigit() else REDIS_URL
# The broker's database and, next to it, the cache's: REDIS_DB and REDIS_DB + 1 (make bench runs its server on
# its own pair); tests use TEST_REDIS_DB and the next.
_broker_db = env_int("TEST_REDIS_DB", 2) if TESTING else env_int("REDIS_DB", 0)
_cache_db = _broker_db + 1
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or f"{_redis_base}/{_broker_db}"
REDIS_CACHE_URL = f"{_redis_base}/{_cache_db}"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "KEY_PREFIX": "tally",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Celery -------------------------------------------------------------------------------------

CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message to be redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE_FILENAME = str(embedded.data_dir() / "celerybeat-schedule")

# --- Auth ---------------------------------------------------------------------------------------

AUTH_USER_MODEL = "loyalty.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "my_clubs"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A link mailed at sign-up verifies the address for this long; a password reset link likewise.
EMAIL_VERIFICATION_MAX_AGE_SECONDS = env_int("EMAIL_VERIFICATION_MAX_AGE_DAYS", 3) * 86400
PASSWORD_RESET_TIMEOUT = EMAIL_VERIFICATION_MAX_AGE_SECONDS
# Failed logins (fan and portal) per email and per client address, in a window (loyalty.login_throttle).
LOGIN_THROTTLE_FAILURES = env_int("LOGIN_THROTTLE_FAILURES", 10)
LOGIN_THROTTLE_FAILURES_PER_IP = env_int("LOGIN_THROTTLE_FAILURES_PER_IP", 100)
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 15 * 60)
# Proxies in front of Tally that append the client's address to X-Forwarded-For (config.http.client_ip).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

# --- Mail ---------------------------------------------------------------------------------------

# Development prints mail (verification and password reset links) on the console; production sends it
# through the SMTP server given here.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tally <no-reply@localhost>")

if TESTING:
    # Password hashing is deliberately slow; tests hash thousands of throwaway passwords.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- I18N, time, static --------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = embedded.data_dir() / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request until collectstatic has run
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", embedded.data_dir() / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step in development

# --- API ----------------------------------------------------------------------------------------

# The most an API request's body may be (413 above it); the batch endpoint takes up to 8 MB.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_BODY_LIMITS = {"/api/v1/events/batch": max(API_MAX_BODY_BYTES, 8 * 1024 * 1024)}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tally API",
    "DESCRIPTION": "Points, members, events and perks of one brand, authenticated by `Api-Key <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets named for what they are, not for the field that holds them ("status" is everywhere).
    "ENUM_NAME_OVERRIDES": {"OutcomeStatusEnum": ["awarded", "rejected"]},
}

# --- Partner portal -----------------------------------------------------------------------------

UNFOLD = {
    "SITE_TITLE": "Tally partner portal",
    "SITE_HEADER": "Tally",
    "SITE_SUBHEADER": "loyalty.admin_site.portal_subheader",
    "SITE_SYMBOL": "loyalty",
    "ENVIRONMENT": "loyalty.admin_site.portal_brand_label",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": True,
    "DASHBOARD_CALLBACK": "config.portal.dashboard_callback",
}

# --- Logging ------------------------------------------------------------------------------------

# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id, exception), for a log
# shipper (config.logs.JsonFormatter); plain by default, for people. Either way each record knows the id of
# the request it was logged in (config.logs.RequestIdFilter).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain") or "plain"
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}
if LOG_FORMAT == "json":
    # Django's own handlers (in development, "django" writes each 4xx again in plain text; runserver's
    # "django.server" its request lines) are replaced: every line goes through the JSON one.
    LOGGING["loggers"] |= {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    }

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Browsers then keep to HTTPS for a year (SECURE_HSTS_SECONDS=0 turns it off, e.g. while trying TLS out).
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
# Only behind a proxy that sets this header itself (and drops a client's): e.g. HTTP_X_FORWARDED_PROTO.
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
# A monitor sending `Authorization: Bearer <token>` sees /healthz's details (error texts, worker names).
HEALTHZ_TOKEN = os.environ.get("HEALTHZ_TOKEN", "")
# GET /metrics is open from this host; from elsewhere only with `Authorization: Bearer <token>` (unset: refused).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Loyalty ------------------------------------------------------------------------------------

MEMBERSHIP_LOCK_TIMEOUT_SECONDS = env_int("MEMBERSHIP_LOCK_TIMEOUT_SECONDS", 30)
MEMBERSHIP_LOCK_WAIT_SECONDS = env_int("MEMBERSHIP_LOCK_WAIT_SECONDS", 10)
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
EVENT_MAX_AGE_DAYS = env_int("EVENT_MAX_AGE_DAYS", 30)
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "6000/min")
# How long a process trusts an API key it checked (revoking a key takes effect within this time).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
# Events a worker processes in one database transaction (1 is the one-at-a-time baseline of `make bench`).
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 1000)
# Failed attempts (errors, not rules) after which an event is set aside as failed, for the rest to go on.
EVENT_MAX_ATTEMPTS = env_int("EVENT_MAX_ATTEMPTS", 5)
CELERY_BEAT_SCHEDULE = {
    "idempotency-keys-purge": {"task": "loyalty.tasks.idempotency_purge_task", "schedule": 3600.0},
    # Catches events nobody woke a worker for (Redis or the broker away, a worker killed).
    "events-pending-sweep": {"task": "loyalty.tasks.events_pending_sweep_task", "schedule": 10.0},
    # The points lifecycle (releases, expiry, tiers) runs once per day of each brand's timezone; this
    # only looks for brands whose day changed since their last run.
    "lifecycle-due": {"task": "loyalty.tasks.lifecycle_due_task", "schedule": 900.0},
    # Retries that came due, and messages whose wake-up was lost (Redis or the broker away).
    "outbox-work": {"task": "integrations.tasks.outbox_work_task", "schedule": 5.0},
    "outbox-expiring-soon": {"task": "integrations.tasks.expiring_soon_task", "schedule": 3600.0},
    "outbox-prune": {"task": "integrations.tasks.outbox_prune_task", "schedule": 3600.0},
}

# --- Integrations (integrations/: the outbox, analytics, webhooks) -----------------------------------

# A Mixpanel-compatible ingestion base URL (events go to <ANALYTICS_URL>/import); unset: no analytics.
ANALYTICS_URL = os.environ.get("ANALYTICS_URL", "").rstrip("/")
ANALYTICS_BATCH_SIZE = 2000
# A failed delivery is tried again after base x 2^(attempts - 1) seconds, for up to WEBHOOK_RETRY_FOR_SECONDS.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_RETRY_FOR_SECONDS = env_int("WEBHOOK_RETRY_FOR_SECONDS", 3 * 24 * 3600)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Webhook URLs on private, loopback or link-local addresses (SSRF): refused in production unless an
# on-premise installation allows them.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", not PRODUCTION)
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7)

# --- Livestream ---------------------------------------------------------------------------------

# The fake player (no network, driven by the same clock) for tests and offline demos.
LIVESTREAM_FAKE_PLAYER = env_bool("LIVESTREAM_FAKE_PLAYER", False)
# Length of a credited watch minute; heartbeat interval and gaps scale with it (tests compress time).
LIVESTREAM_MINUTE_SECONDS = env_int("LIVESTREAM_MINUTE_SECONDS", 60)
# Per watch minute: heartbeats (the live page sends 2; a page another one took over sends 1, then stops)
# and lease requests (one per page load or "earn here") per member and per client address; past them,
# 429. An address may be a household's or an office's, hence the room.
LIVESTREAM_HEARTBEATS_PER_MEMBER = env_int("LIVESTREAM_HEARTBEATS_PER_MEMBER", 30)
LIVESTREAM_HEARTBEATS_PER_ADDRESS = env_int("LIVESTREAM_HEARTBEATS_PER_ADDRESS", 2000)
LIVESTREAM_LEASES_PER_MEMBER = env_int("LIVESTREAM_LEASES_PER_MEMBER", 20)
LIVESTREAM_LEASES_PER_ADDRESS = env_int("LIVESTREAM_LEASES_PER_ADDRESS", 400)
# The YouTube Data API v3 (livestream/youtube.py): with a key, staff import playlists and videos (titles,
# lengths, whether embedding is allowed) in the portal; unset, they type ids and lengths by hand.
YOUTUBE_API_KEY = os.environ.get("YOUTUBE_API_KEY", "")
YOUTUBE_API_URL = os.environ.get("YOUTUBE_API_URL", "https://www.googleapis.com/youtube/v3").rstrip("/")
