"""Chat completions -> Gemini generateContent, and Gemini's answers back as chat."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from providers.translation import (
    GeminiStreamToChat,
    TranslationError,
    chat_request_to_gemini,
    gemini_response_to_chat,
)
from providers.translation.gemini import SKIP_THOUGHT_SIGNATURE

PNG_B64 = "iVBORw0KGgoAAAANSUhEUg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"messages": [{"role": "system", "content": "Be brief."}, user("Hi")]},
            {
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            },
            id="system-prompt",
        ),
        pytest.param(
            {"messages": [user("a"), {"role": "assistant", "content": "b"}, user("c"), user("d")]},
            {
                "contents": [
                    {"role": "user", "parts": [{"text": "a"}]},
                    {"role": "model", "parts": [{"text": "b"}]},
                    {"role": "user", "parts": [{"text": "c"}, {"text": "d"}]},
                ]
            },
            id="multi-turn",
        ),
        pytest.param(
            {
                "messages": [
                    user(
                        [
                            {"type": "text", "text": "What?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
                            },
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://x.test/a/cat.JPG?x=1"},
                            },
                        ]
                    )
                ]
            },
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [
                            {"text": "What?"},
                            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                            {
                                "fileData": {
                                    "fileUri": "https://x.test/a/cat.JPG?x=1",
                                    "mimeType": "image/jpeg",
                                }
                            },
                        ],
                    }
                ]
            },
            id="images",
        ),
        pytest.param(
            {
                "messages": [user("x")],
                "max_tokens": 100,
                "temperature": 0.5,
                "top_p": 0.9,
                "stop": "END",
                "response_format": {"type": "json_object"},
            },
            {
                "generationConfig": {
                    "maxOutputTokens": 100,
                    "temperature": 0.5,
                    "topP": 0.9,
                    "stopSequences": ["END"],
                    "responseMimeType": "application/json",
                }
            },
            id="generation-config",
        ),
        pytest.param(
            {"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": "required"},
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "get_weather",
                                "description": "Weather for a city",
                                "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                            }
                        ]
                    }
                ],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            },
            id="tools",
        ),
        pytest.param(
            {
                "messages": [user("x")],
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            },
            {
                "toolConfig": {
                    "functionCallingConfig": {
                        "mode": "ANY",
                        "allowedFunctionNames": ["get_weather"],
                    }
                }
            },
            id="named-tool-choice",
        ),
    ],
)
def test_chat_request_to_gemini(body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = chat_request_to_gemini(body)
    for key, value in expected.items():
        assert out[key] == value, key
    assert "model" not in out


def test_tool_turns_become_function_call_and_response_parts() -> None:
    out = chat_request_to_gemini(
        {
            "messages": [
                user("Paris and Rome?"),
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
            ],
            "tools": [WEATHER_TOOL],
        }
    )
    assert out["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "21C"}}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        pytest.param(
            [user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,abc$"}}])],
            "messages[0].content[0].image_url",
            id="broken-data-url",
        ),
        pytest.param(
            [user("x"), {"role": "tool", "tool_call_id": "nope", "content": "1"}],
            "messages[1].tool_call_id",
            id="unknown-call-id",
        ),
        pytest.param(
            [user([{"type": "input_audio", "input_audio": {}}])],
            "messages[0].content[0].type",
            id="audio",
        ),
    ],
)
def test_chat_request_to_gemini_rejects(messages: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        chat_request_to_gemini({"messages": messages})
    assert caught.value.param == param


USAGE = {
    "promptTokenCount": 20,
    "candidatesTokenCount": 8,
    "thoughtsTokenCount": 30,
    "cachedContentTokenCount": 4,
    "totalTokenCount": 58,
}


def gemini_response(parts: list[dict[str, Any]], finish_reason: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc123",
    }


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_gemini_finish_reasons(finish_reason: str, expected: str) -> None:
    out = gemini_response_to_chat(gemini_response([{"text": "hi"}], finish_reason), model="gem")
    assert ChatCompletion.model_validate(out).choices[0].finish_reason == expected


def test_gemini_response_with_thoughts_and_function_calls() -> None:
    resp = gemini_response(
        [
            {"text": "thinking about it", "thought": True},
            {"text": "Checking."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2ln",
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        ],
        "STOP",
    )
    completion = ChatCompletion.model_validate(gemini_response_to_chat(resp, model="my-gemini"))
    message = completion.choices[0].message
    assert message.content == "Checking."
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert len({c.id for c in message.tool_calls}) == 2
    assert all(c.id.startswith("call_") for c in message.tool_calls)
    assert completion.usage.prompt_tokens == 20
    assert completion.usage.completion_tokens == 38
    assert completion.usage.prompt_tokens_details.cached_tokens == 4
    assert completion.usage.completion_tokens_details.reasoning_tokens == 30
    assert completion.id == "chatcmpl-abc123"


def test_prompt_blocked_by_gemini_is_a_content_filter_finish() -> None:
    out = gemini_response_to_chat(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}},
        model="g",
    )
    completion = ChatCompletion.model_validate(out)
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""


def test_gemini_stream_becomes_chat_chunks() -> None:
    stream = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Let me"}]}}],
            "usageMetadata": {"promptTokenCount": 20},
        },
        {"candidates": [{"content": {"role": "model", "parts": [{"text": " check."}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": USAGE,
        },
    ]
    translator = GeminiStreamToChat(
        model="my-gemini", include_usage=True, chunk_id="chatcmpl-g", created=3
    )
    chunks = [chunk for part in stream for chunk in translator.feed(part)] + translator.finish()
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    deltas = [c["choices"][0]["delta"] if c["choices"] else "usage" for c in chunks]
    assert deltas[:3] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Let me"},
        {"content": " check."},
    ]
    assert deltas[3]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[5]["usage"]["completion_tokens"] == 38
    assert len(chunks) == 6
    final = state.get_final_completion()
    assert final.choices[0].message.content == "Let me check."
    assert translator.usage.input_tokens == 20
    assert translator.finish() == []


def test_gemini_stream_error_and_missing_finish() -> None:
    translator = GeminiStreamToChat(model="g")
    chunks = translator.feed({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]})
    assert (
        translator.feed({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
        == []
    )
    assert translator.error == {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}
    assert translator.finish() == []
    assert len(chunks) == 2

    ended = GeminiStreamToChat(model="g")
    ended.feed({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]})
    assert [c["choices"][0]["finish_reason"] for c in ended.finish()] == ["stop"]
