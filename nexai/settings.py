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

from core.logs import logging_config
from nexai.env import env_bool, env_date, env_int, env_list, env_str, env_together

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
    "audit",
    # Only for its packaged Swagger UI files, so /v1/docs needs no CDN.
    "ninja",
    "accounts",
    "billing",
    "providers",
    "gateway",
    "dashboard",
    "reports",
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
    "rollup-usage": {"task": "reports.tasks.rollup_recent_usage", "schedule": 300.0},
    "reconcile-payments": {"task": "billing.tasks.reconcile_payments", "schedule": 600.0},
}
# Seconds between the serving process's own writes of queued usage and charges; 0 turns
# them off. With Redis the queue is shared and `manage.py run_usage_writer` drains it
# in a process of its own: a writer thread inside a server would hold the GIL while
# requests wait (docs/performance.md), so the default is then 0.
NEXAI_USAGE_FLUSH_INTERVAL = float(
    env_str("NEXAI_USAGE_FLUSH_INTERVAL", "0" if REDIS_URL else "0.2")
)
# Partitions of the spend state in Redis (by wallet: user id mod N). Writers own
# disjoint partitions, so up to N writers work in parallel. Fixed for a deployment:
# change it only with the queue drained and no request in flight (docs/operations.md).
NEXAI_SPEND_PARTITIONS = env_int("NEXAI_SPEND_PARTITIONS", 16, minimum=1)
# Where each serving process journals the charges it queued in Redis, so that charges
# Redis loses (a crash between AOF fsyncs) are recovered (docs/operations.md). Empty
# turns the journal off.
NEXAI_CHARGE_JOURNAL_DIR = env_str("NEXAI_CHARGE_JOURNAL_DIR", "")

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
# Redemption codes: attempts per user and per IP address within the window.
NEXAI_REDEEM_ATTEMPTS = env_int("NEXAI_REDEEM_ATTEMPTS", 10, minimum=1)
NEXAI_REDEEM_WINDOW_SECONDS = env_int("NEXAI_REDEEM_WINDOW_SECONDS", 900, minimum=1)
# The operator's details printed on receipts (docs/operations.md).
NEXAI_OPERATOR_NAME = env_str("NEXAI_OPERATOR_NAME", "nexai")
NEXAI_OPERATOR_ADDRESS = env_str("NEXAI_OPERATOR_ADDRESS")
NEXAI_OPERATOR_EMAIL = env_str("NEXAI_OPERATOR_EMAIL")
NEXAI_OPERATOR_TAX_ID = env_str("NEXAI_OPERATOR_TAX_ID")
# Where customers write for credits and help; shown wherever they are told to ask.
NEXAI_SUPPORT_EMAIL = env_str("NEXAI_SUPPORT_EMAIL")

# Account protection (accounts/throttle.py, dashboard/abuse.py). Failed logins lock an
# account (and an address) out for the rest of a window, even for the right password.
NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT = env_int("NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT", 5, minimum=1)
NEXAI_LOGIN_ATTEMPTS_PER_IP = env_int("NEXAI_LOGIN_ATTEMPTS_PER_IP", 20, minimum=1)
NEXAI_LOCKOUT_SECONDS = env_int("NEXAI_LOCKOUT_SECONDS", 900, minimum=60)
NEXAI_SIGNUPS_PER_IP_PER_HOUR = env_int("NEXAI_SIGNUPS_PER_IP_PER_HOUR", 5, minimum=1)
NEXAI_RESETS_PER_IP_PER_HOUR = env_int("NEXAI_RESETS_PER_IP_PER_HOUR", 10, minimum=1)
# The header a trusted reverse proxy puts the client address in (e.g.
# HTTP_X_FORWARDED_FOR); unset, REMOTE_ADDR is the client.
NEXAI_TRUSTED_PROXY_HEADER = env_str("NEXAI_TRUSTED_PROXY_HEADER")
# Sign-ups from these domains are refused (one domain a line; # starts a comment).
NEXAI_DISPOSABLE_DOMAINS_FILE = env_str(
    "NEXAI_DISPOSABLE_DOMAINS_FILE", str(BASE_DIR / "accounts" / "disposable_domains.txt")
)
# Optional captcha on sign-up (Cloudflare Turnstile or any siteverify-compatible
# service): switched on by the secret.
NEXAI_CAPTCHA_SITE_KEY = env_str("NEXAI_CAPTCHA_SITE_KEY")
NEXAI_CAPTCHA_SECRET = env_str("NEXAI_CAPTCHA_SECRET")
NEXAI_CAPTCHA_VERIFY_URL = env_str(
    "NEXAI_CAPTCHA_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify"
)
NEXAI_CAPTCHA_SCRIPT_URL = env_str(
    "NEXAI_CAPTCHA_SCRIPT_URL", "https://challenges.cloudflare.com/turnstile/v0/api.js"
)

