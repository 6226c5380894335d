"""GET and DELETE /v1/responses/{id}: a customer's stored responses."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway.endpoints.responses import not_found
from gateway.errors import OPENAI
from gateway.relay import Endpoint, Reply
from gateway.stored_responses import stored_body, stored_delete


async def parse_retrieve(request: HttpRequest, key: KeySnapshot) -> Reply:
    response_id = request.resolver_match.kwargs["response_id"]
    stored = await stored_body(response_id, key.user_id)
    if stored is None:
        raise not_found(response_id)
    return Reply(stored)


async def parse_delete(request: HttpRequest, key: KeySnapshot) -> Reply:
    response_id = request.resolver_match.kwargs["response_id"]
    if not await stored_delete(response_id=response_id, user_id=key.user_id):
        raise not_found(response_id)
    return Reply({"id": response_id, "object": "response", "deleted": True})


retrieve = Endpoint("responses.retrieve", OPENAI, parse_retrieve)
delete = Endpoint("responses.delete", OPENAI, parse_delete)
