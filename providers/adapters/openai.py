"""OpenAI and every OpenAI-compatible upstream (DeepSeek, xAI, OpenRouter, Qwen...),
and Azure OpenAI, which differs only in its URLs and auth header."""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.adapters.base import (
    Adapter,
    ChatStreamDecoder,
    StreamPiece,
    UpstreamRequest,
    Verdict,
    failed_piece,
    stream_failure,
)
from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey
from providers.redaction import scrub_event, scrub_json
from providers.translation.usage import Usage

_DONE = b"[DONE]"
RESPONSES = frozenset({"responses"})


class OpenAIStreamDecoder(ChatStreamDecoder):
    """Splits the upstream's SSE into events, keeping each event's bytes to forward."""

    def __init__(self, *, model: str) -> None:
        super().__init__(model=model)
        self._buffer = b""

    def feed(self, data: bytes) -> list[StreamPiece]:
        buffer = self._buffer + data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        pieces: list[StreamPiece] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) != -1:
            piece = self._event(buffer[start : end + 2])
            if piece is not None:
                pieces.append(piece)
            start = end + 2
        self._buffer = buffer[start:]
        return pieces

    def finish(self) -> list[StreamPiece]:
        rest, self._buffer = self._buffer.strip(), b""
        piece = self._event(rest + b"\n\n") if rest else None
        return [piece] if piece else []

    def _event(self, raw: bytes) -> StreamPiece | None:
        payload = b""
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                payload += line[5:].strip()
        if not payload:
            return None  # a comment or keep-alive
        if payload == _DONE:
            self.done = True
            return None
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(chunk, dict):
            return None
        error = chunk.get("error")
        if not error:
            return StreamPiece(chunk=chunk, raw=raw)
        if not chunk.get("choices"):
            # An error sent inside the 200 stream, after output started.
            said = error if isinstance(error, dict) else {"message": error}
            return failed_piece(stream_failure(said.get("type"), said.get("message")), raw)
        # A chunk that ends its choice with an error (OpenRouter's finish_reason
        # "error"): still a chunk, but its error is the upstream's words.
        return StreamPiece(chunk={**chunk, "error": scrub_json(error)}, raw=scrub_event(raw))


class ResponsesNativeStreamDecoder(OpenAIStreamDecoder):
    """A Responses API event stream forwarded as it came, event by event, read only
    to meter it: text and argument deltas for an estimate, the final usage, and the
    final Response object (kept so the gateway can store it)."""

    def _event(self, raw: bytes) -> StreamPiece | None:
        payload = b"".join(
            line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")
        )
        try:
            event = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return None
        kind = event["type"]
        if kind in ("error", "response.failed"):
            error = event if kind == "error" else (event.get("response") or {}).get("error")
            error = error if isinstance(error, dict) else {}
            failure = stream_failure(error.get("type") or error.get("code"), error.get("message"))
            return failed_piece(failure, raw)
        return StreamPiece(chunk=self._chunk(kind, event), raw=raw)

    def _chunk(self, kind: str, event: dict[str, Any]) -> dict[str, Any]:
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            delta = event.get("delta")
            return {"choices": [{"delta": {"content": delta if isinstance(delta, str) else ""}}]}
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            if isinstance(response, dict):
                self.final = response
                self.done = True
                if isinstance(response.get("usage"), dict):
                    return {"usage": Usage.from_responses(response["usage"]).to_openai_chat()}
        return {}


