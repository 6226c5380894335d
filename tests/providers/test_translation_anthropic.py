"""Chat completions <-> Anthropic Messages: what a caller of either dialect sees."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from providers.translation import (
    AnthropicStreamToChat,
    ChatStreamToAnthropic,
    TranslationError,
    anthropic_request_to_chat,
    anthropic_response_to_chat,
    chat_request_to_anthropic,
    chat_response_to_anthropic,
)

PNG_B64 = "iVBORw0KGgoAAAANSUhEUg=="
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    return chat_request_to_anthropic(
        {"model": "claude", **body}, upstream_model="claude-sonnet-4-5", default_max_tokens=4096
    )


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# -- chat request -> Anthropic request -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"messages": [{"role": "system", "content": "Be brief."}, user("Hi")]},
            {
                "system": "Be brief.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            },
            id="system-prompt-becomes-top-level",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "system", "content": "A"},
                    {"role": "developer", "content": [{"type": "text", "text": "B"}]},
                    user("Hi"),
                ]
            },
            {"system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
            id="several-system-and-developer-messages",
        ),
        pytest.param(
            {
                "messages": [
                    user("one"),
                    user("two"),
                    {"role": "assistant", "content": "ok"},
                    user("three"),
                ]
            },
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "one"},
                            {"type": "text", "text": "two"},
                        ],
                    },
                    {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                    {"role": "user", "content": [{"type": "text", "text": "three"}]},
                ]
            },
            id="multi-turn-with-consecutive-users-merged",
        ),
        pytest.param(
            {
                "messages": [
                    user(
                        [
                            {"type": "text", "text": "What is this?"},
                            {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                            },
                        ]
                    )
                ]
            },
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://x.test/cat.png"},
                            },
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_B64,
                                },
                            },
                        ],
                    }
                ]
            },
            id="images-by-url-and-base64",
        ),
        pytest.param({"messages": [user("x")]}, {"max_tokens": 4096}, id="default-max-tokens"),
        pytest.param(
            {"messages": [user("x")], "max_tokens": 10, "max_completion_tokens": 20},
            {"max_tokens": 20},
            id="max-completion-tokens-wins",
        ),
        pytest.param(
            {"messages": [user("x")], "stop": "END"}, {"stop_sequences": ["END"]}, id="stop-string"
        ),
        pytest.param(
            {"messages": [user("x")], "stop": ["a", "b"]},
            {"stop_sequences": ["a", "b"]},
            id="stop-list",
        ),
        pytest.param(
            {
                "messages": [user("x")],
                "temperature": 1.7,
                "top_p": 0.5,
                "stream": True,
                "user": "u-1",
            },
            {"temperature": 1, "stream": True, "metadata": {"user_id": "u-1"}},
            id="sampling-stream-user",
        ),
        pytest.param({"messages": [user("x")], "top_p": 0.5}, {"top_p": 0.5}, id="top-p-alone"),
        pytest.param(
            {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": "required"},
            {
                "tools": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "input_schema": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    }
                ],
                "tool_choice": {"type": "any"},
            },
            id="tools-and-required",
        ),
        pytest.param(
            {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": "auto"},
            {"tool_choice": {"type": "auto"}},
            id="tool-choice-auto",
        ),
        pytest.param(
            {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": "none"},
            {"tool_choice": {"type": "none"}},
            id="tool-choice-none",
        ),
        pytest.param(
            {
                "messages": [user("x")],
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": False,
            },
            {
                "tool_choice": {
                    "type": "tool",
                    "name": "get_weather",
                    "disable_parallel_tool_use": True,
                }
            },
            id="named-tool-without-parallel-calls",
        ),
        pytest.param(
            {
                "messages": [user("x")],
                "tools": [{"type": "function", "function": {"name": "now"}}],
                "parallel_tool_calls": False,
            },
            {
                "tools": [{"name": "now", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            },
            id="tool-without-parameters",
        ),
    ],
)
def test_chat_request_to_anthropic(body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = to_anthropic(body)
    assert out["model"] == "claude-sonnet-4-5"
    for key, value in expected.items():
        assert out[key] == value, key
    if "top_p" not in expected:
        assert "top_p" not in out


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        pytest.param(
            [user("hi"), user([{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}])],
            "messages[1].content[0].image_url",
            id="data-url-without-base64",
        ),
        pytest.param(
            [
                user(
                    [
                        {"type": "text", "text": "x"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}},
                    ]
                )
            ],
            "messages[0].content[1].image_url",
            id="bad-base64",
        ),
        pytest.param(
            [user([{"type": "image_url", "image_url": {"url": "data:;base64,AAAA"}}])],
            "messages[0].content[0].image_url",
            id="no-media-type",
        ),
        pytest.param(
            [user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}])],
            "messages[0].content[0].image_url",
            id="unsupported-image-type",
        ),
        pytest.param(
            [user([{"type": "image_url", "image_url": {"url": "ftp://x.test/a.png"}}])],
            "messages[0].content[0].image_url",
            id="not-a-web-or-data-url",
        ),
        pytest.param(
            [user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}])],
            "messages[0].content[0].type",
            id="audio-part",
        ),
        pytest.param(
            [
                user("x"),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
            id="invalid-tool-arguments",
        ),
        pytest.param(
            [user("x"), {"role": "tool", "content": "42"}],
            "messages[1].tool_call_id",
            id="tool-without-id",
        ),
        pytest.param(
            [{"role": "function", "content": "x"}], "messages[0].role", id="legacy-function-role"
        ),
    ],
)
def test_chat_request_to_anthropic_rejects(messages: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        to_anthropic({"messages": messages})
    assert caught.value.param == param


def test_chat_request_with_several_choices_is_refused() -> None:
    with pytest.raises(TranslationError) as caught:
        to_anthropic({"messages": [user("x")], "n": 2})
    assert caught.value.param == "n"


TOOL_CONVERSATION = [
    {"role": "system", "content": "You are a weather bot."},
    user("Weather in Paris and Rome?"),
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
    user("Thanks. Which is warmer?"),
]


def test_tool_calls_and_results_become_tool_use_and_one_user_turn() -> None:
    out = to_anthropic({"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL]})
    assert out["system"] == "You are a weather bot."
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "21C"}],
        },
        {"type": "text", "text": "Thanks. Which is warmer?"},
    ]


def test_tool_call_round_trip_keeps_ids_names_and_arguments() -> None:
    anthropic_body = to_anthropic({"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL]})
    back = anthropic_request_to_chat(anthropic_body)
    assert back["messages"][0] == {"role": "system", "content": "You are a weather bot."}
    assistant = back["messages"][2]
    assert assistant["content"] == "Checking."
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ]
    assert calls == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_weather", {"city": "Rome"}),
    ]
    assert back["messages"][3:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
        {"role": "user", "content": "Thanks. Which is warmer?"},
    ]
    assert back["tools"] == [WEATHER_TOOL]


# -- Anthropic response -> chat response -----------------------------------------------


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str, **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_anthropic_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    out = anthropic_response_to_chat(
        anthropic_message([{"type": "text", "text": "hi"}], stop_reason), model="claude"
    )
    ChatCompletion.model_validate(out)
    assert out["choices"][0]["finish_reason"] == finish_reason


def test_anthropic_response_with_text_tool_use_and_cache_usage() -> None:
    resp = anthropic_message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "tool_use",
        cache_read_input_tokens=100,
        cache_creation_input_tokens=7,
    )
    out = anthropic_response_to_chat(
        resp, model="my-claude", request_id="chatcmpl-req1", created=1700000000
    )
    completion = ChatCompletion.model_validate(out)
    assert completion.id == "chatcmpl-req1"
    assert completion.model == "my-claude"
    message = completion.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls[0].id == "toolu_1"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert completion.usage.prompt_tokens == 117
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 122
    assert completion.usage.prompt_tokens_details.cached_tokens == 100


def test_anthropic_tool_only_response_has_null_content() -> None:
    resp = anthropic_message(
        [{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "tool_use"
    )
    out = anthropic_response_to_chat(resp, model="m")
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"


# -- Anthropic stream -> chat stream ---------------------------------------------------

ANTHROPIC_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 5},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 42},
    },
    {"type": "message_stop"},
]


def summarize_chunk(chunk: dict[str, Any]) -> Any:
    if not chunk["choices"]:
        return ("usage", chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
    choice = chunk["choices"][0]
    return (choice["delta"], choice["finish_reason"])


def test_anthropic_stream_becomes_chat_chunks() -> None:
    translator = AnthropicStreamToChat(
        model="my-claude", include_usage=True, chunk_id="chatcmpl-s", created=1
    )
    chunks = [chunk for event in ANTHROPIC_STREAM for chunk in translator.feed(event)]
    chunks += translator.finish()
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["id"] == "chatcmpl-s"
    assert [summarize_chunk(c) for c in chunks] == [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"content": "Let me "}, None),
        ({"content": "check."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({}, "tool_calls"),
        ("usage", 30, 42),
    ]
    assert translator.usage.input_tokens == 30
    assert translator.usage.cached_input_tokens == 5
    assert translator.usage.output_tokens == 42

    # The OpenAI SDK's own accumulator rebuilds the whole answer from these chunks.
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    assert final.choices[0].message.content == "Let me check."
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments is None
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {
        "city": "Paris"
    }


def test_anthropic_stream_without_usage_chunk_and_upstream_error() -> None:
    translator = AnthropicStreamToChat(model="m")
    chunks = [chunk for event in ANTHROPIC_STREAM[:5] for chunk in translator.feed(event)]
    assert (
        translator.feed({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        == []
    )
    assert translator.error == {"type": "overloaded_error", "message": "busy"}
    assert translator.finish() == []
    assert all(chunk["choices"] for chunk in chunks)


def test_anthropic_stream_max_tokens_finishes_with_length() -> None:
    translator = AnthropicStreamToChat(model="m")
    events = [
        *ANTHROPIC_STREAM[:4],
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert translator.finish() == []


# -- Anthropic request -> chat request ---------------------------------------------------


def messages_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "max_tokens": 256, "messages": [user("hi")], **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            messages_body(system="Be brief."),
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ]
            },
            id="system-string",
        ),
        pytest.param(
            messages_body(
                system=[
                    {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "B"},
                ]
            ),
            {
                "messages": [
                    {"role": "system", "content": "A\n\nB"},
                    {"role": "user", "content": "hi"},
                ]
            },
            id="system-blocks",
        ),
        pytest.param(
            messages_body(
                messages=[
                    user(
                        [
                            {"type": "text", "text": "Look"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_B64,
                                },
                            },
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://x.test/a.jpg"},
                            },
                        ]
                    )
                ]
            ),
            {
                "messages": [
                    user(
                        [
                            {"type": "text", "text": "Look"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                            },
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                        ]
                    )
                ]
            },
            id="images",
        ),
        pytest.param(
            messages_body(
                stop_sequences=["###"],
                temperature=0.2,
                top_p=0.9,
                top_k=5,
                metadata={"user_id": "u9"},
            ),
            {"stop": ["###"], "temperature": 0.2, "top_p": 0.9, "user": "u9", "max_tokens": 256},
            id="sampling-and-stop",
        ),
        pytest.param(
            messages_body(stream=True),
            {"stream": True, "stream_options": {"include_usage": True}},
            id="stream-asks-for-usage",
        ),
        pytest.param(
            messages_body(
                tools=[
                    {
                        "name": "f",
                        "description": "d",
                        "input_schema": {"type": "object", "properties": {}},
                    }
                ],
                tool_choice={"type": "any", "disable_parallel_tool_use": True},
            ),
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": {}},
                            "description": "d",
                        },
                    }
                ],
                "tool_choice": "required",
                "parallel_tool_calls": False,
            },
            id="tools-any",
        ),
        pytest.param(
            messages_body(
                tools=[{"name": "f", "input_schema": {"type": "object"}}],
                tool_choice={"type": "tool", "name": "f"},
            ),
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
            id="tool-choice-named",
        ),
        pytest.param(
            messages_body(
                tools=[{"name": "f", "input_schema": {"type": "object"}}],
                tool_choice={"type": "none"},
            ),
            {"tool_choice": "none"},
            id="tool-choice-none",
        ),
        pytest.param(
            messages_body(
                tools=[{"name": "f", "input_schema": {"type": "object"}}],
                tool_choice={"type": "auto"},
            ),
            {"tool_choice": "auto"},
            id="tool-choice-auto",
        ),
    ],
)
def test_anthropic_request_to_chat(body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = anthropic_request_to_chat(body)
    assert out["model"] == "gpt-4o"
    for key, value in expected.items():
        assert out[key] == value, key
    if not body.get("stream"):
        assert "stream_options" not in out


def test_anthropic_tool_results_with_images_and_thinking() -> None:
    body = messages_body(
        messages=[
            user("Screenshot please"),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}},
                ],
            },
            user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "done"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_B64,
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "What do you see?"},
                ]
            ),
        ]
    )
    out = anthropic_request_to_chat(body)
    assert out["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "screenshot", "arguments": "{}"},
            }
        ],
    }
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "done"}
    assert out["messages"][3] == user(
        [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            {"type": "text", "text": "What do you see?"},
        ]
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(
            {"model": "m", "messages": [user("x")]}, "max_tokens", id="missing-max-tokens"
        ),
        pytest.param(messages_body(max_tokens=0), "max_tokens", id="zero-max-tokens"),
        pytest.param(
            messages_body(
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
                tool_choice={"type": "tool", "name": "web_search"},
            ),
            "tool_choice",
            id="forced-server-tool",
        ),
        pytest.param(
            messages_body(
                messages=[
                    user(
                        [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "@@",
                                },
                            }
                        ]
                    )
                ]
            ),
            "messages[0].content[0].source",
            id="bad-base64-image",
        ),
        pytest.param(
            messages_body(messages=[{"role": "tool", "content": "x"}]),
            "messages[0].role",
            id="bad-role",
        ),
        pytest.param(
            messages_body(tool_choice={"type": "sometimes"}), "tool_choice", id="bad-tool-choice"
        ),
    ],
)
def test_anthropic_request_to_chat_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        anthropic_request_to_chat(body)
    assert caught.value.param == param


# -- chat response -> Anthropic response -------------------------------------------------


def chat_completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_chat_finish_reasons_as_stop_reasons(finish_reason: str, stop_reason: str) -> None:
    out = chat_response_to_anthropic(
        chat_completion({"content": "hi"}, finish_reason), model="gpt-4o"
    )
    assert Message.model_validate(out).stop_reason == stop_reason


def test_chat_response_to_anthropic_message() -> None:
    resp = chat_completion(
        {
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "broken", "arguments": "{not json"},
                },
            ],
        },
        "tool_calls",
    )
    message = Message.model_validate(chat_response_to_anthropic(resp, model="my-gpt"))
    assert message.id == "msg_xyz"
    assert message.model == "my-gpt"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].input == {"city": "Paris"}
    assert message.content[2].input == {"_raw_arguments": "{not json"}
    assert message.stop_sequence is None
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.output_tokens == 7


# -- chat stream -> Anthropic stream -----------------------------------------------------


def chat_chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def tool_delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id:
        call["id"] = id
        call["type"] = "function"
    if name:
        call["function"]["name"] = name
    return {"tool_calls": [call]}


CHAT_STREAM = [
    chat_chunk({"role": "assistant", "content": ""}),
    chat_chunk({"content": "Checking "}),
    chat_chunk({"content": "both."}),
    chat_chunk(tool_delta(0, id="call_a", name="get_weather")),
    chat_chunk(tool_delta(0, arguments='{"city":')),
    chat_chunk(tool_delta(0, arguments='"Paris"}')),
    chat_chunk(tool_delta(1, id="call_b", name="get_time", arguments="")),
    chat_chunk(tool_delta(1, arguments='{"tz":"CET"}')),
    chat_chunk({}, "tool_calls"),
    {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    },
]


def run_chat_to_anthropic(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translator = ChatStreamToAnthropic(model="my-gpt")
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    return events + translator.finish()


def test_chat_stream_becomes_anthropic_events() -> None:
    events = run_chat_to_anthropic(CHAT_STREAM)
    summary = [(e["type"], e.get("index")) for e in events]
    assert summary == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[5]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"]["output_tokens"] == 20
    assert events[-2]["usage"]["input_tokens"] == 50

    # The Anthropic SDK's own accumulator rebuilds the message from the events.
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(
            event=STREAM_EVENT.validate_python(event),
            current_snapshot=snapshot,
            json_bufs=json_bufs,
        )
    assert snapshot is not None
    message = Message.model_validate(snapshot.to_dict())
    assert message.content[0].text == "Checking both."
    assert (message.content[1].id, message.content[1].input) == ("call_a", {"city": "Paris"})
    assert (message.content[2].id, message.content[2].input) == ("call_b", {"tz": "CET"})
    assert message.stop_reason == "tool_use"
    assert message.id == "msg_abc"


def test_chat_stream_text_after_tool_and_name_arriving_late() -> None:
    events = run_chat_to_anthropic(
        [
            chat_chunk(tool_delta(0, id="call_x", arguments='{"a"')),
            chat_chunk(tool_delta(0, name="f", arguments=":1}")),
            chat_chunk({"content": "done"}),
            chat_chunk({}, "stop"),
        ]
    )
    for event in events:
        STREAM_EVENT.validate_python(event)
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[2]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":1}'}
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_chat_stream_that_ends_before_any_chunk_is_still_a_message() -> None:
    translator = ChatStreamToAnthropic(model="m", message_id="msg_fixed")
    events = translator.finish()
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0]["message"]["id"] == "msg_fixed"
    for event in events:
        STREAM_EVENT.validate_python(event)
    assert translator.error("boom") == [
        {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    ]


PDF_B64 = "JVBERi0xLjQK"


def test_pdf_files_travel_both_ways() -> None:
    chat_part = {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "document.pdf"},
    }
    out = to_anthropic({"messages": [user([{"type": "text", "text": "Summarise"}, chat_part])]})
    document = out["messages"][0]["content"][1]
    assert document == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
    }
    back = anthropic_request_to_chat(messages_body(messages=[user([document])]))
    assert back["messages"] == [user([chat_part])]


def test_only_pdf_files_are_accepted() -> None:
    part = {"type": "file", "file": {"file_data": f"data:text/plain;base64,{PDF_B64}"}}
    with pytest.raises(TranslationError) as caught:
        to_anthropic({"messages": [user([part])]})
    assert caught.value.param == "messages[0].content[0].file.file_data"
