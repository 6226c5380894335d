"""Business operations on users and API keys. Every write to a key goes through here,
so the authentication cache is invalidated in exactly one place."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts import keycache
from accounts.models import (
    ALPHABET,
    DISPLAY_PREFIX_LEN,
    KEY_PREFIX,
    SECRET_BODY_LEN,
    ApiKey,
    User,
    digest_secret,
    is_well_formed,
)


class KeyStateError(Exception):
    """Raised for a request to change a key that breaks a rule; the message is for users."""


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown to the owner once, never stored


def user_get_or_create(*, email: str) -> tuple[User, bool]:
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user:
        return user, False
    user = User.objects.create_user(email=email, password=None)
    return user, True


def _new_secret() -> str:
    return KEY_PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_BODY_LEN))


def api_key_create(
    *,
    user: User,
    name: str = "",
    rpm: int | None = None,
    concurrency: int | None = None,
    spend_limit: int | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    secret = _new_secret()
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LEN],
        digest=digest_secret(secret),
        rpm=rpm,
        concurrency=concurrency,
        spend_limit=spend_limit,
        allowed_models=list(allowed_models or []),
        expires_at=expires_at,
    )
    return CreatedKey(key=key, secret=secret)


def expiry_in_days(days: int | None) -> datetime | None:
    return timezone.now() + timedelta(days=days) if days else None


def _changed(key: ApiKey, fields: list[str]) -> ApiKey:
    key.save(update_fields=fields)
    digest = key.digest
    # Forget now for this process, and again once committed, so no process can have
    # re-cached the old state in between.
    keycache.forget(digest)
    transaction.on_commit(lambda: keycache.forget(digest))
    return key


def api_key_update(
    *,
    key: ApiKey,
    name: str | None = None,
    rpm: int | None = None,
    concurrency: int | None = None,
    spend_limit: int | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    clear: tuple[str, ...] = (),
) -> ApiKey:
    """Change a key's name or limits. Fields named in `clear` are reset to "no limit".
    A revoked key is history: it cannot be changed."""
    if key.status == ApiKey.Status.REVOKED:
        raise KeyStateError("A revoked key cannot be changed.")
    fields = []
    for field, value in (
        ("name", name),
        ("rpm", rpm),
        ("concurrency", concurrency),
        ("spend_limit", spend_limit),
        ("allowed_models", allowed_models),
        ("expires_at", expires_at),
    ):
        if field in clear:
            setattr(key, field, [] if field == "allowed_models" else None)
            fields.append(field)
        elif value is not None:
            setattr(key, field, value)
            fields.append(field)
    return _changed(key, fields) if fields else key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key for good (the owner's action); revoking twice is harmless."""
    if key.status == ApiKey.Status.REVOKED:
        return key
    key.status = ApiKey.Status.REVOKED
    key.revoked_at = timezone.now()
    return _changed(key, ["status", "revoked_at"])


def api_key_suspend(*, key: ApiKey) -> ApiKey:
    if key.status == ApiKey.Status.REVOKED:
        raise KeyStateError("A revoked key cannot be suspended.")
    key.status = ApiKey.Status.SUSPENDED
    return _changed(key, ["status"])


def api_key_reactivate(*, key: ApiKey) -> ApiKey:
    if key.status == ApiKey.Status.REVOKED:
        raise KeyStateError("A revoked key cannot be reactivated.")
    key.status = ApiKey.Status.ACTIVE
    return _changed(key, ["status"])


def api_key_find(*, secret_or_prefix: str) -> ApiKey | None:
    """A key by its full secret or by its visible prefix (only if that is unambiguous)."""
    if is_well_formed(secret_or_prefix):
        return ApiKey.objects.for_secret(secret_or_prefix)
    matches = list(ApiKey.objects.filter(prefix=secret_or_prefix)[:2])
    return matches[0] if len(matches) == 1 else None
