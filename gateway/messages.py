"""/v1/messages and /v1/messages/count_tokens: the Anthropic Messages API on every
chat model, with every error in Anthropic's shape.

Requests are translated to chat completions and run through gateway.chat whatever
the upstream (an Anthropic-kind upstream gets them translated back to Messages by
its adapter), then written back as a Message or its event stream.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

from gateway import chat, errors, metering, passthrough, pipeline, requests
from gateway.auth import authenticate
from gateway.dialects import AnthropicEmitter, NativeAnthropicEmitter
from gateway.errors import ANTHROPIC, GatewayError
from gateway.passthrough import Metered
from providers.adapters.anthropic import AnthropicNativeStreamDecoder
from providers.adapters.base import Unsupported
from providers.catalogue import ModelInfo
from providers.translation import TranslationError, anthropic_request_to_chat


def _invalid(param: str, message: str) -> GatewayError:
    # Anthropic's 400s name the field at the start of the message ("max_tokens: Field
    # required"); its error body has no separate param.
    return errors.invalid(f"{param}: {message}", param=param)


def _validate(body: dict[str, Any], *, count_only: bool = False) -> None:
    for name in ("model", "messages") if count_only else ("model", "max_tokens", "messages"):
        if name not in body:
            raise _invalid(name, "Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _invalid("model", "Input should be a non-empty string")
    if not count_only:
        max_tokens = body["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise _invalid("max_tokens", "Input should be a positive integer")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid("messages", "Input should be a valid list")
    if not messages:
        raise _invalid("messages", "at least one message is required")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _invalid("stream", "Input should be a valid boolean")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 1
    ):
        raise _invalid("temperature", "Input should be a number between 0 and 1")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise _invalid("stop_sequences", "Input should be a list of strings")


def _to_chat(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return anthropic_request_to_chat(body)
    except TranslationError as exc:
        if exc.param:
            raise _invalid(exc.param, exc.message) from None
        raise errors.invalid(exc.message) from None


async def create(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        _validate(body)
        model = await pipeline.model_for(body["model"], key, types=("chat",))
        native = _native(model)
        chat_body = _metering_body(body) if native else _to_chat(body)
        ticket, input_estimate = await chat.admit(
            request_id=request_id,
            key=key,
            model=model,
            chat_body=chat_body,
            endpoint="messages",
            stream=body.get("stream") is True,
            started=started,
        )
    except GatewayError as err:
        return err.response(ANTHROPIC, request_id)
    if native:
        beta = request.headers.get("anthropic-beta")
        return await chat.run(
            ticket,
            chat_body,
            NativeAnthropicEmitter(),
            input_estimate=input_estimate,
            build=lambda adapter, route, key: adapter.native_messages_request(
                body, route=route, key=key, beta=beta
            ),
            decoder=lambda attempt: AnthropicNativeStreamDecoder(model=model.public_id),
        )
    emitter = AnthropicEmitter(model=model.public_id)
    return await chat.run(ticket, chat_body, emitter, input_estimate=input_estimate)


def _native(model: ModelInfo) -> bool:
    """Every route speaks Messages: forward the caller's request as written, so that
    what chat cannot carry (thinking, cache_control, server tools, betas) survives."""
    return bool(model.routes) and all(r.provider.kind == "anthropic" for r in model.routes)


def _metering_body(body: dict[str, Any]) -> dict[str, Any]:
    """A chat body to estimate a forwarded request's cost with. Messages features chat
    cannot express must not refuse a request that is not translated: they are then
    counted as text."""
    try:
        return _to_chat(body)
    except GatewayError:
        text = orjson.dumps([body.get("system"), body.get("messages"), body.get("tools")])
        return {
            "messages": [{"role": "user", "content": text.decode()}],
            "max_tokens": body.get("max_tokens"),
        }


def _estimated_input_tokens(body: dict[str, Any]) -> int:
    # count_tokens bodies carry no max_tokens; the translation requires one.
    return metering.chat_input_tokens(_to_chat({**body, "max_tokens": 1}))


def _count_meter(raw: bytes, content_type: str) -> Metered:
    tokens = orjson.loads(raw)["input_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise TypeError("input_tokens is not an integer")
    return Metered(0, {"input_tokens": tokens}, content=orjson.dumps({"input_tokens": tokens}))


def _forwards_count(model: ModelInfo) -> bool:
    return bool(model.routes) and model.routes[0].provider.kind == "anthropic"


async def count_tokens(request: HttpRequest) -> HttpResponse:
    """{"input_tokens": N}: Anthropic's own count when the model's first route is
    Anthropic, else nexai's estimate (gateway.metering). Never charged; a forwarded
    count is admitted (rate limits; a reservation of 1 credit, released at once) and
    recorded at zero credits."""
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        _validate(body, count_only=True)
        model = await pipeline.model_for(body["model"], key, types=("chat",))
        estimate = _estimated_input_tokens(body)
        if not _forwards_count(model):
            response = HttpResponse(
                orjson.dumps({"input_tokens": estimate}), content_type="application/json"
            )
            response["x-request-id"] = request_id
            return response
        ticket = await pipeline.admit(
            request_id=request_id, key=key, model=model, endpoint="messages.count_tokens",
            estimate=1, stream=False, started=started,
        )  # fmt: skip
    except GatewayError as err:
        return err.response(ANTHROPIC, request_id)

    def build(adapter: Any, route: Any, upstream_key: Any) -> Any:
        if adapter.kind != "anthropic":
            raise Unsupported("only Anthropic counts tokens natively")
        return adapter.passthrough_request(
            "messages/count_tokens", route=route, key=upstream_key, body=body
        )

    response = await passthrough.run(ticket, build, _count_meter, dialect=ANTHROPIC)
    if response.status_code >= 500:
        # The count is advisory: when Anthropic cannot give its own, give nexai's.
        response = HttpResponse(
            orjson.dumps({"input_tokens": estimate}), content_type="application/json"
        )
        response["x-request-id"] = request_id
    return response
