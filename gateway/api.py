"""The /v1 API on django-ninja, mounted at /v1 and /api/v1 (DESIGN.md).

Handlers read their bodies themselves rather than through ninja's pydantic schemas:
bodies are forwarded to upstreams with every field the client sent (new upstream
parameters keep working), and the checks nexai does make produce OpenAI's and
Anthropic's own 400 shapes. The schemas below document the requests at /v1/docs.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.views.decorators.http import require_GET, require_POST
from ninja import NinjaAPI, Schema

from gateway.endpoints import (
    catalog,
    chat,
    compact,
    count_tokens,
    embeddings,
    gemini,
    images,
    messages,
    responses,
    speech,
    stored_responses,
    transcriptions,
)
from gateway.relay import relay, view


class ChatCompletionRequest(Schema):
    model: str
    messages: list[dict[str, Any]]
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None


class ResponsesRequest(Schema):
    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    max_output_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    stream: bool | None = None
    store: bool | None = None


class MessagesRequest(Schema):
    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    stream: bool | None = None


class EmbeddingsRequest(Schema):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str | None = None


class ImagesRequest(Schema):
    model: str
    prompt: str
    n: int | None = None
    size: str | None = None
    response_format: str | None = None


class SpeechRequest(Schema):
    model: str
    input: str
    voice: str
    response_format: str | None = None


def _body(schema: type[Schema]) -> dict[str, Any]:
    return {
        "requestBody": {
            "content": {"application/json": {"schema": schema.model_json_schema()}},
            "required": True,
        },
        "security": [{"bearer": []}],
    }


async def _model(request: HttpRequest, model_id: str) -> HttpResponse:
    return await relay(request, catalog.model)


async def _retrieve_response(request: HttpRequest, response_id: str) -> HttpResponse:
    return await relay(request, stored_responses.retrieve)


async def _delete_response(request: HttpRequest, response_id: str) -> HttpResponse:
    return await relay(request, stored_responses.delete)


def build_api(namespace: str) -> NinjaAPI:
    api = NinjaAPI(
        title="nexai API",
        version="1",
        description="OpenAI- and Anthropic-compatible LLM gateway. Authenticate with "
        "'Authorization: Bearer sk-nx-...' (or x-api-key).",
        urls_namespace=namespace,
        docs_url="/docs",
    )
    posts = (
        ("/chat/completions", chat.completions, ChatCompletionRequest, "chat"),
        ("/responses", responses.create, ResponsesRequest, "responses"),
        ("/responses/compact", compact.create, None, "responses"),
        ("/messages", messages.create, MessagesRequest, "messages"),
        ("/messages/count_tokens", count_tokens.create, None, "messages"),
        ("/embeddings", embeddings.create, EmbeddingsRequest, "embeddings"),
        ("/images/generations", images.generations, ImagesRequest, "images"),
        ("/audio/speech", speech.create, SpeechRequest, "audio"),
        ("/audio/transcriptions", transcriptions.create, None, "audio"),
        ("/audio/translations", transcriptions.translations, None, "audio"),
    )
    for path, endpoint, schema, tag in posts:
        extra = _body(schema) if schema else None
        api.post(path, openapi_extra=extra, tags=[tag])(view(endpoint))
    api.get("/models", tags=["models"])(view(catalog.models))
    api.get("/models/{path:model_id}", tags=["models"])(_model)
    api.get("/balance", tags=["billing"])(view(catalog.balance))
    # Codex CLI asks for a Responses WebSocket first; 426 sends it to HTTP at once.
    api.get("/responses", tags=["responses"], include_in_schema=False)(view(catalog.upgrade))
    api.get("/responses/{response_id}", tags=["responses"])(_retrieve_response)
    api.delete("/responses/{response_id}", tags=["responses"])(_delete_response)
    return api


v1 = build_api("v1")
api_v1 = build_api("api-v1")


# The Gemini API: /v1beta (Google's default api version) and the same model methods
# under /v1, ahead of the OpenAI routes (a model's id may hold slashes:
# /v1beta/models/vendor/name:generateContent).
_GEMINI_MODEL = r"models/(?P<model>[^:]+?)"
_GEMINI_ROOT = r"^(?:api/)?v1(?:beta)?/"
gemini_patterns: list[URLPattern] = [
    re_path(
        _GEMINI_ROOT + _GEMINI_MODEL + r":generateContent$", require_POST(view(gemini.generate))
    ),
    re_path(
        _GEMINI_ROOT + _GEMINI_MODEL + r":streamGenerateContent$", require_POST(view(gemini.stream))
    ),
    re_path(
        _GEMINI_ROOT + _GEMINI_MODEL + r":countTokens$", require_POST(view(gemini.count_tokens))
    ),
    re_path(r"^(?:api/)?v1beta/models/?$", require_GET(view(gemini.models))),
    re_path(r"^(?:api/)?v1beta/" + _GEMINI_MODEL + r"/?$", require_GET(view(gemini.model))),
]
