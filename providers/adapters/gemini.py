"""Google's Gemini API (`kind: gemini`): chat completions translated to
generateContent and back (providers.translation.gemini), and Gemini API callers
(Gemini CLI, Google's SDKs) forwarded as written (dialect "gemini")."""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.base import (
    Adapter,
    ChatStreamDecoder,
    StreamPiece,
    TranslatingStreamDecoder,
    UpstreamRequest,
    Verdict,
    stream_failure,
)
from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey
from providers.redaction import scrub_json
from providers.translation import GeminiStreamToChat, SSEParser, gemini_response_to_chat
from providers.translation.gemini import chat_request_to_gemini
from providers.translation.usage import Usage

API_VERSION = "v1beta"
GEMINI = frozenset({"gemini"})
# What the Gemini dialect's requests ask of a model ("gemini/<method>").
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
# Google answers a key it does not accept (unknown, deleted, expired) with a 400
# INVALID_ARGUMENT naming one of these reasons, not with a 401.
KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


class GeminiStreamDecoder(TranslatingStreamDecoder):
    """streamGenerateContent?alt=sse in, chat chunks out (usage chunk always on)."""

    def __init__(self, *, model: str) -> None:
        super().__init__(
            model=model, translator=GeminiStreamToChat(model=model, include_usage=True)
        )

    def reasoning_in(self, event: dict[str, Any]) -> str:
        # Thought summaries (parts with thought: true) are the model's reasoning.
        texts = []
        for candidate in event.get("candidates") or ():
            for part in ((candidate or {}).get("content") or {}).get("parts") or ():
                if (
                    isinstance(part, dict)
                    and part.get("thought")
                    and isinstance(part.get("text"), str)
                ):
                    texts.append(part["text"])
        return "".join(texts)

    def failure(self, error: dict[str, Any]) -> dict[str, str]:
        # Google's errors name their kind in `status` (RESOURCE_EXHAUSTED...).
        return stream_failure(error.get("status"), error.get("message"))


class GeminiNativeStreamDecoder(ChatStreamDecoder):
    """For Gemini API callers of Gemini models: each upstream chunk is forwarded whole
    (thoughts, signatures, grounding and all) as its JSON in `raw`, naming the public
    model; the caller's emitter frames it (SSE or a JSON array). It is also translated
    to chat chunks, only so the gateway can meter it like any other stream."""

    def __init__(self, *, model: str) -> None:
        super().__init__(model=model)
        self._parser = SSEParser()
        self._translator = GeminiStreamToChat(model=model, include_usage=True)
        self._failed = False

    def feed(self, data: bytes) -> list[StreamPiece]:
        return self._pieces(self._parser.feed(data))

    def finish(self) -> list[StreamPiece]:
        pieces = self._pieces(self._parser.finish())
        self.done = True
        if self._failed:
            return pieces
        return pieces + [StreamPiece(chunk, raw=b"") for chunk in self._translator.finish()]

    def _pieces(self, events: list[tuple[str, str]]) -> list[StreamPiece]:
        pieces: list[StreamPiece] = []
        for _name, data in events:
            if self._failed:
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict):
                continue
            if isinstance(chunk.get("error"), dict):
                self._failed = True
                error = chunk["error"]
                failure = stream_failure(error.get("status"), error.get("message"))
                # The upstream's own words reach the caller scrubbed, like every
                # upstream error event (providers.redaction).
                pieces.append(StreamPiece({}, raw=orjson.dumps(scrub_json(chunk)), error=failure))
                break
            raw = self._renamed(data.encode(), chunk.get("modelVersion"))
            chats = self._translator.feed(chunk)
            if not chats:
                pieces.append(StreamPiece({}, raw=raw))
                continue
            first, *rest = chats
            pieces += [StreamPiece(first, raw=raw), *(StreamPiece(c, raw=b"") for c in rest)]
        return pieces

    def _renamed(self, raw: bytes, version: Any) -> bytes:
        """The chunk naming the public id, not the upstream's: the last occurrence of
        its quoted name (`modelVersion` follows the candidates and the usage), copied
        only when the names differ."""
        if not isinstance(version, str) or version == self.model:
            return raw
        head, found, tail = raw.rpartition(orjson.dumps(version))
        return head + orjson.dumps(self.model) + tail if found else raw


