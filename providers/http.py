"""The one seam every upstream call goes through: a pooled httpx.AsyncClient per event
loop (one per process under uvicorn or daphne), on aiohttp's engine, which costs about
half the CPU of httpx's own pool (DESIGN.md, The hot path)."""

from __future__ import annotations

import asyncio
import weakref

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

CONNECT_TIMEOUT = 10.0  # seconds; the whole call is bounded by the provider's timeout
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


class _NoCookies(httpx.Cookies):
    """Upstreams set cookies (Cloudflare's, on every OpenAI answer). A proxy shared by
    every customer must not keep one call's cookies for the next: none are kept (and
    none parsed, which was 2% of a request's CPU)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _Client(httpx.AsyncClient):
    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES


def _transport() -> AiohttpTransport:
    transport = AiohttpTransport(limits=_LIMITS, trust_env=False)

    def session() -> aiohttp.ClientSession:
        # The transport's own session, but with aiohttp's cookie jar off too.
        connector = aiohttp.TCPConnector(
            keepalive_timeout=_LIMITS.keepalive_expiry,
            ssl=transport.ssl_context,
            limit=_LIMITS.max_connections or 0,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    transport.client = session
    return transport


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    existing = _clients.get(loop)
    if existing is None or existing.is_closed:
        existing = _Client(
            transport=_transport(),
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
