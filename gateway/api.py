"""The /v1 API on django-ninja, mounted at /v1 and /api/v1 (DESIGN.md).

Handlers read their bodies themselves rather than through ninja's pydantic schemas:
bodies are forwarded to upstreams with every field the client sent (new upstream
parameters keep working), and the checks nexai does make produce OpenAI's and
Anthropic's own 400 shapes. The schemas below document the requests at /v1/docs.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI, Schema

from gateway import messages, modalities, responses, views


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


def build_api(namespace: str) -> NinjaAPI:
    api = NinjaAPI(
        title="nexai API",
        version="1",
        description="OpenAI- and Anthropic-compatible LLM gateway. Authenticate with "
        "'Authorization: Bearer sk-nx-...' (or x-api-key).",
        urls_namespace=namespace,
        docs_url="/docs",
    )
    api.post("/chat/completions", openapi_extra=_body(ChatCompletionRequest), tags=["chat"])(
        views.chat_completions
    )
    api.get("/models", tags=["models"])(views.list_models)
    api.get("/models/{path:model_id}", tags=["models"])(views.retrieve_model)
    api.get("/balance", tags=["billing"])(views.balance)
    api.post("/responses", openapi_extra=_body(ResponsesRequest), tags=["responses"])(
        responses.create
    )
    api.get("/responses/{response_id}", tags=["responses"])(responses.retrieve)
    api.delete("/responses/{response_id}", tags=["responses"])(responses.delete)
    api.post("/messages", openapi_extra=_body(MessagesRequest), tags=["messages"])(messages.create)
    api.post("/messages/count_tokens", tags=["messages"])(messages.count_tokens)
    api.post("/embeddings", openapi_extra=_body(EmbeddingsRequest), tags=["embeddings"])(
        modalities.embeddings
    )
    api.post("/images/generations", openapi_extra=_body(ImagesRequest), tags=["images"])(
        modalities.images_generations
    )
    api.post("/audio/speech", openapi_extra=_body(SpeechRequest), tags=["audio"])(modalities.speech)
    api.post("/audio/transcriptions", tags=["audio"])(modalities.transcriptions)
    return api


v1 = build_api("v1")
api_v1 = build_api("api-v1")
