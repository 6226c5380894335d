"""Non-streaming endpoints forwarded to the upstream as they are (embeddings, images,
speech, transcription, token counting): call with fallback, read the whole answer,
price it, settle, answer with the upstream's bytes.

Admission happens before (pipeline.admit, in the endpoint) and settlement here
(pipeline.settle), exactly once, as for chat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.http import HttpResponse

from gateway import errors, pipeline, upstream
from gateway.errors import OPENAI, GatewayError
from gateway.pipeline import Ticket


@dataclass
class Metered:
    """What an upstream answer costs, and what its usage record says."""

    charge: int  # credits
    values: dict[str, Any] = field(default_factory=dict)  # input_tokens, units, estimated...
    content: bytes | None = None  # replaces the upstream's body when set


# (the upstream's body, its content type) -> Metered. Raises ValueError (or KeyError,
# TypeError) when the answer cannot be read: the call then fails as a 502.
Meter = Callable[[bytes, str], Metered]


async def run(
    ticket: Ticket, build: upstream.Build, meter: Meter, *, dialect: str = OPENAI
) -> HttpResponse:
    """Call the upstream (with fallback) and answer with what it said. The ticket is
    always settled: with the metered charge, or with nothing on failure."""
    try:
        attempt = await upstream.open_call(ticket.model, build)
    except GatewayError as err:
        await pipeline.settle(ticket, status=err.status, error_code=err.code)
        return err.response(dialect, ticket.request_id)
    except Exception:
        await pipeline.settle(ticket, status=500, error_code="internal_error")
        raise
    content_type = attempt.response.headers.get("content-type", "application/json")
    err: GatewayError | None = None
    try:
        async with asyncio.timeout(attempt.remaining()):
            raw = await attempt.response.aread()
        metered = meter(raw, content_type)
    except TimeoutError:
        err = errors.upstream_timeout()
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        err = errors.upstream_failed("The upstream's answer could not be read.")
    finally:
        await attempt.response.aclose()
    if err is not None:
        await pipeline.settle(
            ticket, status=err.status, error_code=err.code, **attempt.route_values()
        )
        return err.response(dialect, ticket.request_id)
    ticket.first_byte = time.monotonic()
    await pipeline.settle(ticket, charge=metered.charge, **metered.values, **attempt.route_values())
    body = raw if metered.content is None else metered.content
    if metered.content is not None:
        content_type = "application/json"
    return ticket.headers(HttpResponse(body, content_type=content_type))
