"""Fake Anthropic Messages API upstream.

`POST /v1/messages` answers a Message, or with `stream: true` the real event sequence:
message_start, then per content block content_block_start (ping after the first),
content_block_delta (text_delta / input_json_delta) and content_block_stop, then
message_delta (stop_reason and cumulative usage) and message_stop. Every event carries
its `event:` line, which the official SDK requires. Errors use
`{"type": "error", "error": {"type", "message"}, "request_id"}`.
"""

from __future__ import annotations

import re
from typing import Any

from .base import (
    _UNSET,
    CONTENT,
    HEAD,
    TAIL,
    FakeServer,
    Frame,
    RecordedRequest,
    Reply,
    Response,
    Route,
    Stream,
    json_response,
    random_id,
    sse,
)

DEFAULT_MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]

_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def anthropic_error(status: int, message: str | None = None, error_type: str | None = None) -> dict:
    default_type, default_message = _ERRORS.get(status, ("api_error", f"Error {status}"))
    return {
        "type": "error",
        "error": {"type": error_type or default_type, "message": message or default_message},
        "request_id": random_id("req_011C", 20),
    }


class FakeAnthropic(FakeServer):
    """Anthropic at `base_url` (the SDK appends `/v1/messages`)."""

    name = "fake-anthropic"
    default_key = "sk-ant-test"

    def __init__(self, *, expected_key: Any = _UNSET, models: list[str] | None = None) -> None:
        self.models = list(models or DEFAULT_MODELS)
        super().__init__(expected_key=expected_key)

    def routes(self) -> list[Route]:
        return [
            Route("POST", re.compile("/v1/messages"), self._messages),
            Route("POST", re.compile("/v1/messages/count_tokens"), self._count_tokens),
            Route("GET", re.compile("/v1/models"), self._list_models),
            Route("GET", re.compile("/v1/models/(?P<mid>[^/]+)"), self._get_model),
        ]

    def credential(self, req: RecordedRequest) -> str | None:
        # Older SDKs send x-api-key; anthropic>=2 sends the API key as a Bearer token.
        return req.headers.get("x-api-key") or super().credential(req)

    def check_auth(self, req: RecordedRequest) -> Response | None:
        key = self.credential(req)
        if self.valid_keys is not None and key not in self.valid_keys:
            message = "x-api-key header is required" if key is None else "invalid x-api-key"
            return self.error_response(401, message)
        if "anthropic-version" not in req.headers:
            return self.error_response(400, "anthropic-version: header is required")
        return None

    def error_response(self, status: int, message: str | None = None) -> Response:
        return json_response(anthropic_error(status, message), status)

    def not_found(self, req: RecordedRequest) -> Response:
        return self.error_response(404, f"Not found: {req.method} {req.path}")

    def response_headers(self) -> dict[str, str]:
        return {"request-id": random_id("req_011C", 20), "anthropic-organization-id": "fake-org"}

    def usage(self, reply: Reply, *, output_tokens: int | None = None) -> dict:
        """Anthropic's input_tokens exclude cache reads and cache writes."""
        fresh = reply.prompt_tokens - reply.cached_tokens - reply.cache_write_tokens
        return {
            "input_tokens": max(0, fresh),
            "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": reply.cache_write_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": reply.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }

    def _validate(self, body: Any) -> Response | None:
        if not isinstance(body, dict):
            return self.error_response(400, "There was an error parsing the body of your request.")
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                return self.error_response(400, f"{name}: Field required")
        if not body["messages"]:
            return self.error_response(400, "messages: at least one message is required")
        return None

    def _messages(self, req: RecordedRequest, match: re.Match[str]) -> Response | Stream:
        body = req.json
        invalid = self._validate(body)
        if invalid is not None:
            return invalid
        reply = self.next_reply()
        model = body["model"]
        msg_id = random_id("msg_01", 22)
        tool_ids = [tc.id or random_id("toolu_01", 22) for tc in reply.calls]
        stop_reason = _STOP_REASONS.get(reply.stop, reply.stop)
        if body.get("stream"):
            return self._stream(model, msg_id, tool_ids, stop_reason, reply)
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [
            {"type": "tool_use", "id": tid, "name": tc.name, "input": tc.args}
            for tid, tc in zip(tool_ids, reply.calls, strict=True)
        ]
        message: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if self.include_usage:
            message["usage"] = self.usage(reply)
        return json_response(message)

    def _stream(
        self, model: str, msg_id: str, tool_ids: list[str], stop_reason: str, reply: Reply
    ) -> Stream:
        def event(kind: str, payload: dict, frame_kind: str) -> Frame:
            return Frame(sse({"type": kind, **payload}, kind), frame_kind)

        def frames() -> Any:
            start: dict[str, Any] = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
            }
            if self.include_usage:
                start["usage"] = self.usage(reply, output_tokens=1)
            yield event("message_start", {"message": start}, HEAD)
            index = 0
            if reply.thinking:
                block = {"type": "thinking", "thinking": "", "signature": ""}
                yield event("content_block_start", {"index": index, "content_block": block}, HEAD)
                delta = {"type": "thinking_delta", "thinking": reply.thinking}
                yield event("content_block_delta", {"index": index, "delta": delta}, HEAD)
                delta = {"type": "signature_delta", "signature": "EqQBCgIYAhIM" + "a" * 40}
                yield event("content_block_delta", {"index": index, "delta": delta}, HEAD)
                yield event("content_block_stop", {"index": index}, HEAD)
                index += 1
            if reply.text:
                block = {"type": "text", "text": ""}
                yield event("content_block_start", {"index": index, "content_block": block}, HEAD)
                yield event("ping", {}, HEAD)
                for piece in reply.text_chunks():
                    delta = {"type": "text_delta", "text": piece}
                    yield event("content_block_delta", {"index": index, "delta": delta}, CONTENT)
                yield event("content_block_stop", {"index": index}, TAIL)
                index += 1
            for tid, tc in zip(tool_ids, reply.calls, strict=True):
                block = {"type": "tool_use", "id": tid, "name": tc.name, "input": {}}
                yield event("content_block_start", {"index": index, "content_block": block}, HEAD)
                if index == 0:
                    yield event("ping", {}, HEAD)
                for fragment in tc.fragments():
                    delta = {"type": "input_json_delta", "partial_json": fragment}
                    yield event("content_block_delta", {"index": index, "delta": delta}, CONTENT)
                yield event("content_block_stop", {"index": index}, TAIL)
                index += 1
            delta: dict[str, Any] = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
            if self.include_usage:
                usage = self.usage(reply)
                del usage["cache_creation"], usage["service_tier"]
                delta["usage"] = usage
            yield event("message_delta", delta, TAIL)
            yield event("message_stop", {}, TAIL)

        def error_frame() -> bytes:
            return sse(anthropic_error(529, self.stream_error_message), "error")

        return Stream(frames(), error_frame=error_frame)

    def _count_tokens(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        body = req.json
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            missing = "model" if not isinstance(body, dict) or "model" not in body else "messages"
            return self.error_response(400, f"{missing}: Field required")
        return json_response({"input_tokens": self.reply.prompt_tokens})

    def _model_entry(self, model_id: str) -> dict:
        return {
            "type": "model",
            "id": model_id,
            "display_name": model_id.replace("-", " ").title(),
            "created_at": "2025-09-29T00:00:00Z",
        }

    def _list_models(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        data = [self._model_entry(m) for m in self.models]
        return json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": self.models[0],
                "last_id": self.models[-1],
            }
        )

    def _get_model(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        model_id = match.group("mid")
        if model_id not in self.models:
            return self.error_response(404, f"model: {model_id}")
        return json_response(self._model_entry(model_id))


__all__ = ["FakeAnthropic", "anthropic_error"]
