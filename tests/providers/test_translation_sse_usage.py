"""SSE framing and parsing, and token usage across dialects."""

from __future__ import annotations

import json

import pytest

from providers.translation import SSEParser, Usage, sse_data, sse_event


def test_sse_writers() -> None:
    assert sse_data({"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert sse_data("[DONE]") == b"data: [DONE]\n\n"
    assert (
        sse_event({"type": "message_stop"})
        == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


STREAM = (
    ": keep-alive\n\n"
    "event: message_start\r\n"
    'data: {"type":"message_start"}\r\n\r\n'
    "data: line one\n"
    "data: line two\n\n"
    "event: ping\rdata: {}\r\r"
    "id: 7\nretry: 100\ndata:no-space\n\n"
    "event: lonely\n\n"
    'data: {"text":"héllo"}\n\n'
).encode()
EXPECTED = [
    ("message_start", '{"type":"message_start"}'),
    ("message", "line one\nline two"),
    ("ping", "{}"),
    ("message", "no-space"),
    ("message", '{"text":"héllo"}'),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_sse_parser_handles_any_chunking(size: int) -> None:
    parser = SSEParser()
    events = []
    for start in range(0, len(STREAM), size):
        events.extend(parser.feed(STREAM[start : start + size]))
    events.extend(parser.finish())
    assert events == EXPECTED


def test_sse_parser_round_trips_the_writers_and_flushes_an_unterminated_frame() -> None:
    parser = SSEParser()
    events = parser.feed(sse_event({"type": "x", "n": 1}) + sse_data({"n": 2}) + b'data: {"n":3}')
    assert events == [("x", '{"type":"x","n":1}'), ("message", '{"n":2}')]
    assert [json.loads(data)["n"] for _, data in parser.finish()] == [3]
    assert parser.finish() == []


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            Usage.from_openai_chat(
                {
                    "prompt_tokens": 100,
                    "completion_tokens": 20,
                    "total_tokens": 120,
                    "prompt_tokens_details": {"cached_tokens": 30},
                    "completion_tokens_details": {"reasoning_tokens": 5},
                }
            ),
            Usage(100, 20, 30, 5),
            id="openai-chat",
        ),
        pytest.param(
            Usage.from_openai_chat(
                {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": None}
            ),
            Usage(3, 1),
            id="openai-chat-null-details",
        ),
        pytest.param(
            Usage.from_anthropic(
                {
                    "input_tokens": 10,
                    "output_tokens": 4,
                    "cache_read_input_tokens": 50,
                    "cache_creation_input_tokens": 6,
                }
            ),
            Usage(66, 4, 50, cache_write_tokens=6),
            id="anthropic-cache-counts-as-input",
        ),
        pytest.param(
            Usage.from_responses(
                {
                    "input_tokens": 9,
                    "output_tokens": 2,
                    "input_tokens_details": {"cached_tokens": 1},
                    "output_tokens_details": {"reasoning_tokens": 1},
                }
            ),
            Usage(9, 2, 1, 1),
            id="responses",
        ),
        pytest.param(
            Usage.from_gemini(
                {
                    "promptTokenCount": 7,
                    "candidatesTokenCount": 3,
                    "thoughtsTokenCount": 10,
                    "cachedContentTokenCount": 2,
                }
            ),
            Usage(7, 13, 2, 10),
            id="gemini-thoughts-are-output",
        ),
        pytest.param(Usage.from_gemini(None), Usage(0, 0), id="gemini-missing"),
    ],
)
def test_usage_readers(usage: Usage, expected: Usage) -> None:
    assert usage == expected
    assert all(
        isinstance(value, int)
        for value in (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)
    )


def test_usage_writers() -> None:
    usage = Usage(input_tokens=100, output_tokens=20, cached_input_tokens=30, reasoning_tokens=5)
    assert usage.to_openai_chat()["total_tokens"] == 120
    assert usage.to_openai_chat()["prompt_tokens_details"]["cached_tokens"] == 30
    assert usage.to_anthropic() == {
        "input_tokens": 70,
        "output_tokens": 20,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 30,
    }
    assert usage.to_responses() == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 120,
    }
    # Each writer reads back to the same usage (Anthropic loses only the reasoning split).
    assert Usage.from_openai_chat(usage.to_openai_chat()) == usage
    assert Usage.from_responses(usage.to_responses()) == usage
    assert Usage.from_anthropic(usage.to_anthropic()) == Usage(100, 20, 30)
