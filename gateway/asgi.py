"""The ASGI handler for /v1: Django's, without what costs a thread per request.

Django's ASGIHandler runs every sync middleware (MiddlewareMixin) and the sync
receivers of request_started / request_finished through thread-sensitive
sync_to_async, inside a ThreadSensitiveContext that starts a fresh thread for each
request. Profiling showed that to be most of the gateway's CPU. The /v1 views are
async, need no session, CSRF, locale or messages middleware, and release their own
database connections (core.db.in_thread), so this handler keeps Django's request,
URL resolving and disconnect detection, and drops the rest.

It also answers every failure in the caller's error shape (gateway/errors.py):
Django's own 404, 405 and 500 pages are HTML, and a crash would otherwise reach
Django's HTML error views; an unreachable Redis or database is a 503
`service_unavailable` (the gateway fails closed: it does not serve what it cannot
account for).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import Http404, HttpResponse
from django.urls import set_script_prefix

from gateway import errors, pipeline
from gateway.errors import ANTHROPIC, GEMINI, GatewayError, dialect_for_path
from gateway.relay import new_request_id
from providers import http

log = logging.getLogger(__name__)

PREFIXES = ("/v1/", "/api/v1/", "/v1beta/", "/api/v1beta/")
ROOTS = ("/v1", "/api/v1", "/v1beta", "/api/v1beta")


def is_gateway_path(path: str) -> bool:
    return path.startswith(PREFIXES) or path in ROOTS


def error_for_exception(request: Any, exc: BaseException) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, Http404):
        return errors.unknown_url(request.method, request.path)
    if isinstance(exc, errors.UNAVAILABLE):
        log.error("a store is unreachable on %s: %r", request.path, exc)
        return errors.service_unavailable()
    log.error("unhandled error on %s", request.path, exc_info=exc)
    return errors.internal()


def _in_shape(body: Any, dialect: str) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "message" not in error:
        return False
    if dialect == GEMINI:
        return "status" in error and "code" in error
    if "type" not in error:
        return False
    return body.get("type") == "error" if dialect == ANTHROPIC else True


def _error_for_response(request: Any, response: HttpResponse, body: Any) -> GatewayError:
    """The error a non-conforming error response meant, in our terms."""
    status = response.status_code
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        # Our own error in the other dialect's shape (an OpenAI-shaped 404 on a
        # Messages path): same status, code and message.
        return GatewayError(
            status, str(error.get("type") or "api_error"), str(error.get("code") or ""),
            str(error["message"]), param=error.get("param"),
        )  # fmt: skip
    if status == 404:
        return errors.unknown_url(request.method, request.path)
    if status == 405:
        return errors.method_not_allowed(request.method, request.path, response.get("Allow", ""))
    if status == 413:
        return errors.too_large("The request body is too large.")
    if status == 503:
        return errors.service_unavailable()
    if status >= 500:
        return errors.internal()
    detail = body.get("detail") if isinstance(body, dict) else None
    return GatewayError(
        status, "invalid_request_error", "invalid_request",
        detail if isinstance(detail, str) else "The request could not be handled.",
    )  # fmt: skip


def conform(request: Any, response: Any) -> Any:
    """Every /v1 response carries x-request-id, and every error is JSON in the caller's
    dialect. Costs one status check on the way out of a successful request."""
    if response.status_code < 400 or getattr(response, "streaming", False):
        if "x-request-id" not in response:
            response["x-request-id"] = new_request_id()
        return response
    dialect = dialect_for_path(request.path)
    body: Any = None
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
    if _in_shape(body, dialect):
        if "x-request-id" not in response:
            response["x-request-id"] = new_request_id()
        return response
    error = _error_for_response(request, response, body)
    fixed = error.response(dialect, response.get("x-request-id") or new_request_id())
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length") and name not in fixed:
            fixed[name] = value
    return fixed


class GatewayASGIHandler(ASGIHandler):
    def handle_uncaught_exception(self, request: Any, resolver: Any, exc_info: Any) -> Any:
        """A crash answers in the caller's error shape, like every other /v1 error."""
        error = error_for_exception(request, exc_info[1])
        return error.response(dialect_for_path(request.path), new_request_id())

    def load_middleware(self, is_async: bool = False) -> None:
        # No settings.MIDDLEWARE: straight to URL resolving and the view, with every
        # exception and every error response turned into the caller's error shape.
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = self._answer

    async def _answer(self, request: Any) -> Any:
        try:
            response = await self._get_response_async(request)
        except Exception as exc:
            error = error_for_exception(request, exc)
            response = error.response(dialect_for_path(request.path), new_request_id())
        return conform(request, response)

    async def send_response(self, response: Any, send: Any) -> None:
        """Django's, except that a stream whose view can tell when it has yielded its
        last part (`is_last_part`) ends with that part rather than with an empty
        message after it: one write, and one wakeup of the client, fewer a stream."""
        is_last = getattr(response, "is_last_part", None)
        if not response.streaming or is_last is None:
            await super().send_response(response, send)
            return
        # (No cookies to add, as Django's does: the gateway's answers set none.)
        headers = [(k.encode("ascii"), v.encode("latin1")) for k, v in response.items()]
        start = {"type": "http.response.start", "status": response.status_code}
        await send({**start, "headers": headers})
        async with contextlib.aclosing(aiter(response)) as content:
            async for part in content:
                last = is_last()
                await send({"type": "http.response.body", "body": part, "more_body": not last})
                if last:
                    return
        await send({"type": "http.response.body"})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # No ThreadSensitiveContext: nothing on this path runs thread-sensitive code.
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        """Django's handle(), less the request_started/finished signals and the
        threaded response.close()."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, _ = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            error = errors.invalid("The request could not be read.")
            dialect = dialect_for_path(scope.get("path", ""))
            await self.send_response(error.response(dialect, new_request_id()), send)
            return

        async def process_request() -> Any:
            response = await self.run_get_response(request)
            # A client that disconnects while the response is sent cancels the send.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            if (unsent := getattr(response, "settle_if_unsent", None)) is not None:
                await asyncio.shield(unsent())
            return response

        # Watch for a disconnect while the view runs: a streaming view is cancelled,
        # which is how it learns to stop its upstream and settle what it delivered.
        listener = asyncio.create_task(self.listen_for_disconnect(receive))
        worker = asyncio.create_task(process_request())
        await asyncio.wait([listener, worker], return_when=asyncio.FIRST_COMPLETED)
        try:
            # The listener first, so its outcome is always collected even if the
            # view's task then raises.
            for task in (listener, worker):
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
        finally:
            body_file.close()


def by_path(gateway_app: Any, site_app: Any) -> Any:
    """Send /v1 traffic to the gateway's handler and everything else to Django's."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        target = gateway_app if is_gateway_path(scope.get("path", "")) else site_app
        await target(scope, receive, send)

    return app


async def lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan of a server process: at shutdown, finish what requests left
    running in the background (settlements), then close the process's upstream
    connections (an aiohttp session left to the garbage collector logs an error for
    each worker at every restart)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pipeline.background_done()
            await http.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


def websockets_by_path(site_app: Any) -> Any:
    """WebSocket handshakes: the dashboard's go to channels; the gateway answers /v1
    handshakes (Codex CLI asks for a Responses WebSocket first) with 426, which makes
    clients fall back to HTTP at once."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if not is_gateway_path(scope.get("path", "")):
            await site_app(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 426,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            body = orjson.dumps(errors.websocket_not_supported().body(errors.OPENAI))
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})

    return app
