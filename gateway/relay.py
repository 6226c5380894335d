"""One lifecycle for every /v1 endpoint.

Every request, whatever its endpoint, goes through `relay(request, endpoint)`, in order:

1. a request id and the clock start (the only place either is made);
2. authentication (accounts.keycache, cached);
   an `Idempotency-Key` replays a kept answer (gateway.idempotency);
3. the endpoint's `parse`: read and check the body, in the endpoint's dialect. It
   returns a `Call` (to send upstream) or a `Reply` (answered here: lists, lookups);
4. the model: enabled, allowed for the key, of a type the endpoint serves;
5. the call's `prepare`: everything that needs the model (translation, the
   reservation); it may still answer with a `Reply`;
6. admission (gateway.pipeline): rate limits and the reservation, in one round trip;
7. the upstream call with fallback (gateway.upstream);
8. the answer, whole or streamed, written by the call in the caller's dialect;
9. settlement, exactly once and shielded: with the real charge, with what was
   delivered when the client goes away, or with nothing when the call failed;
10. any GatewayError, before or after admission, in the endpoint's dialect.

An endpoint is a spec (`Endpoint`): a name, a dialect, the model types it serves, and a
parse function. The kinds of calls it can make (chat through any upstream, a request
forwarded in the upstream's own dialect, a body passed through and metered by a price
rule) are in gateway.calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from accounts.keycache import KeySnapshot
from billing.costs import route_cost
from core.logs import request_id_var
from gateway import errors, metrics, pipeline, upstream
from gateway.auth import authenticate
from gateway.errors import GatewayError
from gateway.idempotency import Claim
from gateway.pipeline import Ticket
from providers import http
from providers.adapters import Adapter, UpstreamRequest
from providers.adapters.base import ChatStreamDecoder, StreamPiece
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.redaction import client_body, media_type

log = logging.getLogger(__name__)


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer the gateway gives itself, with no upstream call and no charge."""

    data: Any  # JSON-serialisable
    status: int = 200


@dataclass(slots=True)
class Metered:
    """A whole answer: what it costs, what its usage record says, what the client gets."""

    charge: int  # credits
    values: dict[str, Any]  # input_tokens, output_tokens, units, estimated...
    content: bytes
    content_type: str = "application/json"


class StreamMeter(Protocol):
    """Counts what a stream delivered, piece by piece."""

    def add(self, piece: StreamPiece) -> None: ...

    def values(self) -> dict[str, Any]:
        """The usage record's values so far, `charge` (credits) included."""
        ...


class Emitter(Protocol):
    """Writes stream pieces back in the caller's dialect (gateway.dialects)."""

    def piece(self, piece: StreamPiece) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, err: GatewayError) -> bytes: ...


@dataclass(slots=True)
class Stream:
    """How one streamed answer is read, written and metered."""

    decoder: ChatStreamDecoder
    emitter: Emitter
    meter: StreamMeter
    content_type: str = "text/event-stream"


