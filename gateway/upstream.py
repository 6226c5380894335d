"""Calling upstreams: routes in order, keys by weight, fallback before the first byte.

An upstream 429, 5xx, connection error or timeout before any output reached the
client puts that key in a short cooldown and moves on to the next key, then the next
route. Once a response is handed back to the caller there is no retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.utils import timezone

from gateway import errors
from nexai.db import in_thread
from providers import http
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import Unsupported, redact
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.models import ProviderKey
from providers.translation import TranslationError

log = logging.getLogger(__name__)

COOLDOWN = 30.0  # seconds, after a 429/5xx/timeout
AUTH_COOLDOWN = 300.0  # seconds, after the upstream refused our key
MAX_COOLDOWN = 300.0

_cooldowns: dict[int, float] = {}  # upstream key id -> monotonic time it is usable again
_background: set[asyncio.Future[None]] = set()  # held so they are not collected early

Build = Callable[[Adapter, RouteInfo, UpstreamKey], UpstreamRequest]


@dataclass
class Attempt:
    response: httpx.Response  # open: the caller reads it, then closes it
    adapter: Adapter
    route: RouteInfo
    key: UpstreamKey
    deadline: float  # monotonic time by which the whole call must end

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def route_values(self) -> dict[str, object]:
        """Where the request went, for its usage record."""
        return {
            "provider": self.route.provider.name,
            "upstream_model": self.route.upstream_model,
            "upstream_key_id": self.key.id,
        }


def usable_keys(route: RouteInfo, now: float | None = None) -> list[UpstreamKey]:
    """The route's keys not in cooldown, in a weighted random order."""
    now = time.monotonic() if now is None else now
    keys = [k for k in route.provider.keys if _cooldowns.get(k.id, 0.0) <= now]
    # Efraimidis-Spirakis: sorting by u ** (1 / weight) draws without replacement in
    # proportion to the weights.
    return sorted(keys, key=lambda k: random.random() ** (1.0 / max(k.weight, 1)), reverse=True)


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", COOLDOWN)), MAX_COOLDOWN)
    except ValueError:
        return COOLDOWN


def cool_down(key: UpstreamKey, seconds: float, reason: str) -> None:
    _cooldowns[key.id] = time.monotonic() + seconds
    log.warning("upstream key %s cooling down %.0fs: %s", key.id, seconds, reason)
    until = timezone.now() + timedelta(seconds=seconds)
    # Recorded for staff in the background: the request does not wait for it.
    task = asyncio.ensure_future(_record_error(key.id, reason[:300], until))
    _background.add(task)
    task.add_done_callback(_background.discard)


@in_thread
def _record_error(key_id: int, reason: str, until: object) -> None:
    ProviderKey.objects.filter(pk=key_id).update(
        last_error=reason, last_error_at=timezone.now(), cooldown_until=until
    )


def reset_cooldowns() -> None:
    _cooldowns.clear()


async def _send(request: UpstreamRequest, timeout: float) -> httpx.Response:
    client = http.client()
    built = client.build_request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.content,
        json=request.json if request.content is None else None,
        files=request.files,
        data=request.data,
    )
    async with asyncio.timeout(timeout):
        return await client.send(built, stream=True)


async def open_call(model: ModelInfo, build: Build) -> Attempt:
    """Try each route and key until one answers 2xx; return it unread.

    Raises the DESIGN.md error: 400 when no route's dialect can carry the request
    (a TranslationError names the field), 503 when no route has a usable key, 504 when every
    attempt timed out, 502 when they failed otherwise, and the upstream's own 4xx
    (as a 400 with its message, secrets removed) when the request itself is at fault.
    """
    tried = timeouts = 0
    refused: Exception | None = None  # why a route could not take the request
    for route in model.routes:
        adapter = adapter_for(route.provider.kind)
        for key in usable_keys(route):
            try:
                request = build(adapter, route, key)
            except (Unsupported, TranslationError) as exc:
                # This route's dialect cannot carry the request: try the next route.
                refused = refused or exc
                break
            tried += 1
            deadline = time.monotonic() + route.provider.timeout
            try:
                response = await _send(request, route.provider.timeout)
            except TimeoutError:
                timeouts += 1
                cool_down(key, COOLDOWN, "timeout")
                continue
            except httpx.HTTPError as exc:
                cool_down(key, COOLDOWN, f"connection error: {type(exc).__name__}")
                continue
            if response.status_code < 400:
                return Attempt(response, adapter, route, key, deadline)
            if await _refuse(response, adapter, key) == NEXT_ROUTE:
                break
    if tried == 0:
        if isinstance(refused, TranslationError):
            raise errors.invalid(refused.message, param=refused.param)
        if refused is not None:
            raise errors.invalid(
                f"The model '{model.public_id}' cannot be used with this endpoint: {refused}.",
                param="model",
                code="model_not_supported",
            )
        raise errors.no_keys()
    if timeouts == tried:
        raise errors.upstream_timeout()
    raise errors.upstream_failed()


NEXT_KEY, NEXT_ROUTE = "next key", "next route"


async def _refuse(response: httpx.Response, adapter: Adapter, key: UpstreamKey) -> str:
    """Deal with a non-2xx answer: say what to try next, or raise when the client's
    request is what the upstream refused."""
    status = response.status_code
    content = await response.aread()
    await response.aclose()
    if status == 429 or status >= 500:
        cool_down(key, _retry_after(response), f"upstream answered {status}")
        return NEXT_KEY
    if status in (401, 403):
        cool_down(key, AUTH_COOLDOWN, f"upstream refused the key ({status})")
        return NEXT_KEY
    if status == 404:
        # Usually a wrong upstream model name in the catalogue: the route, not the key.
        log.warning("upstream answered 404 for key %s", key.id)
        return NEXT_ROUTE
    message = redact(adapter.error_message(status, content), key.secret)
    if status == 413:
        raise errors.too_large(message or "The upstream refused the request as too large.")
    raise errors.invalid(message or f"The upstream refused the request ({status}).")
