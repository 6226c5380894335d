"""Attempt limits for the account pages (log in, sign up, password reset).

Failures are counted per client IP and per account in the shared cache (Redis when
set), in fixed windows. Once a counter reaches its limit the door stays shut until
the window ends, even for the right password: that is what stops guessing. The
customer is told how long to wait; nothing says whether the account exists."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int  # allowed within the window
    window: int  # seconds


def _limits() -> dict[str, Limit]:
    s = settings
    return {
        "login-ip": Limit("login-ip", s.NEXAI_LOGIN_ATTEMPTS_PER_IP, s.NEXAI_LOCKOUT_SECONDS),
        "login-account": Limit(
            "login-account", s.NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT, s.NEXAI_LOCKOUT_SECONDS
        ),
        "signup-ip": Limit("signup-ip", s.NEXAI_SIGNUPS_PER_IP_PER_HOUR, 3600),
        "reset-ip": Limit("reset-ip", s.NEXAI_RESETS_PER_IP_PER_HOUR, 3600),
        "reset-account": Limit("reset-account", 3, 3600),
    }


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind a proxy, set NEXAI_TRUSTED_PROXY_HEADER (e.g.
    HTTP_X_FORWARDED_FOR) to the header the proxy sets; the last hop it appended is used,
    since anything before it came from the client and can be forged."""
    header = settings.NEXAI_TRUSTED_PROXY_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(limit: Limit, ident: str) -> tuple[str, int]:
    window = int(time.time()) // limit.window
    digest = hashlib.sha256(ident.strip().lower().encode()).hexdigest()[:32]
    return f"throttle:{limit.name}:{digest}:{window}", (window + 1) * limit.window


def locked_for(kind: str, ident: str) -> int:
    """Seconds until `ident` may try `kind` again; 0 when it may now."""
    limit = _limits()[kind]
    key, ends = _key(limit, ident)
    if (cache.get(key) or 0) >= limit.attempts:
        return max(1, ends - int(time.time()))
    return 0


def attempt_record(kind: str, ident: str) -> None:
    """Count one attempt (a failed login, a sign-up, a reset request)."""
    limit = _limits()[kind]
    key, _ends = _key(limit, ident)
    if cache.add(key, 1, limit.window + 5):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, limit.window + 5)


def attempts_clear(kind: str, ident: str) -> None:
    limit = _limits()[kind]
    cache.delete(_key(limit, ident)[0])


def minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))