class GeminiAdapter(Adapter):
    kind = "gemini"

    def _url(self, route: RouteInfo, method: str) -> str:
        base = route.provider.base_url
        # base_url is https://generativelanguage.googleapis.com, or already ends in a version.
        prefix = base if base.endswith(("/v1beta", "/v1")) else f"{base}/{API_VERSION}"
        return f"{prefix}/models/{route.upstream_model}:{method}"

    def _headers(self, key: UpstreamKey) -> dict[str, str]:
        return {"x-goog-api-key": key.secret, "content-type": "application/json"}

    def chat_request(
        self, body: dict[str, Any], *, route: RouteInfo, key: UpstreamKey, stream: bool
    ) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest(
            url=self._url(route, method),
            headers=self._headers(key),
            content=orjson.dumps(chat_request_to_gemini(body)),
        )

    def chat_response(self, data: dict[str, Any], *, model: str) -> dict[str, Any]:
        return gemini_response_to_chat(data, model=model)

    def chat_stream(self, *, model: str) -> ChatStreamDecoder:
        return GeminiStreamDecoder(model=model)

    def native_dialects(self, provider: ProviderInfo) -> frozenset[str]:
        return GEMINI

    def native_request(
        self,
        dialect: str,
        body: dict[str, Any],
        *,
        route: RouteInfo,
        key: UpstreamKey,
        headers: dict[str, str],
    ) -> UpstreamRequest:
        """A Gemini API request ("gemini/<method>") sent as the caller wrote it, to the
        route's model: the model is named in the URL (and, for a countTokens request
        wrapping a whole generateContent request, in that request too)."""
        kind, _, method = dialect.partition("/")
        if kind not in GEMINI or method not in METHODS:
            return super().native_request(dialect, body, route=route, key=key, headers=headers)
        inner = body.get("generateContentRequest")
        if isinstance(inner, dict) and "model" in inner:
            body = {
                **body,
                "generateContentRequest": {**inner, "model": f"models/{route.upstream_model}"},
            }
        if method == "streamGenerateContent":
            method += "?alt=sse"  # whatever the caller asked: the emitter frames it
        return UpstreamRequest(
            url=self._url(route, method), headers=self._headers(key), content=orjson.dumps(body)
        )

    def native_stream(self, dialect: str, *, model: str) -> ChatStreamDecoder:
        if dialect.partition("/")[0] not in GEMINI:
            return super().native_stream(dialect, model=model)
        return GeminiNativeStreamDecoder(model=model)

    def native_usage(self, dialect: str, data: dict[str, Any]) -> dict[str, Any] | None:
        usage = data.get("usageMetadata")
        return Usage.from_gemini(usage).to_openai_chat() if isinstance(usage, dict) else None

    def classify(self, status: int, content: bytes) -> Verdict:
        """Google's bad keys are 400s whose ErrorInfo says API_KEY_INVALID (and a 400
        FAILED_PRECONDITION is the key's project: billing, or a region Google does not
        serve): the key's fault, never the caller's."""
        if status == 400:
            error = self.error_body(content)
            if error.get("status") == "FAILED_PRECONDITION" or _reasons(error) & KEY_REASONS:
                return Verdict.KEY_REFUSED
        return super().classify(status, content)

    def error_message(self, status: int, content: bytes) -> str:
        """Google's errors: {"error": {"code", "message", "status", "details"}}, sometimes
        wrapped in a one-element list."""
        error = self.error_body(content)
        return str(error.get("message") or error.get("status") or "")


def _reasons(error: dict[str, Any]) -> set[str]:
    details = error.get("details")
    details = details if isinstance(details, list) else []
    return {str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")}