class Call:
    """One parsed request of an endpoint: what the relay asks of it. The kinds of
    call are in gateway.calls."""

    model_id: Any = None
    stream: bool = False
    # Headers for the client on a successful answer (e.g. which tools were dropped).
    headers_out: dict[str, str] = {}
    reserve: int = 1  # credits held while the call runs, set by prepare()
    request_id: str = ""  # set by the relay before prepare()

    async def prepare(self, model: ModelInfo) -> Reply | None:
        """Everything that needs the model, before any money moves; may raise a 400."""
        return None

    def build(self, adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        raise NotImplementedError

    def whole(self, attempt: upstream.Attempt, raw: bytes, content_type: str) -> Metered:
        """Read a whole answer. Raising ValueError, KeyError or TypeError makes it a 502."""
        raise NotImplementedError

    def streamed(self, attempt: upstream.Attempt) -> Stream:
        raise NotImplementedError

    async def before_last_bytes(self) -> None:
        """Awaited after settlement and before the client gets its last bytes."""

    def failed(self, err: GatewayError) -> Reply | None:
        """An answer to give instead of an upstream failure (advisory endpoints)."""
        return None

    def unread(self) -> dict[str, Any]:
        """The usage record's values (`charge` included) for a streamed call whose
        upstream was sent the request but none of whose answer was read: the client
        left first. What the upstream bills for it: at least the input."""
        return {}


Parse = Callable[[HttpRequest, KeySnapshot], Awaitable["Call | Reply"]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A /v1 endpoint, declared: the relay does everything else."""

    name: str  # the usage record's endpoint, e.g. "chat.completions"
    dialect: str  # errors.OPENAI, errors.ANTHROPIC or errors.GEMINI
    parse: Parse
    model_types: tuple[str, ...] = ("chat",)
    authenticated: bool = True


def _json(data: Any, request_id: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
    response["x-request-id"] = request_id
    return response


async def relay(request: HttpRequest, endpoint: Endpoint) -> HttpResponse:
    request_id = new_request_id()
    request_id_var.set(request_id)  # every log line of this request carries it
    try:
        return await _lifecycle(request, endpoint, request_id)
    except GatewayError as err:
        return err.response(endpoint.dialect, request_id)
    except errors.UNAVAILABLE:
        # Without Redis or the database nothing can be accounted for: refuse, in
        # the caller's shape, rather than admit what cannot be charged.
        log.exception("a backing service is unavailable (%s %s)", endpoint.name, request_id)
        return errors.service_unavailable().response(endpoint.dialect, request_id)
    except Exception:
        log.exception("unhandled error in %s (%s)", endpoint.name, request_id)
        return errors.internal().response(endpoint.dialect, request_id)


async def _lifecycle(request: HttpRequest, endpoint: Endpoint, request_id: str) -> HttpResponse:
    started = time.monotonic()
    key = await authenticate(request) if endpoint.authenticated else None
    claim = Claim.of(request, key.user_id) if key is not None else None
    if claim is None:
        return await _answer(request, endpoint, request_id, key, started, None)
    if (earlier := await claim.take()) is not None:
        return earlier
    try:
        response = await _answer(request, endpoint, request_id, key, started, claim)
    except BaseException:
        if not claim.deferred:  # an answer still on its way keeps the key (_unattended)
            await claim.release()
        raise
    return await claim.keep(response)


async def _answer(
    request: HttpRequest,
    endpoint: Endpoint,
    request_id: str,
    key: KeySnapshot | None,
    started: float,
    claim: Claim | None,
) -> HttpResponse:
    try:
        call = await endpoint.parse(request, key)  # type: ignore[arg-type]
        if isinstance(call, Reply):
            return _json(call.data, request_id, call.status)
        call.request_id = request_id
        model = await pipeline.model_for(call.model_id, key, types=endpoint.model_types)  # type: ignore[arg-type]
        reply = await call.prepare(model)
        if reply is not None:
            return _json(reply.data, request_id, reply.status)
        ticket = await pipeline.admit(
            request_id=request_id, key=key, model=model, endpoint=endpoint.name,  # type: ignore[arg-type]
            estimate=max(call.reserve, 1), stream=call.stream, started=started,
        )  # fmt: skip
    except GatewayError as err:
        # Refusals are counted too, without the model: a made-up model name must not
        # make a new series.
        metrics.request_done(endpoint=endpoint.name, status=err.status, error_code=err.code)
        return err.response(endpoint.dialect, request_id)
    settle = _Settlement(ticket)
    # The exchange runs in a task of its own, so that a client who leaves does not
    # cancel what the upstream is already doing (and will bill): see _client_left.
    exchange = asyncio.ensure_future(_exchange(ticket, call, settle, endpoint.dialect))
    try:
        return await asyncio.shield(exchange)
    except asyncio.CancelledError:
        await _client_left(call, exchange, settle, claim)
        raise
    except BaseException:
        # Whatever went wrong, the reservation is released (a no-op once settled).
        await settle(status=500, error_code="internal_error")
        raise


async def _client_left(
    call: Call, exchange: asyncio.Future[HttpResponse], settle: _Settlement, claim: Claim | None
) -> None:
    """The client went away before its answer was handed to the server. Every upstream
    call is paid for (docs/pricing.md, "A client that leaves early"):

    - a whole answer is read to its end in the background (within the call's
      deadline) and charged its real usage, so that the charge is what the upstream
      bills; an `Idempotency-Key` then replays that answer, and no further route is
      tried for a client that is gone;
    - a stream is stopped at once (the upstream stops generating when its connection
      goes) and charged the input plus what was generated until then.

    Either way the record says why: status 499, `client_disconnected`."""
    settle.client_left = True
    if exchange.done():
        return  # answered and settled; the client left as it was sent
    if not call.stream:
        if claim is not None:
            claim.deferred = True
        pipeline.in_background(_unattended(exchange, claim))
        return
    exchange.cancel()
    with contextlib.suppress(BaseException):
        await exchange
    # Still unsettled: nothing of the answer was read. If the request went out, the
    # upstream read the prompt.
    await settle(
        status=499, error_code="client_disconnected", **(call.unread() if settle.sent else {})
    )


async def _unattended(exchange: asyncio.Future[HttpResponse], claim: Claim | None) -> None:
    try:
        response = await exchange
    except BaseException:
        log.exception("an answer read for a client that left failed")
        if claim is not None:
            await claim.release()
        return
    if claim is not None:
        await claim.keep(response)


def view(endpoint: Endpoint) -> Callable[..., Awaitable[HttpResponse]]:
    """An async Django view serving `endpoint` (path parameters reach the parse
    function through request.resolver_match.kwargs)."""

    async def serve(request: HttpRequest, **_path: Any) -> HttpResponse:
        return await relay(request, endpoint)

    serve.__name__ = endpoint.name.replace(".", "_")
    serve.__doc__ = endpoint.parse.__doc__
    return serve


class _Settlement:
    """Settles a ticket once: the first outcome reported is the one recorded. Once the
    client has left, the record says so whatever the outcome: a 499 where the upstream
    answered, the upstream's failure otherwise."""

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.done = False
        self.client_left = False
        self.sent = False  # a request was built to go upstream

    async def __call__(self, **values: Any) -> None:
        if self.done:
            return
        self.done = True
        if self.client_left:
            values["client_disconnected"] = True
            if values.get("status", 200) < 400:
                values.update(status=499, error_code="client_disconnected")
        await pipeline.settle(self.ticket, **values)


def _served(ticket: Ticket, attempt: upstream.Attempt, values: dict[str, Any]) -> dict[str, Any]:
    """A usage record's values with where the request went and what it cost us there
    (the route's cost prices, by the same formulas as the charge)."""
    cost = route_cost(attempt.route.cost, {"endpoint": ticket.endpoint, **values})
    return {**values, **attempt.route_values(), "cost": cost}


def _failure(err: GatewayError) -> dict[str, Any]:
    return {"status": err.status, "error_code": err.code}


async def _exchange(ticket: Ticket, call: Call, settle: _Settlement, dialect: str) -> HttpResponse:
    def build(adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        request = call.build(adapter, route, key)
        settle.sent = True  # it goes out now
        return request

    try:
        attempt = await upstream.open_call(ticket.model, build, gone=lambda: settle.client_left)
    except GatewayError as err:
        await settle(**_failure(err))
        return _error(ticket, call, err, dialect)
    if call.stream:
        return await _stream(ticket, call, attempt, settle, dialect)
    return await _whole(ticket, call, attempt, settle, dialect)


def _error(ticket: Ticket, call: Call, err: GatewayError, dialect: str) -> HttpResponse:
    reply = call.failed(err)
    if reply is not None:
        return _json(reply.data, ticket.request_id, reply.status)
    return err.response(dialect, ticket.request_id)


def _read_failure(exc: BaseException) -> GatewayError:
    if isinstance(exc, TimeoutError):
        return errors.upstream_timeout()
    return errors.upstream_failed("The upstream's answer could not be read.")


async def _whole(
    ticket: Ticket, call: Call, attempt: upstream.Attempt, settle: _Settlement, dialect: str
) -> HttpResponse:
    content_type = attempt.response.headers.get("content-type", "application/json")
    try:
        async with asyncio.timeout(attempt.remaining()):
            raw = await attempt.response.aread()
        metered = call.whole(attempt, raw, content_type)
    except (TimeoutError, http.TransportError, ValueError, KeyError, TypeError) as exc:
        err = _read_failure(exc)
        await attempt.failed(err.message)
        await settle(**_failure(err), **attempt.route_values())
        return _error(ticket, call, err, dialect)
    finally:
        await attempt.response.aclose()
    ticket.first_byte = time.monotonic()
    await settle(**_served(ticket, attempt, {"charge": metered.charge, **metered.values}))
    await call.before_last_bytes()
    # What the customer wrote and the model said goes out untouched; only what the
    # upstream says of itself (a 2xx body's error, its content type) is cleaned.
    content_type = media_type(metered.content_type, "application/json")
    response = HttpResponse(client_body(metered.content, content_type), content_type=content_type)
    return _with_headers(ticket, call, response)


def _with_headers(ticket: Ticket, call: Call, response: HttpResponse) -> HttpResponse:
    for name, value in call.headers_out.items():
        response[name] = value
    return ticket.headers(response)


async def _stream(
    ticket: Ticket, call: Call, attempt: upstream.Attempt, settle: _Settlement, dialect: str
) -> HttpResponse:
    stream = call.streamed(attempt)
    relay = _StreamRelay(ticket, call, attempt, stream, settle)
    try:
        first = await relay.first_pieces()
    except asyncio.CancelledError:
        # The client left before the first event: the input (and anything generated
        # but not yet decoded) is charged, by the meter's estimate.
        await relay.close(status=499, error_code="client_disconnected", client_disconnected=True)
        raise
    except BaseException:
        await attempt.response.aclose()
        raise
    if first is None or first[0].error is not None:
        # The upstream's 200 carried no answer at all (nothing, garbage, or only an
        # error event): a failure, not an empty answer, and still early enough to
        # say so with a status.
        err = relay.failure or errors.upstream_failed(
            first[0].error["message"] if first else "The upstream failed."
        )
        await attempt.failed(err.message)
        await relay.close(charge=0, **_failure(err))
        return _error(ticket, call, err, dialect)
    response = StreamingHttpResponse(relay.run(first), content_type=stream.content_type)
    # The ASGI handler ends the response with the part that ends the stream, and
    # settles a stream it never started sending (the client left first).
    response.is_last_part = lambda: relay.done  # type: ignore[attr-defined]
    response.settle_if_unsent = relay.abandoned  # type: ignore[attr-defined]
    response["cache-control"] = "no-cache"
    response["x-accel-buffering"] = "no"
    return _with_headers(ticket, call, response)


class _StreamRelay:
    """Forwards one upstream stream in the caller's dialect, metering as it goes. The
    request is settled exactly once, and before the client's last bytes: a client that
    has seen the end of its stream can rely on the charge being recorded."""

    def __init__(
        self,
        ticket: Ticket,
        call: Call,
        attempt: upstream.Attempt,
        stream: Stream,
        settle: _Settlement,
    ) -> None:
        self.ticket, self.call, self.attempt, self.stream = ticket, call, attempt, stream
        self.settle = settle
        self.chunks = attempt.response.aiter_bytes().__aiter__()
        self.outcome: dict[str, Any] = {"status": 200}
        self.done = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.reporting: asyncio.Future[None] | None = None
        self.failure: GatewayError | None = None  # why the stream ended before any event

    async def _next(self) -> list[StreamPiece]:
        try:
            async with asyncio.timeout(self.attempt.remaining()):
                data = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.done = True
            return self.stream.decoder.finish()
        pieces = self.stream.decoder.feed(data)
        if self.attempt.response.at_end():
            # The upstream's end came with this data (a short answer, or its last
            # event): the client's stream ends with it too, in the same write,
            # instead of after one more read that finds nothing.
            self.done = True
            pieces += self.stream.decoder.finish()
        return pieces

    async def first_pieces(self) -> list[StreamPiece] | None:
        """Reads until the upstream's first event: None when the stream ends (or
        fails) without any, so the caller can still answer with an error status."""
        try:
            while not self.done:
                pieces = await self._next()
                if pieces:
                    return pieces
        except (TimeoutError, http.TransportError) as exc:
            self.failure = _read_failure(exc)
            return None
        self.failure = errors.upstream_failed("The upstream's stream carried no answer.")
        return None

    async def abandoned(self) -> None:
        """The client left before the stream's first byte was asked for: `run` never
        started, so nothing else will settle it or close the upstream."""
        if not self.closed:
            await self.close(status=499, error_code="client_disconnected", client_disconnected=True)

    async def close(self, **outcome: Any) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        values = {**self.stream.meter.values(), **outcome}
        await self.settle(**_served(self.ticket, self.attempt, values))
        # Closed after the charge is queued, so an upstream that sees the connection
        # go knows the request has been settled.
        await self.attempt.response.aclose()

    def _write(self, pieces: list[StreamPiece]) -> bytes:
        out = []
        for piece in pieces:
            if piece.error is not None:
                # The upstream failed inside its 200 stream: the emitter ends the
                # client's stream with an error event; what came before is charged.
                self.outcome = {"status": 502, "error_code": "upstream_error"}
            self.stream.meter.add(piece)
            out.append(self.stream.emitter.piece(piece))
        return b"".join(out)

    async def run(self, first: list[StreamPiece]) -> AsyncIterator[bytes]:
        pieces = first
        try:
            while True:
                payload = self._write(pieces)
                if self.done:
                    payload += self.stream.emitter.finish()
                if payload and self.ticket.first_byte is None:
                    # Before the settlement below: a stream whose first bytes are
                    # also its last is settled with its time to first token.
                    self.ticket.first_byte = time.monotonic()
                    if not self.done:
                        self._report_in(pipeline.FIRST_REPORT_AFTER)
                if self.done:
                    await self.close(**self.outcome)
                    await self.call.before_last_bytes()
                if payload:
                    # Upstream error events were scrubbed where they were read
                    # (providers.adapters); everything else is the model's.
                    yield payload
                if self.done:
                    return
                pieces = await self._next()
        except asyncio.CancelledError:
            # The client went away: stop the upstream and charge what was made.
            await self.close(status=499, error_code="client_disconnected", client_disconnected=True)
            raise
        except (TimeoutError, http.TransportError) as exc:
            err = (
                errors.upstream_timeout()
                if isinstance(exc, TimeoutError)
                else errors.upstream_failed("The upstream connection failed mid-stream.")
            )
            await self.attempt.failed(err.message)
            await self.close(**_failure(err))
            yield self.stream.emitter.error(err)
        finally:
            await self.close(**self.outcome)

    def _report_in(self, seconds: float) -> None:
        """Record what the stream has delivered `seconds` from now, whether or not the
        upstream sends anything meanwhile, so that if this process dies the stale sweep
        charges for that output. A timer, not a check per chunk: a stream that ends
        within the first second costs no report at all."""
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(seconds, self._report_now)

    def _report_now(self) -> None:
        if self.closed:
            return
        values = self.stream.meter.values()
        report = pipeline.heartbeat(self.ticket, charge_so_far=values.pop("charge"), **values)
        # Held until done (a report in flight is harmless once settled: it finds no
        # reservation); the next one is due HEARTBEAT_EVERY later.
        self.reporting = asyncio.ensure_future(report)
        self._report_in(pipeline.HEARTBEAT_EVERY)
