"""How a chat completion (or its stream) is written back in the caller's dialect.

The pipeline always works in OpenAI chat completions; an emitter turns its output
into what the client's SDK expects: ChatEmitter (chat completions; the upstream's
bytes untouched when the upstream speaks OpenAI), AnthropicEmitter (Messages) and
ResponsesEmitter (Responses API).

A piece with `error` set is the upstream failing inside its stream after output
started: the emitter ends the stream with one error event in its dialect and
writes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.errors import ANTHROPIC, GEMINI, OPENAI, GatewayError
from providers.adapters.base import StreamPiece
from providers.translation import (
    ChatStreamToAnthropic,
    ChatStreamToResponses,
    chat_response_to_anthropic,
    chat_response_to_responses,
)
from providers.translation.gemini_api.response_from_chat import chat_response_to_gemini
from providers.translation.gemini_api.stream_from_chat import ChatStreamToGemini
from providers.translation.sse import sse_data, sse_event

_DONE = b"data: [DONE]\n\n"


class Emitter:
    dialect = OPENAI
    stream_content_type = "text/event-stream"

    def piece(self, piece: StreamPiece) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError

    def error(self, err: GatewayError) -> bytes:
        raise NotImplementedError

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        raise NotImplementedError


class ChatEmitter(Emitter):
    """OpenAI chat completions: passthrough, minus the usage chunk the gateway asked
    for on the client's behalf."""

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage

    def piece(self, piece: StreamPiece) -> bytes:
        chunk = piece.chunk
        if piece.error is not None:
            if piece.raw is not None:
                return piece.raw
            error = {"message": piece.error["message"], "type": piece.error["type"]}
            return sse_data({"error": {**error, "param": None, "code": "upstream_error"}})
        if not self.include_usage and not chunk.get("choices") and chunk.get("usage"):
            return b""
        return piece.raw if piece.raw is not None else sse_data(chunk)

    def finish(self) -> bytes:
        return _DONE

    def error(self, err: GatewayError) -> bytes:
        return sse_data(err.body(OPENAI)) + _DONE

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        return raw if raw is not None else orjson.dumps(completion)


_ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error", "authentication_error", "billing_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error", "api_error",
        "timeout_error", "overloaded_error",
    }
)  # fmt: skip


def _events(events: list[dict[str, Any]]) -> bytes:
    return b"".join(sse_event(event) for event in events)


class AnthropicEmitter(Emitter):
    """Anthropic Messages: message_start ... message_stop, or one Message object."""

    dialect = ANTHROPIC

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.stream = ChatStreamToAnthropic(model=model)
        self.failed = False

    def piece(self, piece: StreamPiece) -> bytes:
        if self.failed:
            return b""
        if piece.error is not None:
            self.failed = True
            kind = piece.error["type"]
            kind = kind if kind in _ANTHROPIC_ERROR_TYPES else "api_error"
            return _events(self.stream.error(piece.error["message"], error_type=kind))
        return _events(self.stream.feed(piece.chunk))

    def finish(self) -> bytes:
        return b"" if self.failed else _events(self.stream.finish())

    def error(self, err: GatewayError) -> bytes:
        self.failed = True
        return _events([err.body(ANTHROPIC)])

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        return orjson.dumps(chat_response_to_anthropic(completion, model=self.model))


