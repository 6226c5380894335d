"""Fake Google Gemini API (Generative Language API) upstream.

`POST /v1beta/models/{model}:generateContent` answers a GenerateContentResponse;
`:streamGenerateContent?alt=sse` streams one GenerateContentResponse per SSE event (no
`[DONE]`; events end in CRLF CRLF like Google's servers), and without `alt=sse` a JSON
array. Tool calls are `functionCall` parts (whole, never fragmented). The key comes in
the `x-goog-api-key` header or the `key` query parameter; a key it does not know is a
400 INVALID_ARGUMENT whose ErrorInfo reason is API_KEY_INVALID, as Google answers.

Like Gemini 3, it signs the first function call of each answer (`thoughtSignature`,
beside the call) and refuses a conversation whose model turn calls a function without
the signature it was given (or Google's documented placeholder for history made
elsewhere, `skip_thought_signature_validator`).
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

from .base import (
    _UNSET,
    CONTENT,
    TAIL,
    FakeServer,
    Frame,
    RecordedRequest,
    Reply,
    Response,
    Route,
    Stream,
    dumps,
    json_response,
    random_id,
    sse,
)
from .openai import _embedding_vector

DEFAULT_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]

_STATUSES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

SKIP_SIGNATURE = "skip_thought_signature_validator"

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}


def _bytes(signature: Any) -> bytes | None:
    """A signature's bytes: Google's JSON takes bytes in either base64 alphabet (the
    Python SDK writes the URL-safe one)."""
    if not isinstance(signature, str):
        return None
    padded = signature + "=" * (-len(signature) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return None


def gemini_error(status: int, message: str | None = None, details: list | None = None) -> dict:
    name, default_message = _STATUSES.get(status, ("UNKNOWN", f"Error {status}"))
    error: dict[str, Any] = {"code": status, "message": message or default_message, "status": name}
    if details:
        error["details"] = details
    return {"error": error}


class FakeGemini(FakeServer):
    """Gemini at `base_url` (paths start with `/v1beta/models/...`; `/v1/...` works too)."""

    name = "fake-gemini"
    default_key = "AIza-test-gemini"

    def __init__(self, *, expected_key: Any = _UNSET, models: list[str] | None = None) -> None:
        self.models = list(models or DEFAULT_MODELS)
        super().__init__(expected_key=expected_key)

    def reset(self) -> None:
        super().reset()
        self.embedding_dimensions = 16
        self.signatures: set[str] = set()  # every thoughtSignature handed out
        self.check_signatures = True

    def _sign(self) -> str:
        signature = base64.b64encode(os.urandom(48)).decode()
        with self._lock:
            self.signatures.add(signature)
        return signature

    def _unsigned_call(self, contents: list[Any]) -> str | None:
        """Google's 400 for a model turn whose first function call lacks its signature
        (or carries one Google never gave)."""
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or content.get("role") != "model":
                continue
            calls = [
                p for p in content.get("parts") or [] if isinstance(p, dict) and "functionCall" in p
            ]
            if not calls:
                continue
            signature = calls[0].get("thoughtSignature")
            if signature == SKIP_SIGNATURE or _bytes(signature) in map(_bytes, self.signatures):
                continue
            name = calls[0]["functionCall"].get("name")
            if signature is None:
                return (
                    f"Unable to submit request because function call `{name}` in the {i + 1}. "
                    "content block is missing a `thought_signature`. Learn more: "
                    "https://ai.google.dev/gemini-api/docs/thought-signatures"
                )
            return "Corrupted thought signature."
        return None

    def routes(self) -> list[Route]:
        prefix = r"/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+)"
        return [
            Route("POST", re.compile(prefix + ":generateContent"), self._generate),
            Route("POST", re.compile(prefix + ":streamGenerateContent"), self._generate),
            Route("POST", re.compile(prefix + ":countTokens"), self._count_tokens),
            Route("POST", re.compile(prefix + ":embedContent"), self._embed),
            Route("POST", re.compile(prefix + ":batchEmbedContents"), self._batch_embed),
            Route("GET", re.compile(r"/(v1beta|v1)/models"), self._list_models),
        ]

    def credential(self, req: RecordedRequest) -> str | None:
        return req.headers.get("x-goog-api-key") or req.query.get("key")

    def check_auth(self, req: RecordedRequest) -> Response | None:
        key = self.credential(req)
        if self.valid_keys is None or key in self.valid_keys:
            return None
        if key is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API."
            )
            return json_response(gemini_error(403, message), 403)
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
        return json_response(
            gemini_error(400, "API key not valid. Please pass a valid API key.", details), 400
        )

    def error_response(self, status: int, message: str | None = None) -> Response:
        return json_response(gemini_error(status, message), status)

    def usage_metadata(self, reply: Reply, *, final: bool = True) -> dict:
        """promptTokenCount includes cached tokens; thoughts are counted apart from candidates."""
        meta: dict[str, Any] = {
            "promptTokenCount": reply.prompt_tokens,
            "totalTokenCount": reply.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
        }
        if reply.cached_tokens:
            meta["cachedContentTokenCount"] = reply.cached_tokens
        if final:
            meta["candidatesTokenCount"] = reply.output_tokens - reply.reasoning_tokens
            meta["totalTokenCount"] = reply.total_tokens
            if reply.reasoning_tokens:
                meta["thoughtsTokenCount"] = reply.reasoning_tokens
        return meta

    def _generate(self, req: RecordedRequest, match: re.Match[str]) -> Response | Stream:
        body = req.json
        if not isinstance(body, dict):
            return self.error_response(400, "Invalid JSON payload received.")
        if not body.get("contents"):
            return self.error_response(
                400, "* GenerateContentRequest.contents: contents is not specified\n"
            )
        if self.check_signatures and (problem := self._unsigned_call(body["contents"])):
            return self.error_response(400, problem)
        model = match.group("model")
        reply = self.next_reply()
        response_id = random_id("", 22)
        finish = _FINISH.get(reply.stop, reply.stop)

        def payload(parts: list[dict], *, last: bool) -> dict:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if last:
                candidate["finishReason"] = finish
            result: dict[str, Any] = {"candidates": [candidate]}
            if self.include_usage:
                result["usageMetadata"] = self.usage_metadata(reply, final=last)
            result["modelVersion"] = model
            result["responseId"] = response_id
            return result

        calls: list[dict] = [
            {"functionCall": {"name": tc.name, "args": tc.args}} for tc in reply.calls
        ]
        if calls:
            calls[0]["thoughtSignature"] = self._sign()  # the first call of a step, as Gemini 3
        if req.path.endswith(":generateContent"):
            parts = ([{"text": reply.text}] if reply.text else []) + calls
            return json_response(payload(parts, last=True))

        pieces: list[dict] = [{"text": p} for p in reply.text_chunks()] + calls
        as_sse = req.query.get("alt") == "sse"

        def frames() -> Any:
            if not pieces:
                pieces.append({"text": ""})
            for i, part in enumerate(pieces):
                data = payload([part], last=i == len(pieces) - 1)
                if as_sse:
                    yield Frame(sse(data, crlf=True), CONTENT)
                else:
                    yield Frame(("[" if i == 0 else ",\r\n").encode() + dumps(data), CONTENT)
            if not as_sse:
                yield Frame(b"]", TAIL)

        def error_frame() -> bytes:
            error = gemini_error(503, self.stream_error_message)
            return sse(error, crlf=True) if as_sse else b",\r\n" + dumps(error) + b"]"

        content_type = "text/event-stream" if as_sse else "application/json; charset=UTF-8"
        return Stream(frames(), content_type=content_type, error_frame=error_frame)

    def _count_tokens(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        tokens = self.reply.prompt_tokens
        return json_response(
            {
                "totalTokens": tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
            }
        )

    def _vector(self, content: Any, dims: int) -> dict:
        parts = content.get("parts", []) if isinstance(content, dict) else []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
        return {"values": _embedding_vector(text, dims)}

    def _embed(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        if "content" not in body:
            return self.error_response(
                400, "* EmbedContentRequest.content: content is not specified\n"
            )
        dims = int(body.get("outputDimensionality") or self.embedding_dimensions)
        return json_response({"embedding": self._vector(body["content"], dims)})

    def _batch_embed(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        requests = body.get("requests") or []
        if not requests:
            return self.error_response(
                400, "* BatchEmbedContentsRequest.requests: requests is not specified\n"
            )
        embeddings = [
            self._vector(
                r.get("content"), int(r.get("outputDimensionality") or self.embedding_dimensions)
            )
            for r in requests
        ]
        return json_response({"embeddings": embeddings})

    def _list_models(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        models = [
            {
                "name": f"models/{m}",
                "version": "001",
                "displayName": m,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": (
                    ["embedContent"] if "embedding" in m else ["generateContent", "countTokens"]
                ),
            }
            for m in self.models
        ]
        return json_response({"models": models})


__all__ = ["FakeGemini", "gemini_error"]
