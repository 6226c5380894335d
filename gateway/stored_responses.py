"""Responses API results kept per owner, for GET, DELETE and `previous_response_id`
(async reads for the endpoints, and the keeper that stores a result in the background
once it exists).

Every response the gateway relays is kept here under its owner, translated or
forwarded to an upstream that speaks the Responses API: that record is what lets a
`previous_response_id` through. An upstream resolves ids under the operator's key,
shared by every customer, so an id the gateway has not kept for the caller is never
forwarded (issue 21, finding 5)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from core.db import in_thread
from gateway.models import StoredResponse
from gateway.services import stored_response_create, stored_response_delete
from providers.translation import TranslationError, responses_output_to_chat_messages

log = logging.getLogger(__name__)

_STORED_STATUSES = ("completed", "incomplete")


@dataclass(frozen=True, slots=True)
class Previous:
    """One of the caller's responses, named by a new request."""

    # The conversation up to it as chat messages; None when chat cannot express it
    # (a forwarded response): only the upstream that made it can continue it.
    messages: list[dict[str, Any]] | None


@in_thread
def previous_response(response_id: str, user_id: int) -> Previous | None:
    """The caller's response `response_id`, or None when they have none by that id
    (someone else's, deleted, never made here): one read, as before any chaining."""
    row = (
        StoredResponse.objects.filter(response_id=response_id, user_id=user_id)
        .values_list("messages")
        .first()
    )
    return None if row is None else Previous(row[0])


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
        self, *, user_id: int, body: dict[str, Any], previous: Previous | None = None
    ) -> None:
        self.user_id = user_id
        self.body = body
        self.previous = previous
        self.task: asyncio.Future[None] | None = None

    def start(self, response: dict[str, Any]) -> None:
        if response.get("status") not in _STORED_STATUSES:
            return
        messages: list[dict[str, Any]] | None = None
        # A forwarded response chat cannot express (or one that continues such a
        # response) is kept all the same, as its owner's, to be continued where it
        # was made.
        if self.previous is None or self.previous.messages is not None:
            history = self.previous.messages if self.previous else None
            try:
                messages = responses_output_to_chat_messages(
                    response, request_body=self.body, history=history
                )
            except TranslationError:
                messages = None
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