class NativeEmitter(Emitter):
    """Callers whose dialect the upstream speaks (Messages to Anthropic, Responses to
    OpenAI): the upstream's events and bodies as they came. The pieces still carry
    chat chunks, but only for metering; an upstream error event is forwarded with
    its own bytes."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def piece(self, piece: StreamPiece) -> bytes:
        return piece.raw or b""

    def finish(self) -> bytes:
        return b""  # the upstream's closing event has been forwarded already

    def error(self, err: GatewayError) -> bytes:
        if self.dialect == ANTHROPIC:
            return _events([err.body(ANTHROPIC)])
        event = {"type": "error", "code": err.code, "message": err.message, "param": err.param}
        return _events([event])

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        return raw if raw is not None else orjson.dumps(completion)


class ResponsesEmitter(Emitter):
    """The Responses API: response.created ... response.completed, or one Response
    object. `on_done` receives the final Response object (to store it) as soon as it
    exists, before its bytes are handed to the client."""

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        request_body: dict[str, Any],
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.response_id = response_id
        self.model = model
        self.request_body = request_body
        self.on_done = on_done
        self.stream = ChatStreamToResponses(
            response_id=response_id, model=model, request_body=request_body
        )
        self.failed = False

    def piece(self, piece: StreamPiece) -> bytes:
        if self.failed:
            return b""
        if piece.error is not None:
            return self._fail(piece.error["message"])
        return _events(self.stream.feed(piece.chunk))

    def finish(self) -> bytes:
        if self.failed:
            return b""
        events = self.stream.finish()
        self._done(self.stream.response)
        return _events(events)

    def error(self, err: GatewayError) -> bytes:
        return self._fail(err.message, code=err.code)

    def _fail(self, message: str, *, code: str = "server_error") -> bytes:
        self.failed = True
        return _events(self.stream.fail(message, code=code))

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        response = chat_response_to_responses(
            completion,
            response_id=self.response_id,
            model=self.model,
            request_body=self.request_body,
        )
        self._done(response)
        return orjson.dumps(response)

    def _done(self, response: dict[str, Any] | None) -> None:
        if response is not None and self.on_done is not None:
            self.on_done(response)


class CompactEmitter(ResponsesEmitter):
    """A compaction (Codex's `/responses/compact`) answered by a translated model: the
    conversation's summary as the history's new items."""

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        response = orjson.loads(super().complete(completion, None))
        return orjson.dumps(
            {
                "id": response["id"],
                "object": "response.compaction",
                "created_at": response["created_at"],
                "output": response["output"],
                "usage": response.get("usage"),
            }
        )


class GeminiEmitter(Emitter):
    """The Gemini API: streamGenerateContent chunks, each one GenerateContentResponse,
    as server-sent events (`alt=sse`, what Google's SDKs and Gemini CLI ask for) or as
    one JSON array written piece by piece (Google's default without `alt=sse`); or one
    GenerateContentResponse.

    `native`: the pieces carry the upstream's own chunks (a Gemini upstream), already
    naming the public model; else chat chunks, translated here."""

    dialect = GEMINI

    def __init__(self, *, model: str, sse: bool = True, native: bool = False) -> None:
        self.model = model
        self.sse = sse
        self.native = native
        self.stream = ChatStreamToGemini(model=model)
        self.opened = self.failed = False
        self.stream_content_type = "text/event-stream" if sse else "application/json"

    def _frame(self, data: bytes) -> bytes:
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        head = b",\r\n" if self.opened else b"["
        self.opened = True
        return head + data

    def _frames(self, chunks: list[dict[str, Any]]) -> bytes:
        return b"".join(self._frame(orjson.dumps(chunk)) for chunk in chunks)

    def _close(self) -> bytes:
        if self.sse:
            return b""
        return b"]" if self.opened else b"[]"

    def piece(self, piece: StreamPiece) -> bytes:
        if self.failed:
            return b""
        if piece.error is not None:
            self.failed = True
            if self.native and piece.raw:
                return self._frame(piece.raw) + self._close()
            error = GatewayError(502, "api_error", "upstream_error", piece.error["message"])
            return self._frame(orjson.dumps(error.body(GEMINI))) + self._close()
        if self.native:
            return self._frame(piece.raw) if piece.raw else b""
        return self._frames(self.stream.feed(piece.chunk))

    def finish(self) -> bytes:
        if self.failed:
            return b""
        out = b"" if self.native else self._frames(self.stream.finish())
        return out + self._close()

    def error(self, err: GatewayError) -> bytes:
        self.failed = True
        return self._frame(orjson.dumps(err.body(GEMINI))) + self._close()

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        return orjson.dumps(chat_response_to_gemini(completion, model=self.model))
