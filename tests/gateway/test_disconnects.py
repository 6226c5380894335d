"""A client that leaves at the worst moment: its request is still settled at once (a
499 record, nothing charged), not left holding credits until the stale sweep.

These drive the ASGI application in-process, so that the client can leave exactly
between two steps of the gateway; the upstream is the fake on real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async

from gateway import pipeline, spend
from gateway.models import UsageRecord
from nexai.asgi import application
from providers import http
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer
from tests.gateway.test_chat_completions import HELLO, settled

Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _leave_after(left: asyncio.Event, customer: Customer, send: Send) -> None:
    """POST a streamed chat completion; the client disconnects once `left` is set."""
    body = orjson.dumps({"model": "gpt-4o", "messages": HELLO, "stream": True})
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {customer.key.secret}".encode()),
        ],
    }  # fmt: skip
    requests = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await left.wait()
        return {"type": "http.disconnect"}

    try:
        await asyncio.wait_for(application(scope, receive, send), timeout=30)
    finally:
        await http.aclose()  # this test's event loop's upstream connections


async def _settled(customer: Customer) -> list[UsageRecord]:
    return await database_sync_to_async(settled)(customer)


def _held(customer: Customer) -> int:
    return spend.store().snapshot(user_id=customer.user.pk).get("res", 0)


@pytest.mark.django_db(transaction=True)
async def test_a_stream_whose_client_left_before_its_first_byte_is_settled_at_once(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    left = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            left.set()  # the client goes as the headers would go out...
            await asyncio.Event().wait()  # ...and the send never completes

    await _leave_after(left, customer, send)
    [record] = await _settled(customer)
    assert (record.status, record.error_code) == (499, "client_disconnected")
    # The upstream read the prompt: charged like any stream cut short, nothing held.
    assert record.client_disconnected and record.charge <= record.input_tokens * 10
    assert _held(customer) == 0


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_left_while_its_admission_was_answered_holds_nothing(
    customer: Customer, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = spend.store()
    admit = store.admit
    reserved, answered, left = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_answer(**kwargs: Any) -> Any:
        admission = await admit(**kwargs)  # the reservation is made...
        reserved.set()
        await answered.wait()  # ...and its answer is still on its way back
        return admission

    monkeypatch.setattr(store, "admit", slow_answer)

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(f"nothing is sent to a client that left: {message}")

    request = asyncio.ensure_future(_leave_after(left, customer, send))
    await reserved.wait()
    assert _held(customer) > 0
    left.set()
    await request
    answered.set()  # the answer arrives after the request was cancelled
    await pipeline.background_done()
    assert _held(customer) == 0
    [record] = await _settled(customer)
    assert (record.status, record.charge) == (499, 0)
    assert fake_openai.requests == []
