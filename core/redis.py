"""Redis clients for what the Django cache API cannot express (Lua scripts, lists).
None when REDIS_URL is unset: callers then use their in-process fallback."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import weakref
from typing import Any

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


@functools.cache
def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # Redis names scripts by SHA-1


async def aeval(script: str, numkeys: int, *args: Any) -> Any:
    """Run a Lua script by its SHA (EVALSHA), sending its text only the first time a
    server sees it: the text of the admission script is larger than the request."""
    client = async_client()
    try:
        return await client.evalsha(_sha(script), numkeys, *args)
    except redis.exceptions.NoScriptError:
        return await client.eval(script, numkeys, *args)


def seval(script: str, numkeys: int, *args: Any) -> Any:
    client = sync_client()
    try:
        return client.evalsha(_sha(script), numkeys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(script, numkeys, *args)
