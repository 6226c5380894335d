"""How a chat completion (or its stream) is written back in the caller's dialect.

The pipeline always works in OpenAI chat completions; an emitter turns its output
into what the client's SDK expects. OpenAI chat callers get the upstream's bytes
untouched when the upstream speaks OpenAI.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import OPENAI, GatewayError
from providers.adapters.base import StreamPiece
from providers.translation.sse import sse_data

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
        if not self.include_usage and not chunk.get("choices") and chunk.get("usage"):
            return b""
        return piece.raw if piece.raw is not None else sse_data(chunk)

    def finish(self) -> bytes:
        return _DONE

    def error(self, err: GatewayError) -> bytes:
        return sse_data(err.body(OPENAI)) + _DONE

    def complete(self, completion: dict[str, Any], raw: bytes | None) -> bytes:
        return raw if raw is not None else orjson.dumps(completion)
