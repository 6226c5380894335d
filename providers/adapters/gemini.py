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
    stream_failure,
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

    def failure(self, error: dict[str, Any]) -> dict[str, str]:
        # Google's errors name their kind in `status` (RESOURCE_EXHAUSTED...).
        return stream_failure(error.get("status"), error.get("message"))


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

    def refuses_key(self, status: int, content: bytes) -> bool:
        # Google answers a bad or expired key with a 400 INVALID_ARGUMENT whose details
        # give the reason (API_KEY_INVALID...), not with a 401.
        return super().refuses_key(status, content) or (
            status == 400 and any(r.startswith("API_KEY_") for r in _reasons(content))
        )

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


def _reasons(content: bytes) -> list[str]:
    """The `reason` of each ErrorInfo in a Google error's details."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return []
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return []
    return [str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")]
