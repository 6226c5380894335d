"""The one seam every upstream call goes through: a pooled httpx.AsyncClient per event
loop (one per process under uvicorn or daphne), on aiohttp's engine, which costs about
half the CPU of httpx's own pool (DESIGN.md, The hot path)."""

from __future__ import annotations

import asyncio
import weakref

import httpx
from httpx_aiohttp import AiohttpTransport

CONNECT_TIMEOUT = 10.0  # seconds; the whole call is bounded by the provider's timeout
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None or existing.is_closed:
        existing = httpx.AsyncClient(
            transport=AiohttpTransport(limits=_LIMITS, trust_env=False),
            timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
        )
        _clients[loop] = existing
    return existing


async def aclose() -> None:
    """Close this event loop's client (at server shutdown)."""
    existing = _clients.pop(asyncio.get_running_loop(), None)
    if existing is not None:
        await existing.aclose()
