"""Requests outside the upstream APIs' own limits are refused before admission, with a
400 naming the field, and cost nothing; and a call whose upstream reports no usage is
charged for everything it streamed, its reasoning included."""

from __future__ import annotations

import httpx
import pytest

from gateway import metering
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import split_evenly
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, settled
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]
CHAT = {"model": "gpt-4o", "messages": HELLO}

OUTSIDE = [
    ("/v1/chat/completions", {**CHAT, "n": 1000}, "n", "integer_above_max_value", "<= 128"),
    ("/v1/chat/completions", {**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop",
     "array_above_max_length", "maximum length 4"),
    ("/v1/chat/completions",
     {**CHAT, "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]},
     "tools", "array_above_max_length", "maximum length 128"),
    ("/v1/chat/completions", {**CHAT, "top_logprobs": 21}, "top_logprobs", "invalid_value", "20"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a"] * 1_000_000}, "input",
     "array_above_max_length", "maximum length 2048"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": list(range(2049))}, "input",
     "array_above_max_length", "maximum length 2048"),
    ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "a cat", "size": "bogus"},
     "size", "invalid_value", "WIDTHxHEIGHT"),
    ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "a cat", "size": "99999x2"},
     "size", "invalid_value", "at most 3840"),
    ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "a cat", "n": 11}, "n",
     "integer_above_max_value", "<= 10"),
    ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "x" * 32_001}, "prompt",
     "string_above_max_length", "maximum length 32000"),
    ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "x" * 4097}, "input",
     "string_above_max_length", "maximum length 4096"),
    ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 5}, "speed",
     "invalid_value", "between 0.25 and 4"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "param", "code", "says"), OUTSIDE, ids=[f"{c[0]}:{c[2]}" for c in OUTSIDE]
)
def test_a_request_outside_the_upstreams_limits_is_a_400_naming_the_field(
    funded: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer,
    path: str, body: dict, param: str, code: str, says: str,
) -> None:  # fmt: skip
    answer = httpx.post(
        gateway.base_url + path, json=body, timeout=30,
        headers={"authorization": f"Bearer {funded.key.secret}"},
    )  # fmt: skip
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert says in error["message"]
    assert fake_openai.requests == [] and settled(funded) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "n": 128}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a"] * 2048}),
        ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "a cat", "size": "1024x1024", "n": 10}),
    ],
    ids=["n=128", "2048 inputs", "10 images"],
)  # fmt: skip
def test_requests_at_the_upstreams_limits_are_served(
    funded: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer, path: str, body: dict
) -> None:
    answer = httpx.post(
        gateway.base_url + path, json=body, timeout=30,
        headers={"authorization": f"Bearer {funded.key.secret}"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_the_output_counted_without_usage_includes_streamed_reasoning() -> None:
    """OpenAI-compatible upstreams stream reasoning as `reasoning_content` (DeepSeek,
    Qwen) or `reasoning` (OpenRouter): both count, at one token per UTF-8 byte."""
    counter = metering.OutputCounter()
    counter.add_chunk({"choices": [{"delta": {"reasoning_content": "思考" * 10}}]})
    counter.add_chunk({"choices": [{"delta": {"reasoning": "think"}}]})
    counter.add_chunk({"choices": [{"delta": {"content": "ok"}}]})
    assert counter.tokens == 60 + 5 + 2
    answer = metering.OutputCounter()
    answer.add_message({"choices": [{"message": {"content": "ok", "reasoning_content": "hmm"}}]})
    assert answer.tokens == 5


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions"])
def test_claudes_thinking_counts_as_output_of_a_stream_cut_short(
    funded: Customer, fake_anthropic: FakeAnthropic, gateway: AsgiServer, path: str
) -> None:
    """A client that leaves mid-answer is charged for what was generated, before the
    usage Claude reports at the end: the thinking streamed counts, whether the stream is
    forwarded as written (Messages) or translated to chat (where thinking has no form)."""
    thinking = "Let me think about this carefully. " * 20
    fake_anthropic.set_reply(text="The answer is four.", thinking=thinking, stream_chunks=4)
    fake_anthropic.pause_after_chunks = 1
    first = split_evenly("The answer is four.", 4)[0]
    body = {"model": "claude-sonnet", "max_tokens": 2048, "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {funded.key.secret}"}
    with httpx.Client(timeout=30) as client, client.stream(
        "POST", gateway.base_url + path, json=body, headers=headers
    ) as answer:  # fmt: skip
        received = b""
        for data in answer.iter_bytes():
            received += data
            if first.encode() in received:
                break
    fake_anthropic.wait_disconnects(1)
    [record] = settled(funded)
    assert record.client_disconnected and record.estimated
    assert record.output_tokens == len(thinking) + len(first)
