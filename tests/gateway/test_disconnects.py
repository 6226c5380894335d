"""A client that leaves at the worst moment: its request is settled (a 499 record), not
left holding credits until the stale sweep, and every upstream call it caused is paid
for (docs/pricing.md, "A client that leaves early"): a whole answer is read to its end
and charged its usage, a stream is charged its input and what was generated.

These drive the ASGI application in-process, so that the client can leave exactly
between two steps of the gateway; the upstream is the fake on real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async

from billing.pricing import token_charge
from gateway import pipeline, spend
from gateway.models import UsageRecord
from nexai.asgi import application
from providers import http
from providers.catalogue import get_catalogue
from providers.models import ProviderKey
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer
from tests.gateway.test_chat_completions import HELLO, settled

Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _leave_after(
    left: asyncio.Event,
    customer: Customer,
    send: Send,
    *,
    stream: bool = True,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    close: bool = True,
) -> None:
    """POST a chat completion (streamed unless `stream` is False); the client
    disconnects once `left` is set. `close`: this test's event loop's upstream
    connections are closed after it (not while an answer is still read for it)."""
    body = orjson.dumps({"model": "gpt-4o", "messages": HELLO, "stream": stream})
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {customer.key.secret}".encode()), *headers,
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
        if close:
            await http.aclose()


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


async def _nothing_sent(message: dict[str, Any]) -> None:
    raise AssertionError(f"nothing is sent to a client that left: {message}")


async def _leave_while_upstream_hangs(
    customer: Customer, fake: FakeOpenAI, *, stream: bool, headers: tuple = ()
) -> None:
    """The client sends its request, the upstream receives it and takes its time, and
    the client goes away before any answer."""
    left = asyncio.Event()
    fake.hang_next()
    request = asyncio.ensure_future(
        _leave_after(left, customer, _nothing_sent, stream=stream, headers=headers, close=False)
    )
    await asyncio.to_thread(fake.wait_hanging)
    left.set()
    await request


@pytest.mark.django_db(transaction=True)
async def test_a_whole_answer_whose_client_left_is_read_and_charged_its_usage(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    """The upstream finishes (and bills) a non-streamed answer whatever the client does:
    the gateway reads it to its end and charges exactly its usage."""
    fake_openai.set_reply(text="a long answer", prompt_tokens=1_000, completion_tokens=50)
    await _leave_while_upstream_hangs(customer, fake_openai, stream=False)
    fake_openai.release()
    await pipeline.background_done()
    await http.aclose()
    [record] = await _settled(customer)
    assert (record.status, record.error_code) == (499, "client_disconnected")
    assert record.client_disconnected and not record.estimated
    assert (record.input_tokens, record.output_tokens) == (1_000, 50)
    prices = await asyncio.to_thread(lambda: get_catalogue().get("gpt-4o").prices)
    assert record.charge == token_charge(prices, input_tokens=1_000, output_tokens=50) > 0
    assert _held(customer) == 0


@pytest.mark.django_db(transaction=True)
async def test_a_stream_whose_client_left_before_the_upstream_answered_is_charged_its_input(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    """A slow model's stream: the client gives up before the first byte. The upstream
    has read the prompt (and bills it), so the input is charged, by estimate, and the
    upstream is told to stop."""
    await _leave_while_upstream_hangs(customer, fake_openai, stream=True)
    await asyncio.to_thread(fake_openai.wait_disconnects)
    await http.aclose()
    [record] = await _settled(customer)
    assert (record.status, record.error_code) == (499, "client_disconnected")
    assert record.client_disconnected and record.estimated
    assert record.output_tokens == 0 and record.input_tokens > 0
    prices = await asyncio.to_thread(lambda: get_catalogue().get("gpt-4o").prices)
    expected = token_charge(prices, input_tokens=record.input_tokens, output_tokens=0)
    assert record.charge == expected > 0
    assert _held(customer) == 0


@pytest.mark.django_db(transaction=True)
async def test_no_other_upstream_is_tried_for_a_client_that_left(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    """The first upstream fails after the client left: trying the next key would make a
    call (and a bill) for nobody. Nothing was billed, so nothing is charged."""
    second = "sk-upstream-second-0123456789"
    fake_openai.valid_keys.add(second)
    await asyncio.to_thread(
        lambda: ProviderKey.objects.create(
            provider=ProviderKey.objects.get().provider, secret=second
        )
    )
    fake_openai.fail_next(500)
    await _leave_while_upstream_hangs(customer, fake_openai, stream=False)
    fake_openai.release()
    await pipeline.background_done()
    await http.aclose()
    assert len(fake_openai.requests) == 1
    [record] = await _settled(customer)
    assert record.client_disconnected and record.charge == 0
    assert record.status == 502


@pytest.mark.django_db(transaction=True)
async def test_a_retry_of_a_request_whose_client_left_replays_its_answer_charged_once(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    """A client that timed out and retries with the same Idempotency-Key gets the answer
    the gateway read for it, and pays once."""
    fake_openai.set_reply(text="kept for the retry", prompt_tokens=20, completion_tokens=4)
    key = ((b"idempotency-key", b"retry-after-leaving"),)
    await _leave_while_upstream_hangs(customer, fake_openai, stream=False, headers=key)
    fake_openai.release()
    await pipeline.background_done()
    await http.aclose()
    sent: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        sent.append(message)

    await _leave_after(asyncio.Event(), customer, keep, stream=False, headers=key)
    start, *bodies = sent
    assert start["status"] == 200
    assert dict(start["headers"])[b"idempotent-replayed"] == b"true"
    answer = orjson.loads(b"".join(m.get("body", b"") for m in bodies))
    assert answer["choices"][0]["message"]["content"] == "kept for the retry"
    assert len(fake_openai.requests) == 1
    [record] = await _settled(customer)
    assert record.charge > 0
