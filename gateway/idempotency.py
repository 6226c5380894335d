"""`Idempotency-Key` on POSTs under /v1, with Stripe's semantics.

A customer who sends the same key with the same body within 24 hours gets the first
answer again, byte for byte (a stream's whole event sequence), and is charged once;
while the first request is still running the retry gets a 409; the same key with a
different body (or on another endpoint) is a 422. Keys are scoped per customer.

Only successful answers are kept: a request refused before it ran, or one that failed
or was cut short, releases its key so that a retry runs again. Claims and answers
live in the shared cache (Redis when REDIS_URL is set, so every process sees them).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from gateway.errors import GatewayError

TTL = 24 * 3600  # seconds an answer is kept for replay
RUNNING_TTL = 3600  # a claim whose process died frees itself after this
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("content-type", "x-request-id")


def _conflict() -> GatewayError:
    return GatewayError(
        409, "invalid_request_error", "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being answered; retry when it is done.",
    )  # fmt: skip


def _mismatch() -> GatewayError:
    return GatewayError(
        422, "invalid_request_error", "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request body or endpoint. "
        "Use a new key for a new request.",
        param="Idempotency-Key",
    )  # fmt: skip


@dataclass
class Claim:
    """One customer's use of one idempotency key for one request."""

    user_id: int
    token: str
    fingerprint: str
    # The client left and its answer is still being read (gateway.relay): whoever
    # reads it keeps or releases the key, not the request that went away.
    deferred: bool = False

    @classmethod
    def of(cls, request: HttpRequest, user_id: int) -> Claim | None:
        token = request.headers.get("idempotency-key")
        if request.method != "POST" or not token:
            return None
        if len(token) > MAX_KEY_LENGTH:
            raise GatewayError(
                400, "invalid_request_error", "invalid_idempotency_key",
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters.",
            )  # fmt: skip
        digest = hashlib.sha256(request.path.encode() + b"\n" + request.body).hexdigest()
        return cls(user_id=user_id, token=token, fingerprint=digest)

    @property
    def cache_key(self) -> str:
        token = hashlib.sha256(self.token.encode()).hexdigest()
        return f"idem:{self.user_id}:{token}"

    async def take(self) -> HttpResponse | None:
        """Claims the key for this request (None), or answers as the first use says:
        its kept answer, a 409 while it runs, a 422 for another body."""
        for _ in range(2):
            if await cache.aadd(self.cache_key, {"fp": self.fingerprint}, RUNNING_TTL):
                return None
            earlier = await cache.aget(self.cache_key)
            if earlier is not None:
                break
        else:  # released and claimed again in between, by a concurrent retry
            raise _conflict()
        if earlier["fp"] != self.fingerprint:
            raise _mismatch()
        if "status" not in earlier:
            raise _conflict()
        response = HttpResponse(earlier["body"], status=earlier["status"])
        for name, value in earlier["headers"].items():
            response[name] = value
        response["idempotent-replayed"] = "true"
        return response

    async def release(self) -> None:
        await cache.adelete(self.cache_key)

    async def keep(self, response: HttpResponse) -> HttpResponse:
        """Keeps a successful answer for replay (a stream once it has ended whole);
        releases the key otherwise."""
        if response.status_code >= 300:
            await self.release()
            return response
        headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
        if isinstance(response, StreamingHttpResponse):
            is_last = getattr(response, "is_last_part", None)
            response.streaming_content = self._recorded(
                response.streaming_content, headers, is_last
            )
            return response
        await self._store(response.status_code, headers, response.content)
        return response

    async def _recorded(
        self,
        content: AsyncIterator[bytes],
        headers: dict[str, str],
        is_last: Callable[[], bool] | None,
    ) -> AsyncIterator[bytes]:
        """The stream as it goes, kept once whole. A stream that can tell its last part
        (the ASGI handler then ends the response with it) is kept before that part
        goes out: a client that saw the end can replay it at once."""
        parts: list[bytes] = []
        stored = False
        try:
            async for part in content:
                parts.append(part)
                if is_last is not None and is_last():
                    await self._store(200, headers, b"".join(parts))
                    stored = True
                yield part
            if not stored:
                await self._store(200, headers, b"".join(parts))
                stored = True
        finally:
            if not stored:
                await self.release()

    async def _store(self, status: int, headers: dict[str, str], body: bytes) -> None:
        value = {"fp": self.fingerprint, "status": status, "headers": headers, "body": body}
        await cache.aset(self.cache_key, value, TTL)
