"""POST /v1/chat/completions."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import validation
from gateway.calls import ChatCall
from gateway.dialects import ChatEmitter
from gateway.errors import OPENAI
from gateway.relay import Endpoint


async def parse(request: HttpRequest, key: KeySnapshot) -> ChatCall:
    body = validation.json_body(request)
    validation.chat_body(body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return ChatCall(body=body, chat_body=body, emitter=ChatEmitter(include_usage=include_usage))


completions = Endpoint("chat.completions", OPENAI, parse)
