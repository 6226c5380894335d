"""The one seam every upstream call goes through: a pooled aiohttp session per event
loop (one per process under uvicorn or daphne), and the small response type the
gateway reads.

aiohttp directly, not httpx on aiohttp's engine: the httpx layer (its request and
response models, header normalisation, cookie handling) cost about 130 µs of CPU per
call here, more than aiohttp itself (docs/performance.md). What the gateway needs of a
client is little: send a request with a deadline, read the answer whole or as it
comes, close it early.

A proxy shared by every customer keeps no cookies: upstreams set them (Cloudflare's,
on every OpenAI answer), and one call's must not go out with the next customer's.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson

from providers.adapters.base import UpstreamRequest

CONNECT_TIMEOUT = 10.0  # seconds; the whole call is bounded by the provider's timeout
MAX_CONNECTIONS = 1000
KEEPALIVE = 30.0  # seconds an idle upstream connection is kept

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


class TransportError(Exception):
    """The upstream could not be reached, or the connection failed while its answer
    was read. (A deadline passing raises TimeoutError instead.)"""


class UpstreamResponse:
    """An upstream's answer, open: read it with `aread` or `aiter_bytes`, then
    `aclose` it (an answer not read to its end closes its connection)."""

    __slots__ = ("_response", "headers", "reason_phrase", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = response.headers  # case-insensitive
        self.reason_phrase: str = response.reason or ""

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except aiohttp.ClientError as exc:
            raise _failure(exc) from exc

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives (decompressed), in whatever pieces the network gives."""
        try:
            async for data in self._response.content.iter_any():
                yield data
        except aiohttp.ClientError as exc:
            raise _failure(exc) from exc

    def at_end(self) -> bool:
        """The body has arrived whole and been read to its end: no more pieces."""
        return self._response.content.at_eof()

    async def aclose(self) -> None:
        if self.at_end():
            self._response.release()  # read to its end: the connection is reused
        else:
            self._response.close()  # cut short: the upstream sees the connection go


def _failure(exc: aiohttp.ClientError) -> Exception:
    """aiohttp's error as the gateway's: a timeout stays a TimeoutError; anything else
    (not reachable, refused, reset, not HTTP) names its kind, never the URL."""
    if isinstance(exc, TimeoutError):
        return TimeoutError(type(exc).__name__)
    return TransportError(type(exc).__name__)


def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE)
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
            trust_env=False,
        )
        _sessions[loop] = session
    return session


def _body(request: UpstreamRequest) -> tuple[dict[str, str], Any]:
    headers = dict(request.headers)
    if request.files is not None or request.data is not None:
        return headers, _form(request.files or {}, request.data or {})
    if request.content is not None:
        return headers, request.content
    if request.json is not None:
        if not any(name.lower() == "content-type" for name in headers):
            headers["content-type"] = "application/json"
        return headers, orjson.dumps(request.json)
    return headers, None


def _form(files: Mapping[str, Any], data: Mapping[str, Any]) -> aiohttp.FormData:
    """A multipart body from fields (a value or a list of values each) and files
    ((filename, file or bytes, content type) each)."""
    form = aiohttp.FormData()
    for name, value in data.items():
        for one in value if isinstance(value, list | tuple) else (value,):
            form.add_field(name, str(one))
    for name, (filename, content, content_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=content_type)
    return form


async def send(request: UpstreamRequest) -> UpstreamResponse:
    """Send `request`; returns once the answer's status and headers are in, its body
    unread. The caller bounds it with its own deadline (asyncio.timeout)."""
    headers, body = _body(request)
    session = _session()

    # A pooled connection the upstream closed while it sat idle fails at once, before
    # any answer: the request did not reach it, so it goes again on a new connection
    # (a body that is a stream, a multipart upload, cannot be sent twice).
    def attempt() -> Any:
        return session.request(
            request.method, request.url, headers=headers, data=body, allow_redirects=False
        )

    try:
        try:
            response = await attempt()
        except aiohttp.ServerDisconnectedError:
            if isinstance(body, aiohttp.FormData):
                raise
            response = await attempt()
    except aiohttp.ClientError as exc:
        raise _failure(exc) from exc
    return UpstreamResponse(response)


async def aclose() -> None:
    """Close this event loop's session (at server shutdown)."""
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


@atexit.register
def _close_at_exit() -> None:
    """Servers with no ASGI lifespan (daphne, `make run`'s) never call `aclose`: the
    sessions they leave are closed as the process exits, on their stopped loops, or the
    garbage collector would log each as an error at every restart."""
    for loop, session in list(_sessions.items()):
        if session.closed or loop.is_running() or loop.is_closed():
            continue
        with contextlib.suppress(Exception):  # exiting: a failure here changes nothing
            loop.run_until_complete(session.close())
