"""Request body limits enforced before the application reads a body, whatever the
server (uvicorn, granian, daphne).

Django's ASGI handler reads a whole request body (spooling it to disk) before any view
runs, so neither a view nor DATA_UPLOAD_MAX_MEMORY_SIZE can refuse a 2 GiB upload
without having taken it in. `BodyLimit` sits in front of the application: it answers
413 from the Content-Length header without reading anything, and stops a chunked
upload as soon as it passes the limit (the application then sees a disconnect and
answers nothing; the 413 is sent here).

daphne (`make run`) is different: Twisted reads the whole body before it calls the
application at all. `install_in_daphne` gives daphne's request the same limits at the
point Twisted learns the length, and as each chunk arrives.

A `policy` maps a request path to its `Limit`: the largest body it accepts and the
answer that refuses a larger one (each part of the site answers in its own shape).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Limit:
    max_bytes: int
    # The 413's headers (content-type and the like, no content-length) and body.
    refusal: Callable[[], tuple[Headers, bytes]]


Policy = Callable[[str], Limit]


def _content_length(headers: Any) -> int | None:
    for name, value in headers or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(limit: Limit, send: Send) -> None:
    headers, body = limit.refusal()
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    # No "connection: close": closing a socket with unread request bytes makes the
    # kernel send a reset, and a client still writing its upload (httpx, requests)
    # could lose the 413 with it. Left open, the server discards what the client
    # still sends (never stored) until its keep-alive timeout, and the client reads
    # the 413 once its write is done.
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Wraps an ASGI app (Django) with the body limits of `policy`."""

    def __init__(self, app: App, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.policy(scope["path"])
        length = _content_length(scope.get("headers"))
        if length is not None:
            if length > limit.max_bytes:
                await _refuse(limit, send)  # the body is never read
                return
            await self.app(scope, receive, send)
            return
        await self._chunked(scope, receive, send, limit)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send, limit: Limit) -> None:
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    # Stop reading here: the app sees a disconnect and drops the request.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _refuse(limit, send)


# -- daphne ------------------------------------------------------------------------------


def install_in_daphne(policy: Policy) -> None:
    """Give daphne's requests the limits of `policy`, if daphne is the server (it has
    imported its HTTP protocol before loading the application). Under another server
    this does nothing."""
    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "body_policy", None) is not None:
        return
    module.WebRequest = type(
        "LimitedWebRequest",
        (_LimitedRequest, module.WebRequest),
        {"body_policy": staticmethod(policy)},
    )


class _LimitedRequest:
    """Mixed into daphne's WebRequest (a twisted.web Request): Twisted calls gotLength
    once the headers are in, then handleContentChunk for each piece of the body, and
    only then process(), which hands the request to the application."""

    body_policy: Policy
    _limit: Limit | None = None
    _received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:  # Twisted's names
        target = self.channel._path.split(b"?", 1)[0]  # type: ignore[attr-defined]
        self._limit = self.body_policy(unquote(target.decode("latin-1")))
        if length is not None and length > self._limit.max_bytes:
            self._refuse()
            return
        super().gotLength(length)  # type: ignore[misc]

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._limit is not None and self._received > self._limit.max_bytes:
            self._refuse()
            return
        super().handleContentChunk(data)  # type: ignore[misc]

    def process(self) -> Any:
        if self._refused:
            return None  # answered already; the application never sees it
        return super().process()  # type: ignore[misc]

    def _refuse(self) -> None:
        """Answer 413 at once and close: nothing more of the body is read or kept."""
        self._refused = True
        self.content = io.BytesIO()
        self.requestHeaders.removeHeader(b"expect")  # type: ignore[attr-defined]
        headers, body = self._limit.refusal()  # type: ignore[union-attr]
        head = b"HTTP/1.1 413 Payload Too Large\r\n"
        for name, value in [*headers, (b"content-length", str(len(body)).encode())]:
            head += name + b": " + value + b"\r\n"
        transport = self.channel.transport  # type: ignore[attr-defined]
        transport.write(head + b"connection: close\r\n\r\n" + body)
        transport.loseConnection()