# Stripe is switched on by its secret key.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")

# Money in đồng (docs/operations.md, "Payments in Vietnam"): the operator's exchange rate
# in whole đồng per US$, and the day it was set. Đồng paid through payOS or a bank
# transfer become credits at the rate of the moment of payment, recorded on the entry.
NEXAI_VND_PER_USD = env_int("NEXAI_VND_PER_USD", 0, minimum=0)
NEXAI_VND_PER_USD_DATE = env_date("NEXAI_VND_PER_USD_DATE")
if NEXAI_VND_PER_USD and NEXAI_VND_PER_USD_DATE is None:
    raise ImproperlyConfigured("NEXAI_VND_PER_USD needs NEXAI_VND_PER_USD_DATE (YYYY-MM-DD)")
if NEXAI_VND_PER_USD and not 1_000 <= NEXAI_VND_PER_USD <= 1_000_000:
    # A dropped or extra digit would sell credits at a tenth (or ten times) their price.
    raise ImproperlyConfigured(
        f"NEXAI_VND_PER_USD is đồng per US$ (about 25000), not {NEXAI_VND_PER_USD}"
    )

# payOS (VietQR payment links) is switched on by its three keys from my.payos.vn;
# PAYOS_BASE_URL points the SDK elsewhere (tests). It takes đồng, so it needs the rate.
env_together(
    "payOS",
    ["PAYOS_CLIENT_ID", "PAYOS_API_KEY", "PAYOS_CHECKSUM_KEY"],
    needs="NEXAI_VND_PER_USD",
)
PAYOS_CLIENT_ID = env_str("PAYOS_CLIENT_ID")
PAYOS_API_KEY = env_str("PAYOS_API_KEY")
PAYOS_CHECKSUM_KEY = env_str("PAYOS_CHECKSUM_KEY")
PAYOS_BASE_URL = env_str("PAYOS_BASE_URL")

# Bank transfers matched through SePay: the operator's own account (shown to customers,
# with a VietQR), and the API key SePay's webhook sends. SEPAY_API_TOKEN (optional) lets
# the reconciliation job read SePay's transaction list for webhooks that never arrived.
env_together(
    "SePay bank transfers",
    ["SEPAY_API_KEY", "SEPAY_BANK_BIN", "SEPAY_ACCOUNT_NUMBER", "SEPAY_ACCOUNT_NAME"],
    needs="NEXAI_VND_PER_USD",
)
SEPAY_API_KEY = env_str("SEPAY_API_KEY")
SEPAY_BANK_BIN = env_str("SEPAY_BANK_BIN")
SEPAY_ACCOUNT_NUMBER = env_str("SEPAY_ACCOUNT_NUMBER")
SEPAY_ACCOUNT_NAME = env_str("SEPAY_ACCOUNT_NAME")
SEPAY_API_TOKEN = env_str("SEPAY_API_TOKEN")
SEPAY_API_BASE = env_str("SEPAY_API_BASE", "https://my.sepay.vn")

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
# replaced before anything is written (core/logs.py).
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
