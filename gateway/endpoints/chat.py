"""POST /v1/chat/completions."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, validation
from gateway.calls import ChatCall
from gateway.dialects import ChatEmitter
from gateway.errors import OPENAI
from gateway.relay import Endpoint
from providers.translation import TranslationError, TranslationNotes, normalize_chat_request


async def parse(request: HttpRequest, key: KeySnapshot) -> ChatCall:
    body = await validation.json_body(request)
    notes = TranslationNotes()
    try:
        # Cursor sends Responses-shaped bodies here; stream_options without a stream.
        body = normalize_chat_request(body, notes=notes)
    except TranslationError as exc:
        raise errors.invalid(exc.message, param=exc.param) from None
    validation.chat_body(body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    call = ChatCall(body=body, chat_body=body, emitter=ChatEmitter(include_usage=include_usage))
    call.notes = notes
    return call


completions = Endpoint("chat.completions", OPENAI, parse)
