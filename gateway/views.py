"""The /v1 endpoints. Thin: parse, admit, hand over to the shared chat path."""

from __future__ import annotations

import time

import orjson
from django.http import HttpRequest, HttpResponse

from accounts.keycache import KeySnapshot
from billing.models import Wallet
from gateway import chat, errors, pipeline, requests
from gateway.auth import authenticate
from gateway.dialects import ChatEmitter
from gateway.errors import OPENAI, GatewayError
from gateway.spend import store
from nexai.db import in_thread
from providers.catalogue import ModelInfo, aget_catalogue


def _json(data: object, request_id: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
    response["x-request-id"] = request_id
    return response


async def chat_completions(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        requests.chat_body(body)
        model = await pipeline.model_for(body["model"], key, types=("chat",))
        ticket, input_estimate = await chat.admit(
            request_id=request_id,
            key=key,
            model=model,
            chat_body=body,
            endpoint="chat.completions",
            stream=body.get("stream") is True,
            started=started,
        )
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return await chat.run(
        ticket, body, ChatEmitter(include_usage=include_usage), input_estimate=input_estimate
    )


def _model_entry(model: ModelInfo) -> dict[str, object]:
    return {
        "id": model.public_id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
    }


def _visible(key: KeySnapshot, model: ModelInfo) -> bool:
    return key.allows_model(model.public_id)


async def list_models(request: HttpRequest) -> HttpResponse:
    request_id = pipeline.new_request_id()
    try:
        key = await authenticate(request)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    models = (await aget_catalogue()).models.values()
    data = [_model_entry(m) for m in sorted(models, key=lambda m: m.public_id) if _visible(key, m)]
    return _json({"object": "list", "data": data}, request_id)


async def retrieve_model(request: HttpRequest, model_id: str) -> HttpResponse:
    request_id = pipeline.new_request_id()
    try:
        key = await authenticate(request)
        model = (await aget_catalogue()).get(model_id)
        if model is None or not _visible(key, model):
            raise errors.model_not_found(model_id)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    return _json(_model_entry(model), request_id)


@in_thread
def _wallet(user_id: int) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user_id=user_id)
    return wallet


async def balance(request: HttpRequest) -> HttpResponse:
    """The balance as the gateway sees it: the ledger's, less charges not yet written."""
    request_id = pipeline.new_request_id()
    try:
        key = await authenticate(request)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    wallet = await _wallet(key.user_id)
    pending = (await in_thread(store().snapshot)(user_id=key.user_id)).get("pend", 0)
    return _json(
        {
            "balance": wallet.balance - pending,
            "currency": "credits",
            "total_spent": wallet.total_spent + pending,
            "last_updated": wallet.updated_at.isoformat(),
        },
        request_id,
    )


async def not_found(request: HttpRequest, path: str) -> HttpResponse:
    err = errors.GatewayError(
        404, "invalid_request_error", "unknown_url",
        f"Unknown request URL: {request.method} {request.path}.",
    )  # fmt: skip
    return err.response(OPENAI, pipeline.new_request_id())
