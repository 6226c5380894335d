"""/v1/responses: the OpenAI Responses API on every chat model.

Every request is translated to chat completions and run through gateway.chat (one
pipeline for every upstream kind), then written back as a Response object or its
event stream. The gateway keeps stored responses itself, as the chat messages of the
conversation so far, so `previous_response_id` works whatever the upstream; a stored
response belongs to the user whose key created it, and is invisible to anyone else.

A response is stored once its body exists and before its last bytes reach the client
(the final event of a stream, or the whole object): the client's first byte never
waits for the database, and a request that chains on it right away always finds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from gateway import chat, errors, pipeline, requests
from gateway.auth import authenticate
from gateway.dialects import ResponsesEmitter
from gateway.errors import OPENAI, GatewayError
from gateway.models import StoredResponse
from gateway.services import stored_response_create, stored_response_delete
from nexai.db import in_thread
from providers.translation import (
    TranslationError,
    responses_output_to_chat_messages,
    responses_request_to_chat,
)

log = logging.getLogger(__name__)

_STORED_STATUSES = ("completed", "incomplete")


def _not_found(response_id: str, *, param: str | None = None) -> GatewayError:
    what = "Previous response" if param else "Response"
    return GatewayError(
        404, "invalid_request_error", "previous_response_not_found" if param else "not_found",
        f"{what} with id '{response_id}' not found.", param=param,
    )  # fmt: skip


def _validate(body: dict[str, Any]) -> None:
    requests.sampling(body)
    requests.boolean(body, "store")
    requests.positive_int(body, "max_output_tokens")
    if body.get("background") is True:
        raise errors.invalid(
            "Background responses are not supported.", param="background", code="unsupported_value"
        )
    if body.get("conversation") is not None:
        raise errors.invalid(
            "Conversations are not supported; chain responses with previous_response_id.",
            param="conversation",
            code="unsupported_parameter",
        )
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise errors.invalid(
            "Invalid type for 'previous_response_id': expected a string.",
            param="previous_response_id",
            code="invalid_type",
        )
    if body.get("input") is None and previous is None:
        raise errors.invalid("Missing required parameter: 'input'.", param="input")


@in_thread
def _stored_messages(response_id: str, user_id: int) -> list[dict[str, Any]] | None:
    return (
        StoredResponse.objects.filter(response_id=response_id, user_id=user_id)
        .values_list("messages", flat=True)
        .first()
    )


@in_thread
def _stored_body(response_id: str, user_id: int) -> dict[str, Any] | None:
    return (
        StoredResponse.objects.filter(response_id=response_id, user_id=user_id)
        .values_list("body", flat=True)
        .first()
    )


async def _history(body: dict[str, Any], user_id: int) -> list[dict[str, Any]] | None:
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    messages = await _stored_messages(previous, user_id)
    if messages is None:
        raise _not_found(previous, param="previous_response_id")
    return messages


def _to_chat(body: dict[str, Any], history: list[dict[str, Any]] | None) -> dict[str, Any]:
    try:
        return responses_request_to_chat(body, history=history)
    except TranslationError as exc:
        raise errors.invalid(exc.message, param=exc.param) from None


class _Store:
    """Stores the final Response object in the background, once it exists."""

    def __init__(
        self, *, user_id: int, body: dict[str, Any], history: list[dict[str, Any]] | None
    ) -> None:
        self.user_id = user_id
        self.body = body
        self.history = history
        self.task: asyncio.Future[None] | None = None

    def start(self, response: dict[str, Any]) -> None:
        if response.get("status") not in _STORED_STATUSES:
            return
        try:
            messages = responses_output_to_chat_messages(
                response, request_body=self.body, history=self.history
            )
        except TranslationError:
            log.exception("response %s could not be kept as chat messages", response["id"])
            return
        create = in_thread(stored_response_create)
        self.task = asyncio.ensure_future(
            create(
                response_id=response["id"],
                user_id=self.user_id,
                model=response["model"],
                body=response,
                messages=messages,
            )
        )

    async def wait(self) -> None:
        if self.task is None:
            return
        task, self.task = self.task, None
        try:
            # Shielded: a client that goes away does not stop the write.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not store a response")

    async def before_final_event(self, content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream, holding back the bytes that carry response.completed until the
        response is stored (the emitter starts the store just before them)."""
        async for part in content:
            await self.wait()
            yield part


async def create(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        _validate(body)
        model = await pipeline.model_for(body.get("model"), key, types=("chat",))
        history = await _history(body, key.user_id)
        chat_body = _to_chat(body, history)
        ticket, input_estimate = await chat.admit(
            request_id=request_id,
            key=key,
            model=model,
            chat_body=chat_body,
            endpoint="responses",
            stream=body.get("stream") is True,
            started=started,
        )
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    store = (
        _Store(user_id=key.user_id, body=body, history=history)
        if body.get("store") is not False
        else None
    )
    emitter = ResponsesEmitter(
        response_id="resp_" + request_id.removeprefix("req_"),
        model=model.public_id,
        request_body=body,
        on_done=store.start if store is not None else None,
    )
    response = await chat.run(ticket, chat_body, emitter, input_estimate=input_estimate)
    if store is not None:
        if isinstance(response, StreamingHttpResponse):
            response.streaming_content = store.before_final_event(response.streaming_content)
        else:
            await store.wait()
    return response


async def retrieve(request: HttpRequest, response_id: str) -> HttpResponse:
    request_id = pipeline.new_request_id()
    try:
        key = await authenticate(request)
        stored = await _stored_body(response_id, key.user_id)
        if stored is None:
            raise _not_found(response_id)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    response = HttpResponse(orjson.dumps(stored), content_type="application/json")
    response["x-request-id"] = request_id
    return response


async def delete(request: HttpRequest, response_id: str) -> HttpResponse:
    request_id = pipeline.new_request_id()
    try:
        key = await authenticate(request)
        deleted = await in_thread(stored_response_delete)(
            response_id=response_id, user_id=key.user_id
        )
        if not deleted:
            raise _not_found(response_id)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    body = {"id": response_id, "object": "response", "deleted": True}
    response = HttpResponse(orjson.dumps(body), content_type="application/json")
    response["x-request-id"] = request_id
    return response
