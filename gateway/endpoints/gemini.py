"""The Gemini API on every chat model (Gemini CLI, Qwen Code, Google's SDKs), with
every error in Google's shape:

- POST /v1beta/models/{model}:generateContent and :streamGenerateContent (server-sent
  events with `alt=sse`, else one JSON array written as it comes), metered and charged
  like every other dialect;
- POST /v1beta/models/{model}:countTokens, never charged;
- GET /v1beta/models and /v1beta/models/{model}, the chat models the key may use.

The same paths answer under /v1 (Google's SDKs can be set to api version v1). A model
whose every route is a Gemini upstream is forwarded as written (thoughts, thought
signatures, safety settings and Google's own tools survive), renamed to the route's
model; any other is translated through chat.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, metering, validation
from gateway.calls import (
    ChatCall,
    ChatMeter,
    PassthroughCall,
    metered_at,
    metering_body,
    speaks,
)
from gateway.dialects import GeminiEmitter
from gateway.errors import GEMINI, GatewayError
from gateway.relay import Endpoint, Metered, Reply, Stream
from gateway.upstream import Attempt
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import Unsupported
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey, aget_catalogue
from providers.translation import TranslationError, TranslationNotes
from providers.translation.gemini_api.field_names import camel_case_request
from providers.translation.gemini_api.request_to_chat import gemini_request_to_chat

DIALECT = "gemini"


def to_chat(
    body: dict[str, Any],
    *,
    stream: bool = False,
    notes: TranslationNotes | None = None,
    keep_signatures: bool = False,
) -> dict[str, Any]:
    try:
        return gemini_request_to_chat(
            body, stream=stream, notes=notes, keep_signatures=keep_signatures
        )
    except TranslationError as exc:
        raise errors.invalid(exc.message, param=exc.param) from None


def _any_gemini_route(model: ModelInfo) -> bool:
    return any(
        DIALECT in adapter_for(r.provider.kind).native_dialects(r.provider) for r in model.routes
    )


def _output_cap(model: ModelInfo, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the output cap the reservation assumes written into its
    generationConfig: lowered to the model's maximum, or set when the caller set none
    (Gemini CLI never does), so the upstream cannot generate more than was reserved."""
    config = body.get("generationConfig") or {}
    cap = config.get("maxOutputTokens")
    if cap is None:
        cap = model.max_output_tokens or metering.DEFAULT_MAX_OUTPUT
    cap = min(cap, metering.output_limit(model))
    if config.get("maxOutputTokens") == cap:
        return body
    return {**body, "generationConfig": {**config, "maxOutputTokens": cap}}


class GenerateCall(ChatCall):
    """generateContent / streamGenerateContent: forwarded or translated, decided once
    the model (and so its routes) is known."""

    def __init__(self, body: dict[str, Any], *, model_id: str, stream: bool, sse: bool) -> None:
        super().__init__(body=body, chat_body={}, emitter=None)  # type: ignore[arg-type]
        self.model_id = model_id
        self.stream = stream
        self.sse = sse

    async def prepare(self, model: ModelInfo) -> None:
        if speaks(model, DIALECT):
            method = "streamGenerateContent" if self.stream else "generateContent"
            self.native = f"{DIALECT}/{method}"
            self.body = _output_cap(model, self.body)
            self.chat_body = metering_body(self.body, lambda: to_chat(self.body))
        else:
            self.chat_body = to_chat(
                self.body,
                stream=self.stream,
                notes=self.notes,
                keep_signatures=_any_gemini_route(model),
            )
        self.emitter = GeminiEmitter(
            model=model.public_id, sse=self.sse, native=self.native is not None
        )
        await super().prepare(model)

    def bound(self, model: ModelInfo) -> metering.Bound:
        if self.native:
            cap = self.body["generationConfig"]["maxOutputTokens"]
            return metering.raw_body_bound(model, orjson.dumps(self.body), max_output=cap)
        return super().bound(model)

    def whole(self, attempt: Attempt, raw: bytes, content_type: str) -> Metered:
        if not self.native:
            return super().whole(attempt, raw, content_type)
        # The upstream's answer as it came, naming the public model, metered by its usage.
        data = orjson.loads(raw)
        data["modelVersion"] = self.model.public_id
        meter = ChatMeter(self.model, self.input_estimate)
        meter.usage = attempt.adapter.native_usage(self.native, data)
        values = meter.values()
        return Metered(values.pop("charge"), values, orjson.dumps(data))

    def streamed(self, attempt: Attempt) -> Stream:
        stream = super().streamed(attempt)
        stream.content_type = self.emitter.stream_content_type
        return stream


