"""nexai settings, read from the environment.

With nothing set the project runs on the embedded default: SQLite, an in-process
cache and channel layer, and Celery in eager mode. Each integration is switched on by
its own variable (DATABASE_URL, REDIS_URL, STRIPE_SECRET_KEY, EMAIL_URL...).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from nexai.env import env_bool, env_int, env_list, env_str
from nexai.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    # Development only: a fixed key would let anyone forge sessions in production,
    # so without DEBUG an unset SECRET_KEY gets a fresh random one per process start.
    import secrets

    SECRET_KEY = "dev-insecure-key" if DEBUG else secrets.token_urlsafe(50)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "accounts",
    "billing",
    "providers",
    "gateway",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "nexai.urls"
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
                "django.template.context_processors.i18n",
                "nexai.context_processors.site",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "nexai.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server, Celery eager tasks) write to the file; wait
    # for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("vi", _("Vietnamese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# The /v1 API takes JSON bodies up to 32 MiB (vision requests carry base64 images);
# gateway.limits refuses larger ones before they are read. Django's default of
# 2.5 MiB would answer a bare 400 to any bigger image.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024

# Redis switches on the shared cache, channel layer, rate limits and Celery broker.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nexai",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "settle-stale-reservations": {"task": "gateway.tasks.settle_stale", "schedule": 60.0},
    "flush-usage": {"task": "gateway.tasks.flush_usage", "schedule": 10.0},
    "verify-wallets": {"task": "billing.tasks.verify_wallets", "schedule": 3600.0},
}
# Seconds between the serving process's own writes of queued usage and charges; 0 turns
# them off. With Redis the queue is shared and `manage.py run_usage_writer` drains it
# in a process of its own: a writer thread inside a server would hold the GIL while
# requests wait (docs/performance.md), so the default is then 0.
NEXAI_USAGE_FLUSH_INTERVAL = float(
    env_str("NEXAI_USAGE_FLUSH_INTERVAL", "0" if REDIS_URL else "0.2")
)

# Email: the console backend unless an SMTP host is configured.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "nexai <noreply@localhost>")

# Money and plans (DESIGN.md): integers in credits, 1 credit = US$0.000001.
NEXAI_SIGNUP_CREDITS = env_int("NEXAI_SIGNUP_CREDITS", 5_000_000, minimum=0)
NEXAI_FREE_RPM = env_int("NEXAI_FREE_RPM", 10, minimum=1)
NEXAI_PAID_RPM = env_int("NEXAI_PAID_RPM", 3000, minimum=1)

# Stripe is switched on by its secret key.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.drf.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": "120/min"},
}

# NEXAI_LOG_FORMAT=json writes one JSON object per line with the request id (for log
# collectors); the default is one plain line per record. Either way credentials are
# replaced before anything is written (nexai/logs.py).
NEXAI_LOG_FORMAT = env_str("NEXAI_LOG_FORMAT", "plain")
if NEXAI_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"NEXAI_LOG_FORMAT must be plain or json, not {NEXAI_LOG_FORMAT!r}")
LOGGING = logging_config(fmt=NEXAI_LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
# Celery replaces the root logger's handlers with its own plain ones unless told not to.
CELERY_WORKER_HIJACK_ROOT_LOGGER = NEXAI_LOG_FORMAT != "json"

# Operations (docs/operations.md): /metrics answers only with this bearer token (404
# while it is unset); /readyz fails while the oldest queued charge is older than
# NEXAI_READY_MAX_WRITER_LAG seconds (0: not checked).
NEXAI_METRICS_TOKEN = env_str("NEXAI_METRICS_TOKEN")
NEXAI_READY_MAX_WRITER_LAG = env_int("NEXAI_READY_MAX_WRITER_LAG", 60, minimum=0)
