"""Redis clients for what the Django cache API cannot express (Lua scripts, lists).
None when REDIS_URL is unset: callers then use their in-process fallback."""

from __future__ import annotations

import asyncio
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

_sync: redis.Redis | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def sync_client() -> redis.Redis:
    global _sync
    if _sync is None:
        _sync = redis.Redis.from_url(settings.REDIS_URL)
    return _sync


def async_client() -> aredis.Redis:
    """One client (and connection pool) per event loop: pools cannot cross loops."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = aredis.Redis.from_url(settings.REDIS_URL, max_connections=200)
        _async[loop] = client
    return client
