"""POST /v1/messages/count_tokens: never charged."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import metering, validation
from gateway.calls import PassthroughCall, metered_at
from gateway.endpoints.messages import MESSAGES, to_chat
from gateway.errors import ANTHROPIC, GatewayError
from gateway.relay import Endpoint, Metered, Reply
from providers.adapters import Adapter, UpstreamRequest, adapter_for
from providers.adapters.base import Unsupported
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey


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
        chat_body = to_chat({**body, "max_tokens": 1})
        self.estimate = Reply(
            {"input_tokens": metering.chat_input_tokens(chat_body, count=metering.tokens_for_text)}
        )

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
    body = await validation.json_body(request)
    validation.messages_body(body, count_only=True)
    return CountCall(body)


create = Endpoint("messages.count_tokens", ANTHROPIC, parse_count)
