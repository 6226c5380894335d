"""The ASGI handler for /v1: Django's, without what costs a thread per request.

Django's ASGIHandler runs every sync middleware (MiddlewareMixin) and the sync
receivers of request_started / request_finished through thread-sensitive
sync_to_async, inside a ThreadSensitiveContext that starts a fresh thread for each
request. Profiling showed that to be most of the gateway's CPU. The /v1 views are
async, need no session, CSRF, locale or messages middleware, and release their own
database connections (nexai.db.in_thread), so this handler keeps Django's request,
URL resolving, exception handling and disconnect detection, and drops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix

from gateway.errors import ANTHROPIC, OPENAI, internal
from gateway.relay import new_request_id

log = logging.getLogger(__name__)

PREFIXES = ("/v1/", "/api/v1/")
ROOTS = ("/v1", "/api/v1")


def is_gateway_path(path: str) -> bool:
    return path.startswith(PREFIXES) or path in ROOTS


class GatewayASGIHandler(ASGIHandler):
    def handle_uncaught_exception(self, request: Any, resolver: Any, exc_info: Any) -> Any:
        """A crash answers in the caller's error shape, like every other /v1 error."""
        log.error("unhandled error on %s", request.path, exc_info=exc_info)
        dialect = ANTHROPIC if "/v1/messages" in request.path else OPENAI
        return internal().response(dialect, new_request_id())

    def load_middleware(self, is_async: bool = False) -> None:
        # No settings.MIDDLEWARE: straight to URL resolving and the view.
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

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
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            return

        async def process_request() -> Any:
            response = await self.run_get_response(request)
            # A client that disconnects while the response is sent cancels the send.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
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


UPGRADE_REQUIRED = (
    b'{"error":{"message":"The /v1 API speaks HTTP: send POST requests (streams are '
    b'server-sent events). WebSocket mode is not available.","type":"invalid_request_error",'
    b'"param":null,"code":"websocket_not_supported"}}'
)


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
            await send({"type": "websocket.http.response.body", "body": UPGRADE_REQUIRED})
        else:
            await send({"type": "websocket.close", "code": 1008})

    return app
