"""API-key scopes: what a key may do besides calling /v1.

Kept apart from accounts.services (the key lifecycle) because only the management API
asks: an inference key calls /v1; managing keys through /api/ needs a signed-in
session or a key created with the management scope."""

from __future__ import annotations

from accounts import keycache
from accounts.models import ApiKey


def api_key_scope_set(*, key: ApiKey, scope: str) -> ApiKey:
    """Give a key its scope (at creation). The cache entry is dropped like any other
    change to a key, so a snapshot never outlives the row it describes."""
    if scope not in ApiKey.Scope.values:
        raise ValueError(f"unknown scope {scope!r}")
    if key.scope != scope:
        key.scope = scope
        key.save(update_fields=["scope"])
        keycache.forget(key.digest)
    return key


def key_may_manage(*, key_id: int) -> bool:
    """May this key list, create, change and revoke keys through /api/? One indexed
    read: the management API is not the gateway's hot path."""
    return ApiKey.objects.filter(
        pk=key_id, scope=ApiKey.Scope.MANAGEMENT, status=ApiKey.Status.ACTIVE
    ).exists()
