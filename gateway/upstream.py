"""Calling upstreams: routes in order, keys by weight, fallback before the first byte.

Which (route, key) candidates a request may try is the circuit breaker's call
(gateway/health.py): an open pair or key is skipped, a half-open one is tried by one
request at a time, and when every candidate is open the least recently failed one
gets a trial rather than the caller a 503. Each failure is counted against what it
says is broken (the pair, or the key for a 401/403).

A request makes at most `max_attempts` attempts (the providers file, per provider; the
first route's provider decides) within one deadline: its slowest route's timeout,
counted from its first attempt, so a slow upstream cannot make it wait longer than
that in total. Once a response is handed back to the caller there is no retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway import errors, health
from providers import health as health_store
from providers import http
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import Unsupported, Verdict
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.health import CLOSED, HALF_OPEN
from providers.redaction import client_message, for_staff
from providers.translation import TranslationError

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3

Build = Callable[[Adapter, RouteInfo, UpstreamKey], UpstreamRequest]


@dataclass
class Attempt:
    response: http.UpstreamResponse  # open: the caller reads it, then closes it
    adapter: Adapter
    route: RouteInfo
    key: UpstreamKey
    deadline: float  # monotonic time by which the whole call must end
    candidate: health.Candidate | None = None

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def route_values(self) -> dict[str, object]:
        """Where the request went, for its usage record."""
        return {
            "provider": self.route.provider.name,
            "upstream_model": self.route.upstream_model,
            "upstream_key_id": self.key.id,
        }

    async def failed(self, reason: str) -> None:
        """The 2xx answer turned out unusable (no valid JSON, a stream without one valid
        event, a connection cut mid-answer): count it against the pair like a 5xx."""
        if self.candidate is not None:
            await health.failed(self.candidate, error=f"malformed answer: {reason}"[:300])


def reset_cooldowns() -> None:
    """Forget every breaker state this process holds (tests)."""
    health.reset()


def max_attempts(model: ModelInfo) -> int:
    if not model.routes:
        return DEFAULT_MAX_ATTEMPTS
    value = model.routes[0].provider.settings.get("max_attempts")
    return value if isinstance(value, int) and value >= 1 else DEFAULT_MAX_ATTEMPTS


async def _send(request: UpstreamRequest, timeout: float) -> http.UpstreamResponse:
    async with asyncio.timeout(timeout):
        return await http.send(request)


NEXT_KEY, NEXT_ROUTE, TIMED_OUT = "next key", "next route", "timed out"


class _Call:
    """One request's way through its candidates."""

    def __init__(self, model: ModelInfo, build: Build, gone: Callable[[], bool]) -> None:
        self.model = model
        self.build = build
        self.gone = gone
        self.started = time.monotonic()
        budget = max((r.provider.timeout for r in model.routes), default=300)
        self.deadline = self.started + budget
        self.max_attempts = max_attempts(model)
        self.tried = self.timeouts = 0
        self.refused: Exception | None = None  # why a route could not take the request
        self.skipped_routes: set[int] = set()

    def exhausted(self) -> bool:
        # Nothing is sent for a client that left: each attempt may be billed.
        if self.gone():
            return True
        return self.tried >= self.max_attempts or time.monotonic() >= self.deadline

    def prepare(self, c: health.Candidate) -> tuple[Adapter, UpstreamRequest] | None:
        adapter = adapter_for(c.route.provider.kind)
        try:
            return adapter, self.build(adapter, c.route, c.key)
        except (Unsupported, TranslationError) as exc:
            # This route's dialect cannot carry the request: try the next route.
            self.refused = self.refused or exc
            self.skipped_routes.add(c.route_index)
            return None

    def timeout_for(self, c: health.Candidate) -> float:
        return min(float(c.route.provider.timeout), max(self.deadline - time.monotonic(), 0.001))

    async def attempt(
        self, c: health.Candidate, adapter: Adapter, request: UpstreamRequest, timeout: float
    ) -> Attempt | str:
        self.tried += 1
        sent = time.monotonic()
        deadline = sent + timeout

        def took() -> int:
            return int((time.monotonic() - sent) * 1000)

        try:
            response = await _send(request, timeout)
        except TimeoutError:
            self.timeouts += 1
            await health.failed(c, error="timeout", latency_ms=took())
            return TIMED_OUT
        except http.TransportError as exc:
            await health.failed(c, error=f"connection error: {exc}")
            return NEXT_KEY
        if response.status_code < 400:
            await health.succeeded(c, latency_ms=took())
            return Attempt(response, adapter, c.route, c.key, deadline, c)
        return await _refuse(response, adapter, c, took())


def _here() -> bool:
    return False


