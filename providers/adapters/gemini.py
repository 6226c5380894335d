"""Google's Gemini API (`kind: gemini`): chat completions translated to
generateContent and back (providers.translation.gemini)."""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.base import (
    Adapter,
    ChatStreamDecoder,
    TranslatingStreamDecoder,
    UpstreamRequest,
)
from providers.catalogue import RouteInfo, UpstreamKey
from providers.translation import GeminiStreamToChat, gemini_response_to_chat
from providers.translation.gemini import chat_request_to_gemini

API_VERSION = "v1beta"


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
        return {**super().failure(error), "type": str(error.get("status") or "api_error")}


class GeminiAdapter(Adapter):
    kind = "gemini"

    def _url(self, route: RouteInfo, method: str) -> str:
        base = route.provider.base_url
        # base_url is https://generativelanguage.googleapis.com, or already ends in a version.
        prefix = base if base.endswith(("/v1beta", "/v1")) else f"{base}/{API_VERSION}"
        return f"{prefix}/models/{route.upstream_model}:{method}"

    def chat_request(
        self, body: dict[str, Any], *, route: RouteInfo, key: UpstreamKey, stream: bool
    ) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest(
            url=self._url(route, method),
            headers={"x-goog-api-key": key.secret, "content-type": "application/json"},
            content=orjson.dumps(chat_request_to_gemini(body)),
        )

    def chat_response(self, data: dict[str, Any], *, model: str) -> dict[str, Any]:
        return gemini_response_to_chat(data, model=model)

    def chat_stream(self, *, model: str) -> ChatStreamDecoder:
        return GeminiStreamDecoder(model=model)

    def error_message(self, status: int, content: bytes) -> str:
        """Google's errors: {"error": {"code", "message", "status", "details"}}, sometimes
        wrapped in a one-element list."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return ""
        if isinstance(data, list) and data:
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error.get("status") or "")
        return ""
