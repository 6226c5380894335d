"""Request body limits enforced before Django reads the body.

Django's ASGI handler reads a whole request body (spooling it to disk) before any
view runs, so a view cannot refuse a 60 MB upload without having taken it in. This
ASGI middleware sits in front of Django: it answers 413 from the Content-Length
header without reading anything, and stops a chunked upload as soon as it passes
the limit (Django then sees a disconnect and answers nothing; the 413 is sent here).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway.errors import dialect_for_path, too_large
from gateway.relay import new_request_id
from gateway.validation import MAX_JSON_BODY

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_AUDIO_UPLOAD = 50 * 1024 * 1024  # bytes (DESIGN.md: transcription, 50 MiB)

_V1 = re.compile(r"^/(?:api/)?v1(?:beta)?/")
_AUDIO_UPLOAD = re.compile(r"^/(?:api/)?v1/audio/(?:transcriptions|translations)/?$")


def limit_for(path: str) -> int | None:
    """The largest body the path accepts, in bytes; None for paths outside /v1."""
    if _AUDIO_UPLOAD.match(path):
        return MAX_AUDIO_UPLOAD
    if _V1.match(path):
        return MAX_JSON_BODY
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    dialect = dialect_for_path(scope["path"])
    error = too_large(f"The request body is larger than {limit // 2**20} MiB.")
    response = error.response(dialect, new_request_id())
    headers = [(k.lower().encode(), v.encode()) for k, v in response.items()]
    headers.append((b"content-length", str(len(response.content)).encode()))
    # No "connection: close": closing a socket with unread request bytes makes the
    # kernel send a reset, and a client still writing its upload (httpx, requests)
    # could lose the 413 with it. Left open, the server discards what the client
    # still sends (never stored) until its keep-alive timeout, and the client reads
    # the 413 once its write is done.
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class BodyLimit:
    """Wraps an ASGI app (Django) with the /v1 body limits."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > limit:
                await _refuse(scope, send, limit)  # the body is never read
                return
            await self.app(scope, receive, send)
            return
        await self._chunked(scope, receive, send, limit)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Stop reading here: Django sees a disconnect and drops the request.
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
            await _refuse(scope, send, limit)