async def open_call(model: ModelInfo, build: Build, gone: Callable[[], bool] = _here) -> Attempt:
    """Try the model's candidates until one answers 2xx; return it unread. Once
    `gone()` says the client left, no further attempt is made.

    Raises the DESIGN.md error: 400 when no route's dialect can carry the request
    (a TranslationError names the field), 503 when no route has a usable key, 504 when
    the attempts timed out or the deadline passed, 502 when they failed otherwise (or
    every candidate is failing and already being tried), and the upstream's own 4xx
    (as a 400 with its message, credentials scrubbed) when the request itself is at fault.
    """
    call = _Call(model, build, gone)
    candidates = await health.candidates(model)
    held: list[health.Candidate] = []  # open, or half-open with a trial under way
    for c in candidates:
        if c.route_index in call.skipped_routes:
            continue
        if call.exhausted():
            break
        state = c.state(health_store.now_ms())
        if state != CLOSED:
            held.append(c)
            if state != HALF_OPEN:
                continue
        prepared = call.prepare(c)
        if prepared is None:
            continue
        timeout = call.timeout_for(c)
        if state == HALF_OPEN:
            if not await health.claim(c, timeout=timeout):
                continue
            held.remove(c)
        outcome = await call.attempt(c, *prepared, timeout)
        if isinstance(outcome, Attempt):
            return outcome
        if outcome == NEXT_ROUTE:
            call.skipped_routes.add(c.route_index)
    if call.tried == 0 and held:
        outcome = await _trial(call, held)
        if isinstance(outcome, Attempt):
            return outcome
    raise _failure(call, bool(candidates))


async def _trial(call: _Call, held: list[health.Candidate]) -> Attempt | str | None:
    """Every candidate is open: the least recently failed one that no other request
    is trying gets one attempt."""
    for c in sorted(held, key=lambda c: c.last_failed):
        if c.route_index in call.skipped_routes:
            continue
        prepared = call.prepare(c)
        if prepared is None:
            continue
        timeout = call.timeout_for(c)
        if await health.claim(c, timeout=timeout, force=True):
            return await call.attempt(c, *prepared, timeout)
    return None


def _failure(call: _Call, any_key: bool) -> errors.GatewayError:
    if call.tried == 0 and call.gone():
        return errors.client_gone()
    if call.tried == 0:
        if isinstance(call.refused, TranslationError):
            return errors.invalid(call.refused.message, param=call.refused.param)
        if call.refused is not None:
            return errors.model_not_supported(
                call.model.public_id, f"cannot be used with this endpoint: {call.refused}"
            )
        if not any_key:
            return errors.no_keys()
        # Every candidate is failing and each is already being tried by a request.
        return errors.upstream_failed(
            "Every upstream for this model is failing; retry in a few seconds.",
            headers={"retry-after": "5"},
        )
    if call.timeouts == call.tried or (call.timeouts and time.monotonic() >= call.deadline):
        return errors.upstream_timeout()
    return errors.upstream_failed()


async def _refuse(
    response: http.UpstreamResponse, adapter: Adapter, c: health.Candidate, latency_ms: int
) -> str:
    """Deal with a non-2xx answer: say what to try next, or raise when the client's
    request is what the upstream refused. What the answer means is its kind's to say
    (Adapter.classify): Google refuses a bad key with a 400, for one. Only when the client's
    request is at fault does the client read what the upstream said (cleaned of
    anything shaped like a credential); staff read every failure in the key's health,
    its secret replaced too."""
    status = response.status_code
    try:
        content = await response.aread()
    except (http.TransportError, TimeoutError):
        content = b""
    finally:
        await response.aclose()
    verdict = adapter.classify(status, content)
    said = adapter.error_message(status, content)
    error = f"upstream answered {status}" + (f": {for_staff(said, c.key.secret)}" if said else "")
    if verdict is Verdict.RATE_LIMITED:
        wait = health.retry_after(response)
        await health.failed(c, error=error, latency_ms=latency_ms, status=429, retry_after=wait)
        return NEXT_KEY
    if verdict in (Verdict.FAILING, Verdict.KEY_REFUSED):
        refused = verdict is Verdict.KEY_REFUSED
        await health.failed(
            c, error=error, latency_ms=latency_ms, status=status, key_refused=refused
        )
        return NEXT_KEY
    if verdict is Verdict.WRONG_ROUTE:
        log.warning("upstream answered %s for key %s: trying the next route", status, c.key.id)
        return NEXT_ROUTE
    # The client's request is at fault: the upstream itself is fine.
    await health.succeeded(c, latency_ms=latency_ms)
    told = client_message(said)
    if verdict is Verdict.TOO_LARGE:
        raise errors.too_large(told or "The upstream refused the request as too large.")
    raise errors.invalid(told or f"The upstream refused the request ({status}).")