def _with_usage_requested(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    if not stream:
        return body
    options = dict(body.get("stream_options") or {})
    if options.get("include_usage") is True:
        return body
    # Ask for usage whatever the client asked: metering needs it. The gateway strips
    # the extra chunk for clients that did not ask.
    options["include_usage"] = True
    return {**body, "stream_options": options}


# OpenAI's reasoning models refuse `max_tokens` ("use max_completion_tokens"), which
# every request translated from Messages or Responses carries. Matched on the upstream
# model name, as the catalogue knows no more about a model's family.
_REASONING = re.compile(r"^(?:openai/)?(?:o\d|gpt-5)(?:[-.]|$)")


def _token_limit_for(upstream_model: str, body: dict[str, Any]) -> dict[str, Any]:
    if "max_tokens" not in body or not _REASONING.match(upstream_model):
        return body
    renamed = {k: v for k, v in body.items() if k != "max_tokens"}
    renamed.setdefault("max_completion_tokens", body["max_tokens"])
    return renamed


class OpenAIAdapter(Adapter):
    kind = "openai"

    def _url(self, route: RouteInfo, path: str) -> str:
        return f"{route.provider.base_url}/{path.lstrip('/')}"

    def _headers(self, key: UpstreamKey) -> dict[str, str]:
        return {"authorization": f"Bearer {key.secret}"}

    def chat_request(
        self, body: dict[str, Any], *, route: RouteInfo, key: UpstreamKey, stream: bool
    ) -> UpstreamRequest:
        payload = _token_limit_for(route.upstream_model, {**body, "model": route.upstream_model})
        payload = _with_usage_requested(payload, stream)
        return UpstreamRequest(
            url=self._url(route, "chat/completions"),
            headers={**self._headers(key), "content-type": "application/json"},
            content=orjson.dumps(payload),
        )

    def chat_response(self, data: dict[str, Any], *, model: str) -> dict[str, Any]:
        return data

    def chat_stream(self, *, model: str) -> ChatStreamDecoder:
        return OpenAIStreamDecoder(model=model)

    def native_dialects(self, provider: ProviderInfo) -> frozenset[str]:
        # Only some OpenAI-compatible upstreams speak the Responses API: the providers
        # file says which (`responses_api: true`).
        return RESPONSES if provider.settings.get("responses_api") else frozenset()

    def native_request(
        self,
        dialect: str,
        body: dict[str, Any],
        *,
        route: RouteInfo,
        key: UpstreamKey,
        headers: dict[str, str],
    ) -> UpstreamRequest:
        # "responses", or one of its sub-paths ("responses/compact").
        if dialect.split("/")[0] not in RESPONSES:
            return super().native_request(dialect, body, route=route, key=key, headers=headers)
        return self.passthrough_request(dialect, route=route, key=key, body=body)

    def native_stream(self, dialect: str, *, model: str) -> ChatStreamDecoder:
        if dialect not in RESPONSES:
            return super().native_stream(dialect, model=model)
        return ResponsesNativeStreamDecoder(model=model)

    def native_usage(self, dialect: str, data: dict[str, Any]) -> dict[str, Any] | None:
        usage = data.get("usage")
        return Usage.from_responses(usage).to_openai_chat() if isinstance(usage, dict) else None

    def classify(self, status: int, content: bytes) -> Verdict:
        """OpenAI's 429 `insufficient_quota` is the key's account out of credit, not a
        rate limit that passes in seconds."""
        if status == 429 and self.error_body(content).get("code") == "insufficient_quota":
            return Verdict.KEY_REFUSED
        return super().classify(status, content)

    def passthrough_request(
        self, path: str, *, route: RouteInfo, key: UpstreamKey, body: Any = None, **extra: Any
    ) -> UpstreamRequest:
        """Endpoints forwarded as they are (embeddings, images, audio, responses), with
        the model renamed to the route's upstream model."""
        request = UpstreamRequest(url=self._url(route, path), headers=self._headers(key))
        if extra.get("files") is not None:
            request.files = extra["files"]
            request.data = {**(extra.get("data") or {}), "model": route.upstream_model}
        elif body is not None:
            request.headers["content-type"] = "application/json"
            request.content = orjson.dumps({**body, "model": route.upstream_model})
        return request


class AzureAdapter(OpenAIAdapter):
    """Azure OpenAI: the upstream model is the deployment name, in the URL."""

    kind = "azure"

    def _url(self, route: RouteInfo, path: str) -> str:
        version = route.provider.settings.get("api_version", "2024-10-21")
        if path.startswith("responses"):
            # The Responses API is not per deployment: the model field names it.
            return f"{route.provider.base_url}/openai/{path}?api-version={version}"
        deployment = route.upstream_model
        return (
            f"{route.provider.base_url}/openai/deployments/{deployment}/{path.lstrip('/')}"
            f"?api-version={version}"
        )

    def _headers(self, key: UpstreamKey) -> dict[str, str]:
        return {"api-key": key.secret}
