"""The /v1 API on django-ninja, mounted at /v1 and /api/v1 (DESIGN.md).

Handlers read their bodies themselves rather than through ninja's pydantic schemas:
bodies are forwarded to upstreams with every field the client sent (new upstream
parameters keep working), and the checks nexai does make produce OpenAI's and
Anthropic's own 400 shapes. The schemas below document the requests at /v1/docs.
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI, Schema

from gateway import views


class ChatCompletionRequest(Schema):
    model: str
    messages: list[dict[str, Any]]
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None


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
    return api


v1 = build_api("v1")
api_v1 = build_api("api-v1")
