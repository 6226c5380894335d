"""Chat through any upstream: the one path behind /v1/chat/completions, and behind
/v1/messages and /v1/responses once they have translated their request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
from django.http import HttpResponse, StreamingHttpResponse

from accounts.keycache import KeySnapshot
from billing.pricing import token_charge
from gateway import errors, metering, pipeline, upstream
from gateway.dialects import Emitter
from gateway.errors import GatewayError
from gateway.pipeline import Ticket
from providers.adapters.base import ChatStreamDecoder
from providers.catalogue import ModelInfo
from providers.translation.usage import Usage


def reservation(model: ModelInfo, body: dict[str, Any]) -> tuple[int, int]:
    """(estimated input tokens, credits to reserve): the prompt as counted, plus the
    most output the request allows."""
    input_tokens = metering.chat_input_tokens(body)
    max_output = metering.requested_max_output(body, model.max_output_tokens)
    n = body.get("n") if isinstance(body.get("n"), int) else 1
    estimate = token_charge(model.prices, input_tokens=input_tokens, output_tokens=max_output * n)
    return input_tokens, max(estimate, 1)


async def admit(
    *,
    request_id: str,
    key: KeySnapshot,
    model: ModelInfo,
    chat_body: dict[str, Any],
    endpoint: str,
    stream: bool,
    started: float,
) -> tuple[Ticket, int]:
    """Reserve what a chat request may cost: (ticket, estimated input tokens)."""
    input_estimate, estimate = reservation(model, chat_body)
    ticket = await pipeline.admit(
        request_id=request_id,
        key=key,
        model=model,
        endpoint=endpoint,
        estimate=estimate,
        stream=stream,
        started=started,
    )
    return ticket, input_estimate


def _metered(
    usage: dict[str, Any] | None, *, input_estimate: int, counter: metering.OutputCounter
) -> tuple[Usage, bool]:
    """The upstream's usage when it reported one, else nexai's estimate (marked)."""
    if usage:
        return Usage.from_openai_chat(usage), False
    return Usage(input_tokens=input_estimate, output_tokens=counter.tokens), True


def _charge_values(ticket: Ticket, usage: Usage, estimated: bool) -> dict[str, Any]:
    charge = token_charge(
        ticket.model.prices,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
    )
    return {
        "charge": charge,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "estimated": estimated,
    }


async def run(
    ticket: Ticket,
    body: dict[str, Any],
    emitter: Emitter,
    *,
    input_estimate: int,
    build: upstream.Build | None = None,
    decoder: Callable[[upstream.Attempt], ChatStreamDecoder] | None = None,
) -> HttpResponse:
    """Call the upstream (with fallback) and answer in the emitter's dialect. The
    ticket is always settled: with the real charge, or with nothing on failure.

    `build` and `decoder` replace the adapter's chat request and stream decoder, for
    callers forwarded in the upstream's own dialect (Messages to Anthropic models);
    `body` is then used only to meter by estimate."""
    stream = ticket.stream
    try:
        attempt = await upstream.open_call(
            ticket.model,
            build
            or (
                lambda adapter, route, key: adapter.chat_request(
                    body, route=route, key=key, stream=stream
                )
            ),
        )
    except GatewayError as err:
        await pipeline.settle(ticket, status=err.status, error_code=err.code)
        return err.response(emitter.dialect, ticket.request_id)
    except Exception:
        await pipeline.settle(ticket, status=500, error_code="internal_error")
        raise
    if stream:
        stream_decoder = (
            decoder(attempt)
            if decoder
            else attempt.adapter.chat_stream(model=ticket.model.public_id)
        )
        response = StreamingHttpResponse(
            _relay(ticket, attempt, stream_decoder, emitter, input_estimate=input_estimate),
            content_type=emitter.stream_content_type,
        )
        response["cache-control"] = "no-cache"
        response["x-accel-buffering"] = "no"
        return ticket.headers(response)
    return await _complete(ticket, attempt, emitter, input_estimate=input_estimate)


async def _complete(
    ticket: Ticket, attempt: upstream.Attempt, emitter: Emitter, *, input_estimate: int
) -> HttpResponse:
    try:
        async with asyncio.timeout(attempt.remaining()):
            raw = await attempt.response.aread()
        data = orjson.loads(raw)
        completion = attempt.adapter.chat_response(data, model=ticket.model.public_id)
    except TimeoutError:
        err = errors.upstream_timeout()
    except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        err = errors.upstream_failed("The upstream's answer could not be read.")
    else:
        err = None
    finally:
        await attempt.response.aclose()
    if err is not None:
        await pipeline.settle(
            ticket, status=err.status, error_code=err.code, **attempt.route_values()
        )
        return err.response(emitter.dialect, ticket.request_id)
    ticket.first_byte = time.monotonic()
    counter = metering.OutputCounter()
    if not completion.get("usage"):
        counter.add_message(completion)
    usage, estimated = _metered(
        completion.get("usage"), input_estimate=input_estimate, counter=counter
    )
    # The upstream's own bytes, when they are already in the caller's dialect.
    untouched = completion is data and emitter.dialect == "openai"
    passthrough = raw if untouched or emitter.native else None
    content = emitter.complete(completion, passthrough)
    await pipeline.settle(
        ticket, **_charge_values(ticket, usage, estimated), **attempt.route_values()
    )
    return ticket.headers(HttpResponse(content, content_type="application/json"))


async def _relay(
    ticket: Ticket,
    attempt: upstream.Attempt,
    decoder: ChatStreamDecoder,
    emitter: Emitter,
    *,
    input_estimate: int,
) -> AsyncIterator[bytes]:
    """Forward the upstream's stream in the client's dialect. The request is settled
    exactly once, and before the client's last bytes: a client that has seen the end
    of its stream can rely on the charge being recorded."""
    counter = metering.OutputCounter()
    usage: dict[str, Any] | None = None
    outcome: dict[str, Any] = {"status": 200}
    settled = False

    async def settle() -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        metered, estimated = _metered(usage, input_estimate=input_estimate, counter=counter)
        await pipeline.settle(
            ticket,
            **outcome,
            **_charge_values(ticket, metered, estimated),
            **attempt.route_values(),
        )
        # Closed after the charge is queued, so an upstream that sees the connection
        # go knows the request has been settled.
        await attempt.response.aclose()

    chunks = attempt.response.aiter_bytes().__aiter__()
    try:
        while True:
            try:
                async with asyncio.timeout(attempt.remaining()):
                    data = await chunks.__anext__()
            except StopAsyncIteration:
                pieces, done = decoder.finish(), True
            else:
                pieces, done = decoder.feed(data), False
            out = []
            for piece in pieces:
                if piece.error is not None:
                    # The upstream failed inside its 200 stream: the emitter ends the
                    # client's stream with an error event; what came before is charged.
                    outcome = {"status": 502, "error_code": "upstream_error"}
                if piece.chunk.get("usage"):
                    usage = piece.chunk["usage"]
                counter.add_chunk(piece.chunk)
                out.append(emitter.piece(piece))
            if done:
                out.append(emitter.finish())
                await settle()
            payload = b"".join(out)
            if payload:
                if ticket.first_byte is None:
                    ticket.first_byte = time.monotonic()
                yield payload
            if done:
                return
            await _progress(ticket, usage, input_estimate, counter)
    except asyncio.CancelledError:
        # The client went away: stop the upstream and charge what was made.
        outcome = {"status": 499, "error_code": "client_disconnected", "client_disconnected": True}
        raise
    except (TimeoutError, httpx.HTTPError) as exc:
        err = (
            errors.upstream_timeout()
            if isinstance(exc, TimeoutError)
            else errors.upstream_failed("The upstream connection failed mid-stream.")
        )
        outcome = {"status": err.status, "error_code": err.code}
        await settle()
        yield emitter.error(err)
    finally:
        await settle()


async def _progress(
    ticket: Ticket,
    usage: dict[str, Any] | None,
    input_estimate: int,
    counter: metering.OutputCounter,
) -> None:
    if time.monotonic() - ticket.last_heartbeat < pipeline.HEARTBEAT_EVERY:
        return
    metered, estimated = _metered(usage, input_estimate=input_estimate, counter=counter)
    values = _charge_values(ticket, metered, estimated)
    await pipeline.heartbeat(ticket, charge_so_far=values.pop("charge"), **values)
