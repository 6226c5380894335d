"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API on
every chat model, with every error in Anthropic's shape.

A request whose every route speaks Messages is forwarded as written (thinking,
cache_control, server tools and betas survive); any other is translated to chat.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, metering, validation
from gateway.calls import ChatCall, PassthroughCall, metered_at, metering_body, speaks
from gateway.dialects import AnthropicEmitter, NativeEmitter
from gateway.errors import ANTHROPIC, GatewayError
from gateway.relay import Endpoint, Metered, Reply
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import Unsupported
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.translation import (
    TranslationError,
    TranslationNotes,
    anthropic_request_to_chat,
    limit_cache_breakpoints,
)

MESSAGES = "messages"


def _to_chat(body: dict[str, Any], notes: TranslationNotes | None = None) -> dict[str, Any]:
    try:
        return anthropic_request_to_chat(body, notes=notes)
    except TranslationError as exc:
        if exc.param:
            raise validation.messages_invalid(exc.param, exc.message) from None
        raise errors.invalid(exc.message) from None


class MessagesCall(ChatCall):
    """Forwarded or translated, decided once the model (and so its routes) is known."""

    async def prepare(self, model: ModelInfo) -> None:
        if speaks(model, MESSAGES):
            self.native = MESSAGES
            self.body = limit_cache_breakpoints(self.body)  # Anthropic allows four
            self.chat_body = metering_body(self.body, lambda: _to_chat(self.body))
            self.emitter = NativeEmitter(ANTHROPIC)
        else:
            self.chat_body = _to_chat(self.body, self.notes)
            self.emitter = AnthropicEmitter(model=model.public_id)
        await super().prepare(model)

    def bound(self, model: ModelInfo) -> metering.Bound:
        if self.native:
            return metering.messages_reservation_bound(model, self.body)
        return super().bound(model)

    def invalid(self, param: str, message: str) -> GatewayError:
        return validation.messages_invalid(param, message)


async def parse(request: HttpRequest, key: KeySnapshot) -> MessagesCall:
    body = validation.json_body(request)
    validation.messages_body(body)
    beta = request.headers.get("anthropic-beta")
    headers = {"anthropic-beta": beta} if beta else {}
    return MessagesCall(body=body, chat_body={}, emitter=NativeEmitter(ANTHROPIC), headers=headers)


create = Endpoint("messages", ANTHROPIC, parse)


def _counted(raw: bytes, content_type: str) -> Metered:
    tokens = orjson.loads(raw)["input_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise TypeError("input_tokens is not an integer")
    return metered_at(0, orjson.dumps({"input_tokens": tokens}), content_type, input_tokens=tokens)


def _native(route: RouteInfo) -> frozenset[str]:
    return adapter_for(route.provider.kind).native_dialects(route.provider)


class CountCall(PassthroughCall):
    """{"input_tokens": N}: the upstream's own count when the first route speaks Messages,
    else nexai's estimate. Never charged; a forwarded count is admitted (rate limits,
    1 credit held and released at once) and recorded at zero credits."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(
            model_id=body["model"], path="messages/count_tokens", body=body,
            plan=lambda model: (1, _counted),
        )  # fmt: skip
        # count_tokens bodies carry no max_tokens; the translation requires one.
        chat_body = _to_chat({**body, "max_tokens": 1})
        self.estimate = Reply({"input_tokens": metering.chat_input_tokens(chat_body)})

    async def prepare(self, model: ModelInfo) -> Reply | None:
        first = model.routes[0] if model.routes else None
        if first is None or MESSAGES not in _native(first):
            return self.estimate
        return await super().prepare(model)

    def build(self, adapter: Adapter, route: RouteInfo, key: UpstreamKey) -> UpstreamRequest:
        if MESSAGES not in adapter.native_dialects(route.provider):
            raise Unsupported("only upstreams that speak Messages count its tokens")
        return super().build(adapter, route, key)

    def failed(self, err: GatewayError) -> Reply | None:
        # The count is advisory: when the upstream cannot give its own, give nexai's.
        return self.estimate if err.status >= 500 else None


async def parse_count(request: HttpRequest, key: KeySnapshot) -> CountCall:
    body = validation.json_body(request)
    validation.messages_body(body, count_only=True)
    return CountCall(body)


count_tokens = Endpoint("messages.count_tokens", ANTHROPIC, parse_count)
