"""The kinds of call an endpoint can make, each answering the relay's questions (how
much to reserve, what to send each upstream, how to read, meter and write the answer):

- `ChatCall`: a chat completions body through any upstream (the adapter translates),
  answered in the caller's dialect by an emitter (gateway.dialects);
  or, when every route speaks the caller's dialect (Messages to Anthropic), the
  caller's own request forwarded as written and answered with the upstream's bytes;
- `PassthroughCall`: a body forwarded as it is (embeddings, images, audio, token
  counts), read whole and charged by a price rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, metering, validation
from gateway.dialects import ChatEmitter, Emitter
from gateway.errors import OPENAI, GatewayError
from gateway.relay import Call, Endpoint, Metered, Stream
from gateway.upstream import Attempt
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import ChatStreamDecoder, StreamPiece
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.redaction import scrub_event
from providers.translation import TranslationError, TranslationNotes
from providers.translation.sse import sse_data
from providers.translation.usage import Usage


class ChatMeter:
    """A chat stream's usage: the upstream's own (its usage chunk) when it reports
    one, else nexai's estimate from the text delivered, marked as such."""

    def __init__(
        self, model: ModelInfo, input_estimate: int, decoder: ChatStreamDecoder | None = None
    ) -> None:
        self.model = model
        self.input_estimate = input_estimate
        self.counter = metering.OutputCounter()
        self.decoder = decoder  # reasoning it saw with no chat form counts as output
        self.usage: dict[str, Any] | None = None

    def add(self, piece: StreamPiece) -> None:
        if piece.chunk.get("usage"):
            self.usage = piece.chunk["usage"]
        self.counter.add_chunk(piece.chunk)

    def values(self) -> dict[str, Any]:
        if self.usage:
            usage = Usage.from_openai_chat(self.usage)
            return metering.charge_values(self.model.prices, usage, estimated=False)
        output = self.counter.tokens + (self.decoder.reasoning_bytes if self.decoder else 0)
        estimate = Usage(input_tokens=self.input_estimate, output_tokens=output)
        return metering.charge_values(self.model.prices, estimate, estimated=True)


