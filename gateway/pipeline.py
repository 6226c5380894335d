"""The steps every /v1 endpoint shares: admit (model, permissions, rate limits,
reservation) and settle (charge, release, queue the usage record).

Endpoints parse their own request and talk to the upstream through gateway.upstream;
everything about money and limits happens here, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse

from accounts.keycache import KeySnapshot
from accounts.models import ApiKey
from billing.balances import WalletSnapshot
from billing.models import Wallet
from billing.money import credits_to_usd
from billing.overdraw import overdraw_alert
from core.db import in_thread
from gateway import errors, journal, metrics, writer
from gateway.records import Record
from gateway.spend import Admission, Limits, Outcome, RedisDown, release_later, store
from providers.catalogue import ModelInfo, aget_catalogue

log = logging.getLogger(__name__)

# How long past its provider's timeout a reservation may stay unsettled before the
# stale sweep settles it (its process must have died).
STALE_GRACE_MS = 60_000
FIRST_REPORT_AFTER = 1.0  # seconds after a stream's first output: its first progress report
HEARTBEAT_EVERY = 5.0  # seconds between progress reports of a long stream
DIRECT_ATTEMPTS = 5  # writes of a settlement to the database while Redis is down


def _stale_after_ms(model: ModelInfo) -> int:
    """When a reservation made now counts as abandoned: its slowest route's timeout,
    plus a grace period."""
    timeout_ms = max((r.provider.timeout for r in model.routes), default=300) * 1000
    return int(time.time() * 1000) + timeout_ms + STALE_GRACE_MS


@dataclass
class Ticket:
    """An admitted request: what it reserved, and what its usage record will say."""

    request_id: str
    key: KeySnapshot
    model: ModelInfo
    endpoint: str
    reserved: int
    started: float
    rate_headers: dict[str, str]
    stream: bool = False
    first_byte: float | None = None

    def record(self, **values: Any) -> Record:
        """The usage record as it stands, with `values` (charge, tokens, status, route,
        ...: the names of `Record`'s fields) applied."""
        elapsed = time.monotonic() - self.started
        # One construction (no copy): an unknown name is still a TypeError.
        return Record(
            request_id=self.request_id,
            user_id=self.key.user_id,
            api_key_id=self.key.key_id,
            endpoint=self.endpoint,
            model=self.model.public_id,
            stream=self.stream,
            reserved=self.reserved,
            latency_ms=int(elapsed * 1000),
            ttft_ms=int((self.first_byte - self.started) * 1000) if self.first_byte else None,
            **{"status": 200, **values},
        )

    def headers(self, response: HttpResponse) -> HttpResponse:
        response["x-request-id"] = self.request_id
        for name, value in self.rate_headers.items():
            response[name] = value
        return response


async def model_for(model_id: Any, key: KeySnapshot, *, types: tuple[str, ...]) -> ModelInfo:
    """The enabled model the key may use, of a type this endpoint serves."""
    if not isinstance(model_id, str) or not model_id:
        raise errors.invalid("you must provide a model parameter", param="model")
    model = (await aget_catalogue()).get(model_id)
    if model is None:
        raise errors.model_not_found(model_id)
    if not key.allows_model(model_id):
        raise errors.forbidden(
            "model_not_allowed", f"This API key is not allowed to use the model '{model_id}'."
        )
    if model.type not in types:
        raise errors.model_not_supported(
            model_id,
            f"is a {model.type} model and cannot be used with this endpoint (it serves "
            f"{' or '.join(types)} models)",
        )
    return model


def _rate_headers(admission: Admission) -> dict[str, str]:
    reset_s = max(admission.reset_ms // 1000, 1)
    return {
        "x-ratelimit-limit-requests": str(admission.limit),
        "x-ratelimit-remaining-requests": str(max(admission.remaining, 0)),
        "x-ratelimit-reset-requests": f"{reset_s}s",
    }


def _rate_message(admission: Admission, retry_after: str) -> str:
    later = f"Try again in {retry_after}s."
    if admission.outcome is Outcome.RATE_KEY:
        return (
            f"Rate limit reached: this API key is limited to {admission.limit} requests per "
            f"minute (a limit set on the key). {later}"
        )
    if admission.limit == settings.NEXAI_FREE_RPM < settings.NEXAI_PAID_RPM:
        return (
            f"Rate limit reached: the free plan allows {admission.limit} requests per minute. "
            f"Add credits (any top-up) to move to the paid plan, which allows "
            f"{settings.NEXAI_PAID_RPM} per minute. {later}"
        )
    return f"Rate limit reached: your plan allows {admission.limit} requests per minute. {later}"


def _refusal(admission: Admission, estimate: int) -> errors.GatewayError:
    if admission.outcome in (Outcome.RATE_KEY, Outcome.RATE_PLAN):
        retry_after = str(max(admission.reset_ms // 1000, 1))
        headers = {**_rate_headers(admission), "retry-after": retry_after}
        return errors.GatewayError(
            429, "rate_limit_error", "rate_limit_exceeded",
            _rate_message(admission, retry_after), headers=headers,
        )  # fmt: skip
    if admission.outcome is Outcome.KEY_LIMIT:
        return errors.GatewayError(
            402, "insufficient_quota", "key_spend_limit_reached",
            "This API key has reached its spend limit.",
        )  # fmt: skip
    available = max(admission.available, 0)
    return errors.GatewayError(
        402, "insufficient_quota", "insufficient_quota",
        f"Your balance ({credits_to_usd(available)}, {available:,} credits available) cannot "
        f"cover what this request may cost ({credits_to_usd(estimate)}, {estimate:,} credits "
        "held while it runs). Top up, or lower max_tokens.",
    )  # fmt: skip


@in_thread
def _wallet_state(user_id: int) -> WalletSnapshot:
    wallet, _ = Wallet.objects.get_or_create(user_id=user_id)
    return WalletSnapshot(
        user_id=user_id,
        balance=wallet.balance,
        version=wallet.version,
        paid=wallet.paid,
        total_spent=wallet.total_spent,
    )


@in_thread
def _key_spent(key_id: int) -> int:
    return ApiKey.objects.filter(pk=key_id).values_list("spent", flat=True).first() or 0


async def admit(
    *,
    request_id: str,
    key: KeySnapshot,
    model: ModelInfo,
    endpoint: str,
    estimate: int,
    stream: bool,
    started: float,
) -> Ticket:
    """Rate-limit and reserve `estimate` credits, or raise the 402/429 that says why.
    Redis unreachable raises redis.ConnectionError (or TimeoutError): nothing is
    admitted that could not be accounted for, and the request path answers 503."""
    limits = Limits(
        key_rpm=key.rpm,
        free_rpm=settings.NEXAI_FREE_RPM,
        paid_rpm=settings.NEXAI_PAID_RPM,
        key_spend_limit=key.spend_limit,
    )
    deadline_ms = _stale_after_ms(model)
    ticket = Ticket(request_id, key, model, endpoint, estimate, started, {}, stream=stream)
    spend = store()
    for _ in range(3):
        admission = await _admission(spend, ticket, limits=limits, deadline_ms=deadline_ms)
        if admission.outcome is Outcome.INIT_WALLET:
            await spend.init_wallet(await _wallet_state(key.user_id))
        elif admission.outcome is Outcome.INIT_KEY:
            await spend.init_key(
                user_id=key.user_id, key_id=key.key_id, spent=await _key_spent(key.key_id)
            )
        elif admission.ok:
            ticket.rate_headers = _rate_headers(admission)
            return ticket
        else:
            raise _refusal(admission, estimate)
    raise errors.internal()


async def _admission(spend: Any, ticket: Ticket, *, limits: Limits, deadline_ms: int) -> Any:
    """The admission script's answer. A client that goes away while Redis answers
    cancels the request after the reservation may have been made, and nobody would
    settle it (its credits held until the stale sweep, minutes later): the answer is
    awaited anyway, and a reservation it made is settled at once, charging nothing."""
    call = asyncio.ensure_future(
        spend.admit(record=ticket.record(status=0), limits=limits, deadline_ms=deadline_ms)
    )
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        in_background(_settle_if_admitted(call, ticket))
        raise


async def _settle_if_admitted(call: asyncio.Future[Any], ticket: Ticket) -> None:
    try:
        admission = await call
    except Exception:
        return  # refused, or Redis failed: nothing was reserved
    if admission.ok:
        await settle(ticket, status=499, error_code="client_disconnected", client_disconnected=True)


async def heartbeat(ticket: Ticket, *, charge_so_far: int, **usage: Any) -> None:
    """Every few seconds of a long stream, record what it has delivered, so that if
    this process dies the stale sweep charges for that output (the relay decides
    when). Best effort: with Redis unreachable the stream goes on, and its settlement
    writes to the database."""
    try:
        await store().heartbeat(
            record=ticket.record(charge=charge_so_far, status=0, **usage),
            deadline_ms=_stale_after_ms(ticket.model),
        )
    except RedisDown:
        log.warning("heartbeat of %s not recorded: Redis unreachable", ticket.request_id)


async def settle(ticket: Ticket, **values: Any) -> None:
    """Release the reservation and queue the charge and usage record. Shielded: a
    client that disconnects while this runs must not lose the charge."""
    record = ticket.record(**values)
    await asyncio.shield(settle_record(record))
    metrics.request_done(
        endpoint=record.endpoint, model=record.model, provider=record.provider,
        status=record.status, error_code=record.error_code, latency_ms=record.latency_ms,
        ttft_ms=record.ttft_ms, stream=record.stream, input_tokens=record.input_tokens,
        output_tokens=record.output_tokens, charge=record.charge,
    )  # fmt: skip
    writer_kick()


async def settle_record(record: Record) -> None:
    """One Redis round trip on the normal path. A reservation Redis no longer holds
    still charges; a Redis that cannot be reached sends the charge to the database
    directly; either way the writer keeps one charge per request id, and the charge
    journal keeps a copy until a writer has checked it is in the database."""
    try:
        await store().settle(record=record)
    except RedisDown:
        journal.append(record)
        log.error("settling %s: Redis unreachable, writing to the database", record.request_id)
        await _write_direct(record)
        return
    journal.append(record)
    if record.charge > record.reserved:
        in_background(in_thread(overdraw_alert)(
            user_id=record.user_id, request_id=record.request_id,
            reserved=record.reserved, charge=record.charge,
        ))  # fmt: skip


async def _write_direct(record: Record) -> None:
    for attempt in range(DIRECT_ATTEMPTS):
        try:
            await in_thread(writer.write_direct)([record])
        except DatabaseError:
            log.warning("writing %s to the database failed", record.request_id, exc_info=True)
            await asyncio.sleep(0.05 * 2**attempt)
        else:
            release_later(record)
            return
    # Still in the journal, which the writers reconcile once the database is back.
    log.error("charge of %s not written: %s", record.request_id, record.dumps().decode())


_pending: set[asyncio.Task[Any]] = set()


def in_background(coroutine: Any) -> None:
    """Run off the request's path, keeping a reference until it is done (and until
    background_done() at server shutdown)."""
    task = asyncio.ensure_future(coroutine)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def background_done() -> None:
    """Wait for the work started off the requests' path (a settlement after a client
    left mid-admission, an answer read for a client that left, an overdraw alert): at
    server shutdown, and in tests."""
    while _pending:
        await asyncio.gather(*_pending, return_exceptions=True)


def writer_kick() -> None:
    writer.ensure_running()
