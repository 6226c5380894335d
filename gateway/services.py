"""Writes of the gateway's own state (usage is written by gateway.writer)."""

from __future__ import annotations

from typing import Any

from gateway.models import StoredResponse


def stored_response_create(
    *,
    response_id: str,
    user_id: int,
    model: str,
    body: dict[str, Any],
    messages: list[dict[str, Any]] | None,
) -> StoredResponse:
    """Keep a Responses API result for GET and for `previous_response_id` (`messages`
    None: it can be continued only on the upstream that made it)."""
    return StoredResponse.objects.create(
        response_id=response_id, user_id=user_id, model=model, body=body, messages=messages
    )


def stored_response_delete(*, response_id: str, user_id: int) -> bool:
    """Delete one of the user's stored responses; False when they have none by that id."""
    deleted, _ = StoredResponse.objects.filter(response_id=response_id, user_id=user_id).delete()
    return deleted > 0
