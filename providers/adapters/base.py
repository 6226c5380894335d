"""What the gateway needs from an upstream kind: build a request, read its answer.

Adapters do no I/O: they turn an OpenAI-dialect request into the upstream's own and
its answers back into the OpenAI dialect, so the gateway runs one pipeline for every
kind and this module stays testable with plain dicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey
from providers.redaction import client_message, scrub_event
from providers.translation import SSEParser


@dataclass(slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    json: Any = None
    content: bytes | None = None
    files: Any = None
    data: dict[str, Any] | None = None
    method: str = "POST"


@dataclass(slots=True)
class StreamPiece:
    """One event of a chat stream: the chunk in the OpenAI dialect, and for OpenAI-kind
    upstreams the event's original bytes, so they can be forwarded untouched.

    `error` is set when the upstream reported a failure inside its stream (after the
    200): `{"type", "message"}`; the gateway ends the client's stream with an error
    event in the client's dialect. Made by `failed_piece`, the one place an upstream's
    stream error enters: its message and bytes are scrubbed of credentials there."""

    chunk: dict[str, Any]
    raw: bytes | None = None
    error: dict[str, Any] | None = None


def stream_failure(kind: Any, message: Any) -> dict[str, str]:
    """An upstream's error inside its stream as {type, message}, fit for a client."""
    said = client_message(str(message or "")) or "The upstream failed mid-stream."
    return {"type": str(kind or "api_error"), "message": said}


def failed_piece(failure: dict[str, str], raw: bytes | None = None) -> StreamPiece:
    """The piece for an upstream's error event: `failure` from `stream_failure`, and
    the event's own bytes (forwarded to callers in the upstream's dialect) scrubbed."""
    return StreamPiece({}, raw=scrub_event(raw) if raw is not None else None, error=failure)


class Unsupported(Exception):
    """The upstream kind cannot serve this endpoint."""


class Verdict(enum.Enum):
    """What an upstream's error answer means, as its kind's adapter reads it."""

    KEY_REFUSED = "key refused"  # invalid, revoked or unpaid key: the next key
    RATE_LIMITED = "rate limited"  # the next key; this (key, model) waits
    FAILING = "failing"  # overloaded or broken: the next key
    WRONG_ROUTE = "wrong route"  # this route cannot serve the model: the next route
    TOO_LARGE = "too large"  # the caller's request is too large (413)
    CALLER = "caller"  # the caller's request is at fault (a 400 with the reason)


@dataclass
class ChatStreamDecoder:
    """Upstream stream bytes in, OpenAI chat chunks out."""

    model: str
    done: bool = field(default=False, init=False)
    # A native stream's final answer object, when its dialect has one (the Response
    # of a Responses stream), for the gateway to keep.
    final: dict[str, Any] | None = field(default=None, init=False)
    # UTF-8 bytes of reasoning the upstream streamed that has no chat form (Anthropic's
    # thinking, Gemini's thoughts): output a charge must count when no usage comes.
    reasoning_bytes: int = field(default=0, init=False)

    def feed(self, data: bytes) -> list[StreamPiece]:
        raise NotImplementedError

    def finish(self) -> list[StreamPiece]:
        return []