def metering_body(body: dict[str, Any], translate: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A chat body to estimate a forwarded request's cost with. What chat cannot
    express must not refuse a request that is not translated: it is then counted as
    the text of the whole body."""
    try:
        return translate()
    except (GatewayError, TranslationError):
        text = orjson.dumps({k: v for k, v in body.items() if k not in METERING_SKIPS})
        return {"messages": [{"role": "user", "content": text.decode()}], **_limits(body)}


METERING_SKIPS = frozenset({"model", "stream", "metadata"})


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("max_tokens", "max_output_tokens") if k in body}


def speaks(model: ModelInfo, dialect: str) -> bool:
    """Every route of the model speaks `dialect` as written: a caller in it can be
    forwarded rather than translated, whichever route serves it."""
    return bool(model.routes) and all(
        dialect in adapter_for(r.provider.kind).native_dialects(r.provider) for r in model.routes
    )


class ChatCall(Call):
    """A chat request through whatever the route speaks. With `native` set (a dialect
    every route speaks, e.g. "messages"), `body` is forwarded as written, model
    renamed, and the answer relayed byte for byte; `chat_body` (the same request as
    chat) then serves only to estimate its cost."""

    native: str | None = None

    def __init__(
        self,
        *,
        body: dict[str, Any],
        chat_body: dict[str, Any],
        emitter: Emitter,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.model_id = body.get("model")
        self.stream = body.get("stream") is True
        self.body = body
        self.chat_body = chat_body
        self.emitter = emitter
        self.headers = headers or {}
        self.input_estimate = 0
        # What the translation left out (built-in tools the upstream cannot run).
        self.notes = TranslationNotes()

    def noted(self) -> None:
        """Tells the client, in headers, what the translation dropped."""
        if headers := self.notes.headers():
            self.headers_out = headers

    async def prepare(self, model: ModelInfo) -> None:
        self.model = model
        try:
            metering.output_cap_check(model, self.body)
        except metering.OutputCapError as exc:
            raise self.invalid(exc.param, exc.message) from None
        # A cap above the model's maximum is lowered to it, forwarded or translated.
        self.body = metering.output_cap_clamped(model, self.body)
        self.chat_body = metering.output_cap_clamped(model, self.chat_body)
        # The estimate stands in for the upstream's usage when it reports none; the
        # reservation is an upper bound of the charge, so that concurrent requests
        # can never together overdraw the wallet.
        self.input_estimate = metering.chat_input_tokens(self.chat_body)
        self.reserve = self.bound(model).credits
        self.noted()

    def bound(self, model: ModelInfo) -> metering.Bound:
        if self.native:
            cap = next((self.body[f] for f in metering.OUTPUT_FIELDS if f in self.body), None)
            return metering.raw_body_bound(model, orjson.dumps(self.body), max_output=cap)
        return metering.reservation_bound(model, self.chat_body)

    def invalid(self, param: str, message: str) -> GatewayError:
        return errors.invalid(message, param=param)

    def build(self, adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        if self.native:
            return adapter.native_request(
                self.native, self.body, route=route, key=key, headers=self.headers
            )
        # The output cap the reservation assumed, so the upstream cannot exceed it.
        body = metering.output_cap_for_route(self.model, route, self.chat_body)
        return adapter.chat_request(body, route=route, key=key, stream=self.stream)

    def decoder(self, attempt: Attempt) -> ChatStreamDecoder:
        if self.native:
            return attempt.adapter.native_stream(self.native, model=self.model.public_id)
        return attempt.adapter.chat_stream(model=self.model.public_id)

    def whole(self, attempt: Attempt, raw: bytes, content_type: str) -> Metered:
        data = orjson.loads(raw)
        meter = ChatMeter(self.model, self.input_estimate)
        if self.native:
            # Forwarded as written: the upstream's own bytes, metered by its usage.
            meter.usage = attempt.adapter.native_usage(self.native, data)
            self.answered(data)
            values = meter.values()
            return Metered(values.pop("charge"), values, raw)
        completion = attempt.adapter.chat_response(data, model=self.model.public_id)
        if completion.get("usage"):
            meter.usage = completion["usage"]
        else:
            meter.counter.add_message(completion)
        values = meter.values()
        # The upstream's own bytes, when they are already in the caller's dialect.
        untouched = completion is data and isinstance(self.emitter, ChatEmitter)
        content = self.emitter.complete(completion, raw if untouched else None)
        return Metered(values.pop("charge"), values, content)

    def answered(self, data: dict[str, Any]) -> None:
        """A native answer, whole, before it is written (the Responses store)."""

    def streamed(self, attempt: Attempt) -> Stream:
        decoder = self.decoder(attempt)
        meter = ChatMeter(self.model, self.input_estimate, decoder)
        return Stream(decoder, self.emitter, meter)

    def unread(self) -> dict[str, Any]:
        return ChatMeter(self.model, self.input_estimate).values()


# (the upstream's body, its content type) -> Metered. Raises ValueError (or KeyError,
# TypeError) when the answer cannot be read: the call then fails as a 502.
Meter = Callable[[bytes, str], Metered]


class PassthroughCall(Call):
    """A body forwarded to `path` as it is, read whole and charged by `meter`. The
    model-dependent parts (the reservation, the meter) come from `plan`, once the
    model is known."""

    def __init__(
        self,
        *,
        model_id: Any,
        path: str,
        plan: Callable[[ModelInfo], tuple[int, Meter]],
        body: Any = None,
        files: Callable[[], Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.path = path
        self.plan = plan
        self.body = body
        self.files = files
        self.data = data

    async def prepare(self, model: ModelInfo) -> None:
        self.reserve, self.meter = self.plan(model)

    def build(self, adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        if self.files is not None:
            return adapter.passthrough_request(
                self.path, route=route, key=key, files=self.files(), data=self.data
            )
        return adapter.passthrough_request(self.path, route=route, key=key, body=self.body)

    def whole(self, attempt: Attempt, raw: bytes, content_type: str) -> Metered:
        return self.meter(raw, content_type)


@dataclass
class BytesDecoder(ChatStreamDecoder):
    """A stream of bytes that are not chat (audio, or events the gateway does not
    read): every chunk is forwarded as it came, but for an error event in an SSE
    stream, the upstream's words, which are scrubbed of credentials."""

    sse: bool = False

    def feed(self, data: bytes) -> list[StreamPiece]:
        if self.sse and b'"error"' in data:
            data = scrub_event(data)
        return [StreamPiece({}, raw=data)] if data else []


class BytesEmitter:
    """Writes a BytesDecoder's chunks as they came; an error mid-stream ends an SSE
    stream with an OpenAI error event, and simply ends a raw one."""

    def __init__(self, *, sse: bool) -> None:
        self.sse = sse

    def piece(self, piece: StreamPiece) -> bytes:
        return piece.raw or b""

    def finish(self) -> bytes:
        return b""

    def error(self, err: GatewayError) -> bytes:
        return sse_data(err.body(OPENAI)) if self.sse else b""


class FixedMeter:
    """A stream whose price is known before it starts (speech: its characters)."""

    def __init__(self, charge: int, **values: Any) -> None:
        self.charge = charge
        self.extra = values

    def add(self, piece: StreamPiece) -> None:
        pass

    def values(self) -> dict[str, Any]:
        return {"charge": self.charge, **self.extra}


def json_passthrough(
    name: str,
    path: str,
    *,
    model_type: str,
    check: Callable[[dict[str, Any]], Any],
    plan: Callable[[Any], Callable[[ModelInfo], tuple[int, Meter]]],
) -> Endpoint:
    """An OpenAI-dialect endpoint whose JSON body is forwarded to `path` as it is:
    `check` validates the body and returns what `plan` needs to price it."""

    async def parse(request: HttpRequest, key: KeySnapshot) -> PassthroughCall:
        body = await validation.json_body(request)
        checked = check(body)
        return PassthroughCall(model_id=body.get("model"), path=path, body=body, plan=plan(checked))

    return Endpoint(name, OPENAI, parse, model_types=(model_type,))


def metered_at(charge: int, raw: bytes, content_type: str, **values: Any) -> Metered:
    """The upstream's answer as it came, at `charge` credits."""
    return Metered(charge, values, raw, content_type)
