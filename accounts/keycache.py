"""Authentication of presented secrets, cached for the gateway's hot path.

Two levels: a per-process dict with a one-second life, then the shared Django cache
(Redis in production) with a longer one; without Redis, the database itself. A change to a key deletes its shared entry
on commit, and no process keeps a local copy longer than LOCAL_TTL, so a revoked or
suspended key stops working everywhere within a second without a database read per
request.

A snapshot also says whether its owner's account is active, so the keys of a
deactivated user are refused like revoked ones. A user row saved by any means (a
service, the admin, `user.save()` in a shell) drops the snapshots of the user's keys
the same way (`user_saved`, connected in AccountsConfig.ready): the rule must hold
however the row changes. Only a bulk `QuerySet.update()` of users bypasses it; its
effect then waits for SHARED_TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, digest_secret, is_well_formed
from core.clock import clock
from core.db import in_thread

LOCAL_TTL = 1.0  # seconds; the bound on how long a revoked key may still work
SHARED_TTL = 300  # seconds
_MISSING = "missing"


class Refusal(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    ACCOUNT_DISABLED = "account_disabled"  # the owner's account was deactivated


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """What the gateway needs to know about a key, without a database row."""

    key_id: int
    user_id: int
    prefix: str
    status: str
    expires_at: datetime | None
    rpm: int | None
    concurrency: int | None  # requests in flight at once (the key's own cap)
    spend_limit: int | None
    allowed_models: tuple[str, ...]
    user_active: bool = True  # the owner's account (User.is_active)

    @classmethod
    def of(cls, key: ApiKey) -> KeySnapshot:
        return cls(
            key_id=key.pk,
            user_id=key.user_id,
            prefix=key.prefix,
            status=key.status,
            expires_at=key.expires_at,
            rpm=key.rpm,
            concurrency=key.concurrency,
            spend_limit=key.spend_limit,
            allowed_models=tuple(key.allowed_models or ()),
            user_active=key.user.is_active,
        )

    def allows_model(self, model_id: str) -> bool:
        return not self.allowed_models or model_id in self.allowed_models


@dataclass(frozen=True, slots=True)
class AuthResult:
    key: KeySnapshot | None
    refusal: Refusal | None

    @property
    def ok(self) -> bool:
        return self.refusal is None


_local: dict[str, tuple[float, KeySnapshot | str]] = {}
# Unknown secrets are cached too (so guessing costs no database read); the bound keeps
# a flood of random secrets from growing a process's memory without limit.
_LOCAL_MAX = 10_000


def _cache_key(digest: str) -> str:
    # The version changes with KeySnapshot's fields: a process of the new code must
    # not read a snapshot an older one cached (it would lack the new fields).
    return f"apikey:v2:{digest}"


def forget(digest: str) -> None:
    _local.pop(digest, None)
    cache.delete(_cache_key(digest))


def forget_user(user_id: int) -> None:
    """Drop the snapshots of every key of a user (their account changed)."""
    digests = list(ApiKey.objects.filter(user_id=user_id).values_list("digest", flat=True))
    for digest in digests:
        _local.pop(digest, None)
    if digests:
        cache.delete_many([_cache_key(digest) for digest in digests])


def user_saved(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """post_save of User: a change of `is_active` must reach every process within a
    second, however it was made. Forgotten now for this process, and again once
    committed, so no process can have re-cached the old state in between. Saves that
    name their fields without `is_active` (a login's last_login) cost nothing."""
    if created or (update_fields is not None and "is_active" not in update_fields):
        return
    user_id = instance.pk
    forget_user(user_id)
    transaction.on_commit(lambda: forget_user(user_id))


def clear_local() -> None:
    _local.clear()


def _remember(digest: str, now: float, snapshot: KeySnapshot | str) -> None:
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[digest] = (now + LOCAL_TTL, snapshot)


def _judge(snapshot: KeySnapshot | str) -> AuthResult:
    if not isinstance(snapshot, KeySnapshot):
        return AuthResult(None, Refusal.UNKNOWN)
    if snapshot.status == ApiKey.Status.REVOKED:
        return AuthResult(snapshot, Refusal.REVOKED)
    if not snapshot.user_active:
        return AuthResult(snapshot, Refusal.ACCOUNT_DISABLED)
    if snapshot.status == ApiKey.Status.SUSPENDED:
        return AuthResult(snapshot, Refusal.SUSPENDED)
    if snapshot.expires_at is not None and snapshot.expires_at <= timezone.now():
        return AuthResult(snapshot, Refusal.EXPIRED)
    return AuthResult(snapshot, None)


def _precheck(secret: str | None) -> AuthResult | None:
    if not secret:
        return AuthResult(None, Refusal.MISSING)
    if not is_well_formed(secret):
        return AuthResult(None, Refusal.MALFORMED)
    return None


def _load(digest: str) -> KeySnapshot | str:
    key = ApiKey.objects.select_related("user").filter(digest=digest).first()
    return KeySnapshot.of(key) if key else _MISSING


def _from_memory(secret: str | None) -> tuple[str, float, AuthResult | None]:
    """(digest, now, result): a result when no cache lookup is needed at all."""
    refused = _precheck(secret)
    if refused:
        return "", 0.0, refused
    digest = digest_secret(secret)  # type: ignore[arg-type]
    now = clock.monotonic()
    hit = _local.get(digest)
    return digest, now, (_judge(hit[1]) if hit and hit[0] > now else None)


def _shared() -> bool:
    """Is the Django cache shared by every process (Redis)? The in-process cache of the
    embedded default is not: a key revoked by a command in another process would stay
    cached here, so without Redis a local miss goes to the database."""
    return bool(settings.REDIS_URL)


def authenticate(secret: str | None) -> AuthResult:
    """Authenticate a presented secret (sync; reads the database on a cache miss)."""
    digest, now, result = _from_memory(secret)
    if result is not None:
        return result
    if not _shared():
        snapshot = _load(digest)
        _remember(digest, now, snapshot)
        return _judge(snapshot)
    snapshot = cache.get(_cache_key(digest))
    if snapshot is None:
        snapshot = _load(digest)
        cache.set(_cache_key(digest), snapshot, SHARED_TTL)
    _remember(digest, now, snapshot)
    return _judge(snapshot)


async def aauthenticate(secret: str | None) -> AuthResult:
    """Async twin for the gateway: no thread hop at all on a local hit."""
    digest, now, result = _from_memory(secret)
    if result is not None:
        return result
    if not _shared():
        snapshot = await in_thread(_load)(digest)
        _remember(digest, now, snapshot)
        return _judge(snapshot)
    snapshot = await cache.aget(_cache_key(digest))
    if snapshot is None:
        snapshot = await in_thread(_load)(digest)
        await cache.aset(_cache_key(digest), snapshot, SHARED_TTL)
    _remember(digest, now, snapshot)
    return _judge(snapshot)