def _check(body: dict[str, Any]) -> None:
    """The checks Google makes before generating, in its words."""
    contents = body.get("contents")
    if not contents:
        raise errors.invalid(
            "* GenerateContentRequest.contents: contents is not specified", param="contents"
        )
    if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
        raise errors.invalid(
            "Invalid value at 'contents': expected a list of Content.", param="contents"
        )
    for i, content in enumerate(contents):
        if not isinstance(content.get("parts"), list) or not content["parts"]:
            raise errors.invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
                param=f"contents[{i}].parts",
            )
    config = body.get("generationConfig")
    if config is None:
        return
    if not isinstance(config, dict):
        raise errors.invalid(
            "Invalid value at 'generation_config': expected an object.", param="generationConfig"
        )
    cap = config.get("maxOutputTokens")
    if cap is not None and (type(cap) is not int or cap < 1 or cap > metering.OUTPUT_CEILING):
        raise errors.invalid(
            "* GenerateContentRequest.generation_config.max_output_tokens: must be a positive "
            "integer.",
            param="generationConfig.maxOutputTokens",
        )
    temperature = config.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise errors.invalid(
            "* GenerateContentRequest.generation_config.temperature: must be between 0 and 2.",
            param="generationConfig.temperature",
        )


def _model_id(request: HttpRequest) -> str:
    # Google's SDKs name models "models/NAME" in the path: /v1beta/models/NAME:method.
    return request.resolver_match.kwargs["model"].removeprefix("models/")


def _parse(stream: bool):  # type: ignore[no-untyped-def]
    async def parse(request: HttpRequest, key: KeySnapshot) -> GenerateCall:
        body = camel_case_request(await validation.json_body(request))
        _check(body)
        sse = request.GET.get("alt") == "sse"
        return GenerateCall(body, model_id=_model_id(request), stream=stream, sse=sse)

    return parse


# -- countTokens -----------------------------------------------------------------------


def _counted(raw: bytes, content_type: str) -> Metered:
    answer = orjson.loads(raw)
    tokens = answer["totalTokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise TypeError("totalTokens is not an integer")
    kept = {k: v for k, v in answer.items() if k in ("totalTokens", "promptTokensDetails")}
    return metered_at(0, orjson.dumps(kept), content_type, input_tokens=tokens)


class CountCall(PassthroughCall):
    """{"totalTokens": N}: the upstream's own count when the first route is a Gemini
    upstream, else nexai's estimate. Never charged; a forwarded count is admitted
    (rate limits, 1 credit held and released at once) and recorded at zero credits."""

    def __init__(self, body: dict[str, Any], *, model_id: str) -> None:
        super().__init__(
            model_id=model_id, path="countTokens", body=body, plan=lambda model: (1, _counted)
        )
        # The request to count is the body's contents, or a whole generateContent
        # request inside it; what chat cannot carry is counted as text.
        inner = body.get("generateContentRequest")
        counted = inner if isinstance(inner, dict) else body
        chat_body = metering_body(counted, lambda: to_chat(counted))
        self.estimate = Reply({"totalTokens": metering.chat_input_tokens(chat_body)})

    async def prepare(self, model: ModelInfo) -> Reply | None:
        first = model.routes[0] if model.routes else None
        gemini = first is not None and DIALECT in adapter_for(first.provider.kind).native_dialects(
            first.provider
        )
        if not gemini:
            return self.estimate
        return await super().prepare(model)

    def build(self, adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        if DIALECT not in adapter.native_dialects(route.provider):
            raise Unsupported("only Gemini upstreams count Gemini tokens")
        return adapter.native_request(
            f"{DIALECT}/countTokens", self.body, route=route, key=key, headers={}
        )

    def failed(self, err: GatewayError) -> Reply | None:
        # The count is advisory: when the upstream cannot give its own, give nexai's.
        return self.estimate if err.status >= 500 else None


async def parse_count(request: HttpRequest, key: KeySnapshot) -> CountCall:
    body = camel_case_request(await validation.json_body(request))
    inner = body.get("generateContentRequest")
    _check(inner if isinstance(inner, dict) else body)
    return CountCall(body, model_id=_model_id(request))


# -- models ----------------------------------------------------------------------------

METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def model_entry(model: ModelInfo) -> dict[str, Any]:
    """Google's Model object for a chat model."""
    return {
        "name": f"models/{model.public_id}",
        "version": "001",
        "displayName": model.public_id,
        "description": f"{model.public_id} through nexai",
        "inputTokenLimit": model.context_window or 0,
        "outputTokenLimit": metering.output_limit(model),
        "supportedGenerationMethods": METHODS,
    }


async def models_for(key: KeySnapshot) -> list[dict[str, Any]]:
    models = sorted((await aget_catalogue()).models.values(), key=lambda m: m.public_id)
    return [model_entry(m) for m in models if m.type == "chat" and key.allows_model(m.public_id)]


async def parse_list(request: HttpRequest, key: KeySnapshot) -> Reply:
    return Reply({"models": await models_for(key)})


async def parse_retrieve(request: HttpRequest, key: KeySnapshot) -> Reply:
    model_id = _model_id(request)
    model = (await aget_catalogue()).get(model_id)
    if model is None or model.type != "chat" or not key.allows_model(model.public_id):
        raise errors.model_not_found(model_id)
    return Reply(model_entry(model))


generate = Endpoint("gemini.generate_content", GEMINI, _parse(stream=False))
stream = Endpoint("gemini.generate_content", GEMINI, _parse(stream=True))
count_tokens = Endpoint("gemini.count_tokens", GEMINI, parse_count)
models = Endpoint("gemini.models.list", GEMINI, parse_list)
model = Endpoint("gemini.models.retrieve", GEMINI, parse_retrieve)
