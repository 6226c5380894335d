"""Test settings: the project's own, made fast and isolated."""

from nexai.settings import *  # noqa: F403
from nexai.settings import CACHES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Keep test keys apart from anything a developer's own server put in the same Redis.
CACHES["default"]["KEY_PREFIX"] = "nexai-test"
NEXAI_USAGE_FLUSH_INTERVAL = 0  # tests flush explicitly (gateway.writer.flush)
