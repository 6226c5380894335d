"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API on
every chat model, with every error in Anthropic's shape.

A request whose every route speaks Messages is forwarded as written (thinking,
cache_control, server tools and betas survive); any other is translated to chat.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, metering, validation
from gateway.calls import ChatCall, metering_body, speaks
from gateway.dialects import AnthropicEmitter, NativeEmitter
from gateway.errors import ANTHROPIC, GatewayError
from gateway.relay import Endpoint
from providers.catalogue import ModelInfo
from providers.translation import (
    TranslationError,
    TranslationNotes,
    anthropic_request_to_chat,
    limit_cache_breakpoints,
)

MESSAGES = "messages"


def to_chat(body: dict[str, Any], notes: TranslationNotes | None = None) -> dict[str, Any]:
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
            self.chat_body = metering_body(self.body, lambda: to_chat(self.body))
            self.emitter = NativeEmitter(ANTHROPIC)
        else:
            self.chat_body = to_chat(self.body, self.notes)
            self.emitter = AnthropicEmitter(model=model.public_id)
        await super().prepare(model)

    def bound(self, model: ModelInfo) -> metering.Bound:
        if self.native:
            return metering.messages_reservation_bound(model, self.body)
        return super().bound(model)

    def invalid(self, param: str, message: str) -> GatewayError:
        return validation.messages_invalid(param, message)


async def parse(request: HttpRequest, key: KeySnapshot) -> MessagesCall:
    body = await validation.json_body(request)
    validation.messages_body(body)
    beta = request.headers.get("anthropic-beta")
    headers = {"anthropic-beta": beta} if beta else {}
    return MessagesCall(body=body, chat_body={}, emitter=NativeEmitter(ANTHROPIC), headers=headers)


create = Endpoint("messages", ANTHROPIC, parse)