class TranslatingStreamDecoder(ChatStreamDecoder):
    """An SSE stream in another dialect, fed event by event to a translator from
    providers.translation (anything with feed(event), finish() and error). After an
    error event nothing more is emitted: the error piece says how the stream ended."""

    def __init__(self, *, model: str, translator: Any) -> None:
        super().__init__(model=model)
        self._parser = SSEParser()
        self._translator = translator
        self._failed = False

    def feed(self, data: bytes) -> list[StreamPiece]:
        return self._pieces(self._parser.feed(data))

    def finish(self) -> list[StreamPiece]:
        pieces = self._pieces(self._parser.finish())
        self.done = True
        if self._failed:
            # The closing chunks would claim a normal end; the error piece said it all.
            return pieces
        return pieces + [StreamPiece(chunk) for chunk in self._translator.finish()]

    def failure(self, error: dict[str, Any]) -> dict[str, str]:
        """The upstream's error event as {type, message}."""
        return stream_failure(error.get("type"), error.get("message"))

    def reasoning_in(self, event: dict[str, Any]) -> str:
        """The reasoning text an upstream event carries (subclasses know where)."""
        return ""

    def _wrap(self, name: str, data: str, chunks: list[dict[str, Any]]) -> list[StreamPiece]:
        """The pieces for one upstream event (subclasses may keep its bytes)."""
        return [StreamPiece(chunk) for chunk in chunks]

    def _failed_piece(self, name: str, data: str, error: dict[str, Any]) -> StreamPiece:
        """The piece for the upstream's error event (subclasses may keep its bytes)."""
        return failed_piece(self.failure(error))

    def _pieces(self, events: list[tuple[str, str]]) -> list[StreamPiece]:
        pieces: list[StreamPiece] = []
        for name, data in events:
            if self._failed:
                break
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            if reasoning := self.reasoning_in(event):
                self.reasoning_bytes += len(reasoning.encode())
            chunks = self._translator.feed(event)
            if self._translator.error is not None:
                # The error event itself carries no output: only the error piece.
                self._failed = True
                pieces.append(self._failed_piece(name, data, self._translator.error))
                continue
            pieces.extend(self._wrap(name, data, chunks))
        return pieces


class Adapter:
    kind: str = ""

    # Chat completions: every kind must serve them.
    def chat_request(
        self, body: dict[str, Any], *, route: RouteInfo, key: UpstreamKey, stream: bool
    ) -> UpstreamRequest:
        raise NotImplementedError

    def chat_response(self, data: dict[str, Any], *, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def chat_stream(self, *, model: str) -> ChatStreamDecoder:
        raise NotImplementedError

    # Dialects besides chat completions that this kind's upstream speaks as written
    # ("messages", "responses"): a caller in one of them is forwarded, not translated.
    def native_dialects(self, provider: ProviderInfo) -> frozenset[str]:
        return frozenset()

    def native_request(
        self,
        dialect: str,
        body: dict[str, Any],
        *,
        route: RouteInfo,
        key: UpstreamKey,
        headers: dict[str, str],
    ) -> UpstreamRequest:
        """The caller's request in `dialect`, as written, with the route's model name
        and the caller's headers that the upstream understands."""
        raise Unsupported(f"{self.kind} upstreams do not speak {dialect}")

    def native_stream(self, dialect: str, *, model: str) -> ChatStreamDecoder:
        """Forwards the upstream's own events and reads chat chunks from them to meter."""
        raise Unsupported(f"{self.kind} upstreams do not speak {dialect}")

    def native_usage(self, dialect: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """The usage of a whole answer in `dialect`, in the chat completions shape."""
        return None

    # Other endpoints: OpenAI-compatible kinds pass them through; others may not.
    def passthrough_request(
        self, path: str, *, route: RouteInfo, key: UpstreamKey, body: Any = None, **extra: Any
    ) -> UpstreamRequest:
        raise Unsupported(f"{self.kind} upstreams do not serve {path}")

    def classify(self, status: int, content: bytes) -> Verdict:
        """What a non-2xx answer says is wrong. The statuses every API shares; a kind
        whose API says more in its body (Gemini's 400 for a bad key) overrides it."""
        if status in (401, 403):
            return Verdict.KEY_REFUSED
        if status == 429:
            return Verdict.RATE_LIMITED
        if status >= 500:
            return Verdict.FAILING
        if status == 404:
            # Usually a wrong upstream model name in the catalogue: the route, not the key.
            return Verdict.WRONG_ROUTE
        if status == 413:
            return Verdict.TOO_LARGE
        return Verdict.CALLER

    def error_body(self, content: bytes) -> dict[str, Any]:
        """The upstream's error object ({"message", ...}), or {} when there is none."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return {}
        if isinstance(data, list) and data:
            data = data[0]  # Google wraps some errors in a one-element list
        error = data.get("error") if isinstance(data, dict) else None
        return error if isinstance(error, dict) else {}

    def error_message(self, status: int, content: bytes) -> str:
        """The upstream's own explanation of a 4xx, as it said it (the caller scrubs it)."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return ""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or "")
        if isinstance(error, str):
            return error
        return str(data.get("message") or "") if isinstance(data, dict) else ""
