"""Every provider's usage shape, read once into Usage: cache reads and writes, reasoning,
audio and images land in their own counts, and survive the chat hub to billing."""

from __future__ import annotations

from typing import Any

import pytest

from providers.translation import (
    AnthropicStreamToChat,
    GeminiStreamToChat,
    Usage,
    anthropic_response_to_chat,
    gemini_response_to_chat,
)
from tests.fixtures.usage import usage_fixtures

FIXTURES = usage_fixtures()
READERS = {
    "openai_chat": Usage.from_openai_chat,
    "responses": Usage.from_responses,
    "anthropic": Usage.from_anthropic,
    "gemini": Usage.from_gemini,
}


def read(fixture: dict[str, Any]) -> Usage:
    return READERS[fixture["reader"]](fixture["usage"])


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=[n for n, _ in FIXTURES])
def test_each_provider_usage_is_read_into_its_components(name: str, fixture: dict) -> None:
    assert read(fixture) == Usage(**{"input_tokens": 0, "output_tokens": 0, **fixture["expected"]})


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=[n for n, _ in FIXTURES])
def test_every_component_survives_the_chat_hub(name: str, fixture: dict) -> None:
    """Anthropic and Gemini answers reach billing as chat usage: nothing may be lost."""
    usage = read(fixture)
    assert Usage.from_openai_chat(usage.to_openai_chat()) == usage


def test_chat_usage_stays_openai_shaped_when_there_is_nothing_more_to_say() -> None:
    chat = Usage(10, 5, cached_input_tokens=2).to_openai_chat()
    assert set(chat["prompt_tokens_details"]) == {"cached_tokens", "audio_tokens"}
    assert "image_tokens" not in chat["completion_tokens_details"]


def test_cache_writes_read_back_from_every_dialect_they_are_written_to() -> None:
    usage = Usage(3021, 9, 0, cache_write_tokens=1000, cache_write_1h_tokens=2000)
    assert Usage.from_anthropic(usage.to_anthropic()) == usage
    assert Usage.from_responses(usage.to_responses()) == usage
    assert usage.to_anthropic()["cache_creation"] == {
        "ephemeral_5m_input_tokens": 1000,
        "ephemeral_1h_input_tokens": 2000,
    }
    assert usage.to_anthropic()["input_tokens"] == 21


def test_an_anthropic_answer_carries_its_cache_writes_into_chat_usage() -> None:
    fixture = dict(FIXTURES)["anthropic_cache_read_write"]
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "usage": fixture["usage"],
    }
    completion = anthropic_response_to_chat(message, model="claude")
    assert Usage.from_openai_chat(completion["usage"]) == read(fixture)


def test_an_anthropic_stream_carries_cache_writes_reported_only_at_its_end() -> None:
    """Some upstreams report zeros in message_start and the real counts in message_delta."""
    stream = AnthropicStreamToChat(model="claude", include_usage=True)
    chunks = stream.feed(
        {
            "type": "message_start",
            "message": {"id": "msg_1", "usage": {"input_tokens": 0, "output_tokens": 1}},
        }
    )
    final = {
        "input_tokens": 21,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 500,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 40,
    }
    chunks += stream.feed(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": final}
    )
    chunks += stream.feed({"type": "message_stop"})
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert [Usage.from_openai_chat(u) for u in usage] == [
        Usage(3521, 40, 500, cache_write_tokens=1000, cache_write_1h_tokens=2000)
    ]


def test_a_gemini_answer_carries_thoughts_audio_and_images_into_chat_usage() -> None:
    fixtures = dict(FIXTURES)
    for name in ("gemini_cached_thoughts", "gemini_image_audio_input", "gemini_image_output"):
        response = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": fixtures[name]["usage"],
        }
        completion = gemini_response_to_chat(response, model="gemini")
        assert Usage.from_openai_chat(completion["usage"]) == read(fixtures[name]), name


def test_a_gemini_stream_reports_its_last_usage_with_every_component() -> None:
    fixture = dict(FIXTURES)["gemini_image_audio_input"]
    stream = GeminiStreamToChat(model="gemini", include_usage=True)
    chunks = stream.feed(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}}],
            "usageMetadata": {"promptTokenCount": 1300, "candidatesTokenCount": 1},
        }
    )
    chunks += stream.feed(
        {
            "candidates": [{"content": {"parts": []}, "finishReason": "STOP"}],
            "usageMetadata": fixture["usage"],
        }
    )
    chunks += stream.finish()
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert Usage.from_openai_chat(usage[-1]) == read(fixture)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": True},
        {"prompt_tokens": None, "completion_tokens": "7"},
    ],
)
def test_nonsense_counts_read_as_zero_never_negative(usage: dict) -> None:
    assert Usage.from_openai_chat(usage) == Usage(0, 0)


def test_openai_total_without_reasoning_apart_is_not_double_counted() -> None:
    """OpenAI: total = prompt + completion, reasoning inside completion: unchanged."""
    usage = Usage.from_openai_chat(
        {
            "prompt_tokens": 10,
            "completion_tokens": 100,
            "total_tokens": 110,
            "completion_tokens_details": {"reasoning_tokens": 90},
        }
    )
    assert (usage.output_tokens, usage.reasoning_tokens) == (100, 90)


def test_an_anthropic_split_without_its_total_still_counts_every_write() -> None:
    usage = Usage.from_anthropic(
        {
            "input_tokens": 5,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 70},
        }
    )
    assert usage == Usage(105, 1, cache_write_tokens=30, cache_write_1h_tokens=70)


@pytest.mark.parametrize(
    ("reader", "usage"),
    [
        (Usage.from_openai_chat, {"prompt_tokens": 5_000_000_000, "completion_tokens": 3}),
        # The sum of an upstream's parts: input plus cache reads and writes.
        (
            Usage.from_anthropic,
            {"input_tokens": 2**31 - 10, "cache_read_input_tokens": 100, "output_tokens": 3},
        ),
        (Usage.from_responses, {"input_tokens": 1, "output_tokens": 2**40}),
    ],
)
def test_a_count_past_what_the_usage_table_holds_is_read_as_its_largest(
    reader: Any, usage: dict[str, Any]
) -> None:
    """Two billion tokens in one answer is a bug upstream: charged and recorded at the
    integer columns' largest value rather than failing, or wrapping, on the way in."""
    read = reader(usage)
    assert max(read.input_tokens, read.output_tokens) == 2**31 - 1
    assert min(read.input_tokens, read.output_tokens) in (1, 3)
