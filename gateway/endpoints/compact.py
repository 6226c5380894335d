"""POST /v1/responses/compact: Codex CLI's history compaction (`model`,
`instructions`, `input`), answered `{"object": "response.compaction", "output": [...]}`."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import validation
from gateway.calls import ChatCall, metering_body, speaks
from gateway.dialects import CompactEmitter, NativeEmitter
from gateway.endpoints.responses import RESPONSES, owned_previous, to_chat
from gateway.errors import OPENAI
from gateway.relay import Endpoint
from providers.catalogue import ModelInfo

COMPACT = "responses/compact"


class CompactCall(ChatCall):
    """Codex's history compaction: forwarded to upstreams that speak the Responses API,
    otherwise the summary is asked of the model as a plain (unstored) response."""

    def __init__(self, body: dict[str, Any], user_id: int) -> None:
        super().__init__(body=body, chat_body={}, emitter=NativeEmitter(OPENAI))
        self.user_id = user_id

    async def prepare(self, model: ModelInfo) -> None:
        body = {k: v for k, v in self.body.items() if k not in ("stream", "store")}
        native = speaks(model, RESPONSES)
        # Only the caller's own response may be named, forwarded or not.
        previous = await owned_previous(body, self.user_id, native=native)
        history = previous.messages if previous else None
        if native:
            self.native, self.emitter = COMPACT, NativeEmitter(OPENAI)
            self.chat_body = metering_body(body, lambda: to_chat(body, history))
        else:
            self.chat_body = to_chat(body, history)
            self.emitter = CompactEmitter(
                response_id="resp_" + self.request_id.removeprefix("req_"),
                model=model.public_id,
                request_body=body,
            )
        await super().prepare(model)


async def parse_compact(request: HttpRequest, key: KeySnapshot) -> CompactCall:
    body = await validation.json_body(request)
    validation.responses_body(body)
    if body.get("stream") is True:
        raise validation.unsupported("stream", "Compaction answers whole; omit stream.")
    return CompactCall(body, key.user_id)


create = Endpoint("responses.compact", OPENAI, parse_compact)
