"""Attempt limits for the account pages (log in, sign up, password reset).

Attempts are counted per client IP and per account in the shared cache (Redis when
set). A counter lives for one window from its first attempt; when it reaches its
limit, a lock is set for a whole window from that moment, and until it ends every
attempt is refused, the right password included: that is what stops guessing. The
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
    window: int  # seconds; also how long the lock lasts


def _limit(kind: str) -> Limit:
    s = settings
    return {
        "login-ip": Limit(kind, s.NEXAI_LOGIN_ATTEMPTS_PER_IP, s.NEXAI_LOCKOUT_SECONDS),
        "login-account": Limit(kind, s.NEXAI_LOGIN_ATTEMPTS_PER_ACCOUNT, s.NEXAI_LOCKOUT_SECONDS),
        "signup-ip": Limit(kind, s.NEXAI_SIGNUPS_PER_IP_PER_HOUR, 3600),
        "reset-ip": Limit(kind, s.NEXAI_RESETS_PER_IP_PER_HOUR, 3600),
        "reset-account": Limit(kind, 3, 3600),
    }[kind]


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind a proxy, set NEXAI_TRUSTED_PROXY_HEADER (e.g.
    HTTP_X_FORWARDED_FOR) to the header the proxy sets; the last hop it appended is used,
    since anything before it came from the client and can be forged."""
    header = settings.NEXAI_TRUSTED_PROXY_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(kind: str, ident: str) -> tuple[str, str]:
    # Hashed: an email address is not kept in the cache in clear.
    digest = hashlib.sha256(ident.strip().lower().encode()).hexdigest()[:32]
    return f"throttle:{kind}:{digest}", f"throttle-lock:{kind}:{digest}"


def locked_for(kind: str, ident: str) -> int:
    """Seconds until `ident` may try `kind` again; 0 when it may now."""
    until = cache.get(_keys(kind, ident)[1])
    return max(1, int(until - time.time())) if until and until > time.time() else 0


def attempt_record(kind: str, ident: str) -> None:
    """Count one attempt (a failed login, a sign-up, a reset request); the one that
    reaches the limit sets the lock."""
    limit = _limit(kind)
    counter, lock = _keys(kind, ident)
    if cache.add(counter, 1, limit.window):
        count = 1
    else:
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.add(counter, 1, limit.window)
            count = 1
    if count >= limit.attempts:
        cache.set(lock, time.time() + limit.window, limit.window)
        cache.delete(counter)


def attempts_clear(kind: str, ident: str) -> None:
    cache.delete(_keys(kind, ident)[0])


def minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))
