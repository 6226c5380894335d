"""Anthropic's Messages API (`kind: anthropic`): chat completions translated to
Messages and back, streams included (providers.translation.anthropic)."""

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
    failed_piece,
)
from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey
from providers.translation import (
    AnthropicStreamToChat,
    anthropic_response_to_chat,
    chat_request_to_anthropic,
)
from providers.translation.usage import Usage

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # when neither the request nor the model sets one
# Paths forwarded as they are, for callers that already speak Messages.
NATIVE_PATHS = frozenset({"messages", "messages/count_tokens"})
MESSAGES = frozenset({"messages"})


class AnthropicStreamDecoder(TranslatingStreamDecoder):
    """Messages stream events in, chat chunks out, with the usage chunk always on:
    metering needs it, and the gateway strips it for callers that did not ask."""

    def __init__(self, *, model: str) -> None:
        super().__init__(
            model=model, translator=AnthropicStreamToChat(model=model, include_usage=True)
        )

    def reasoning_in(self, event: dict[str, Any]) -> str:
        delta = event.get("delta") if event.get("type") == "content_block_delta" else None
        if isinstance(delta, dict) and delta.get("type") == "thinking_delta":
            thinking = delta.get("thinking")
            return thinking if isinstance(thinking, str) else ""
        return ""


class AnthropicNativeStreamDecoder(AnthropicStreamDecoder):
    """For Messages callers of Anthropic models: every upstream event is forwarded as
    it came (thinking, signatures, citations and all), and also translated to chat
    chunks only so the gateway can meter it like any other stream."""

    def _wrap(self, name: str, data: str, chunks: list[dict[str, Any]]) -> list[StreamPiece]:
        frame = f"event: {name}\ndata: {data}\n\n".encode()
        if not chunks:
            return [StreamPiece({}, raw=frame)]
        first, *rest = chunks
        return [StreamPiece(first, raw=frame), *(StreamPiece(chunk, raw=b"") for chunk in rest)]

    def _failed_piece(self, name: str, data: str, error: dict[str, Any]) -> StreamPiece:
        # Forwarded as Anthropic's own error event, credentials scrubbed.
        frame = f"event: {name}\ndata: {data}\n\n".encode()
        return failed_piece(self.failure(error), frame)


class AnthropicAdapter(Adapter):
    kind = "anthropic"

    def _url(self, route: RouteInfo, path: str) -> str:
        base = route.provider.base_url
        # base_url is https://api.anthropic.com, or a proxy that already ends in /v1.
        prefix = base if base.endswith("/v1") else f"{base}/v1"
        return f"{prefix}/{path}"

    def _headers(self, key: UpstreamKey) -> dict[str, str]:
        return {
            "x-api-key": key.secret,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    def chat_request(
        self, body: dict[str, Any], *, route: RouteInfo, key: UpstreamKey, stream: bool
    ) -> UpstreamRequest:
        payload = chat_request_to_anthropic(
            {**body, "stream": stream},
            upstream_model=route.upstream_model,
            default_max_tokens=route.max_output_tokens or DEFAULT_MAX_TOKENS,
        )
        return UpstreamRequest(
            url=self._url(route, "messages"),
            headers=self._headers(key),
            content=orjson.dumps(payload),
        )

    def chat_response(self, data: dict[str, Any], *, model: str) -> dict[str, Any]:
        return anthropic_response_to_chat(data, model=model)

    def chat_stream(self, *, model: str) -> ChatStreamDecoder:
        return AnthropicStreamDecoder(model=model)

    def passthrough_request(
        self, path: str, *, route: RouteInfo, key: UpstreamKey, body: Any = None, **extra: Any
    ) -> UpstreamRequest:
        """Messages-dialect requests (token counting) forwarded as they are, with the
        model renamed to the route's upstream model."""
        if path not in NATIVE_PATHS:
            return super().passthrough_request(path, route=route, key=key, body=body, **extra)
        return UpstreamRequest(
            url=self._url(route, path),
            headers=self._headers(key),
            content=orjson.dumps({**(body or {}), "model": route.upstream_model}),
        )

    def native_dialects(self, provider: ProviderInfo) -> frozenset[str]:
        return MESSAGES

    def native_request(
        self,
        dialect: str,
        body: dict[str, Any],
        *,
        route: RouteInfo,
        key: UpstreamKey,
        headers: dict[str, str],
    ) -> UpstreamRequest:
        """A Messages request sent as the caller wrote it, with the route's model name
        and the caller's `anthropic-beta` features (prompt caching, thinking...)."""
        if dialect not in MESSAGES:
            return super().native_request(dialect, body, route=route, key=key, headers=headers)
        request = self.passthrough_request("messages", route=route, key=key, body=body)
        if headers.get("anthropic-beta"):
            request.headers["anthropic-beta"] = headers["anthropic-beta"]
        return request

    def native_stream(self, dialect: str, *, model: str) -> ChatStreamDecoder:
        if dialect not in MESSAGES:
            return super().native_stream(dialect, model=model)
        return AnthropicNativeStreamDecoder(model=model)

    def native_usage(self, dialect: str, data: dict[str, Any]) -> dict[str, Any] | None:
        usage = data.get("usage")
        return Usage.from_anthropic(usage).to_openai_chat() if isinstance(usage, dict) else None

    def classify(self, status: int, content: bytes) -> Verdict:
        """Anthropic answers a key whose account has no credit left with a 400
        invalid_request_error ("Your credit balance is too low..."): the key's fault."""
        if status == 400 and "credit balance" in str(self.error_body(content).get("message")):
            return Verdict.KEY_REFUSED
        return super().classify(status, content)

    def error_message(self, status: int, content: bytes) -> str:
        """Anthropic's errors: {"type": "error", "error": {"type", "message"}}."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return ""
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error.get("type") or "")
        return ""
