"""Responses API results kept per owner, for GET, DELETE and `previous_response_id`
(async reads for the endpoints, and the keeper that stores a result in the background
once it exists)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.db import in_thread
from gateway.models import StoredResponse
from gateway.services import stored_response_create, stored_response_delete
from providers.translation import TranslationError, responses_output_to_chat_messages

log = logging.getLogger(__name__)

_STORED_STATUSES = ("completed", "incomplete")


@in_thread
def stored_messages(response_id: str, user_id: int) -> list[dict[str, Any]] | None:
    return (
        StoredResponse.objects.filter(response_id=response_id, user_id=user_id)
        .values_list("messages", flat=True)
        .first()
    )


@in_thread
def stored_body(response_id: str, user_id: int) -> dict[str, Any] | None:
    return (
        StoredResponse.objects.filter(response_id=response_id, user_id=user_id)
        .values_list("body", flat=True)
        .first()
    )


stored_delete = in_thread(stored_response_delete)


class ResponseKeeper:
    """Stores the final Response object in the background, once it exists; `wait()`
    is awaited before the client gets the bytes that carry it."""

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
