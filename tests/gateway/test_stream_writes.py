"""How a stream reaches the client: when the upstream's answer arrives whole, its end
included, the client gets it in one write that also ends the response, not in a
write followed by an empty one once the gateway has read the end separately."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer
from tests.gateway.test_chat_completions import expected_charge
from tests.gateway.test_disconnects import _leave_after, _settled


@pytest.mark.django_db(transaction=True)
async def test_a_stream_the_upstream_sends_whole_goes_out_in_one_write_and_is_charged(
    customer: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="one two three", prompt_tokens=12, completion_tokens=3)
    fake_openai.whole_streams = True
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await _leave_after(asyncio.Event(), customer, send)  # a client that stays
    start, *bodies = messages
    assert (start["type"], start["status"]) == ("http.response.start", 200)
    [body] = bodies
    assert body["type"] == "http.response.body" and not body.get("more_body")
    events = [line[6:] for line in body["body"].split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in orjson.loads(event)["choices"]
    )
    assert text == "one two three"
    [record] = await _settled(customer)
    assert (record.status, record.input_tokens, record.output_tokens) == (200, 12, 3)
    assert record.charge == expected_charge(12, 3)
    assert record.ttft_ms is not None  # its first bytes were its last: timed all the same
