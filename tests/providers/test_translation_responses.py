"""Responses API <-> chat completions: requests, responses, streams and stored history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from providers.translation import (
    ChatStreamToResponses,
    TranslationError,
    chat_response_to_responses,
    responses_output_to_chat_messages,
    responses_request_to_chat,
)

PNG_B64 = "iVBORw0KGgoAAAANSUhEUg=="
STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
FUNCTION_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


# -- Responses request -> chat request ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"model": "m", "input": "Hello", "instructions": "Be brief."},
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hello"},
                ]
            },
            id="string-input-and-instructions",
        ),
        pytest.param(
            {
                "model": "m",
                "input": [
                    {"role": "developer", "content": "Rules."},
                    {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
                    },
                    {"role": "user", "content": "Bye"},
                ],
            },
            {
                "messages": [
                    {"role": "system", "content": "Rules."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Bye"},
                ]
            },
            id="multi-turn-items",
        ),
        pytest.param(
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {
                                "type": "input_image",
                                "image_url": "https://x.test/cat.png",
                                "detail": "low",
                            },
                            {
                                "type": "input_image",
                                "image_url": f"data:image/png;base64,{PNG_B64}",
                                "detail": "auto",
                            },
                        ],
                    }
                ],
            },
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://x.test/cat.png", "detail": "low"},
                            },
                            {
                                "type": "image_url",
                                "image_url": {
                                    "url": f"data:image/png;base64,{PNG_B64}",
                                    "detail": "auto",
                                },
                            },
                        ],
                    }
                ]
            },
            id="images",
        ),
        pytest.param(
            {
                "model": "m",
                "input": "x",
                "max_output_tokens": 300,
                "temperature": 0.3,
                "top_p": 0.8,
                "stream": True,
                "user": "u1",
                "parallel_tool_calls": False,  # left out: upstreams refuse it without tools
            },
            {
                "max_tokens": 300,
                "temperature": 0.3,
                "top_p": 0.8,
                "stream": True,
                "stream_options": {"include_usage": True},
                "user": "u1",
            },
            id="settings",
        ),
        pytest.param(
            {
                "model": "m",
                "input": "x",
                "tools": [FUNCTION_TOOL, {**FUNCTION_TOOL, "name": "other", "strict": True}],
                "tool_choice": "required",
            },
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "parameters": FUNCTION_TOOL["parameters"],
                            "description": "Weather for a city",
                        },
                    },
                    {
                        "type": "function",
                        "function": {
                            "name": "other",
                            "parameters": FUNCTION_TOOL["parameters"],
                            "description": "Weather for a city",
                            "strict": True,
                        },
                    },
                ],
                "tool_choice": "required",
            },
            id="function-tools",
        ),
        pytest.param(
            {
                "model": "m",
                "input": "x",
                "tools": [FUNCTION_TOOL],
                "tool_choice": {"type": "function", "name": "get_weather"},
            },
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            id="named-tool-choice",
        ),
        pytest.param(
            {
                "model": "m",
                "input": "x",
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "answer",
                        "schema": {"type": "object"},
                        "strict": True,
                    }
                },
                "reasoning": {"effort": "low"},
            },
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
                },
                "reasoning_effort": "low",
            },
            id="structured-output-and-effort",
        ),
    ],
)
def test_responses_request_to_chat(body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = responses_request_to_chat(body)
    assert out["model"] == "m"
    for key, value in expected.items():
        assert out[key] == value, key
    if not body.get("stream"):
        assert "stream" not in out


def test_function_calls_and_outputs_become_tool_turns() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xxx"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "21C"},
                    {"type": "input_image", "image_url": "https://x.test/rome.png"},
                ],
            },
        ],
    }
    assert responses_request_to_chat(body)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
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
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/rome.png"}}],
        },
    ]


def test_history_goes_between_instructions_and_new_input() -> None:
    history = [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Hi Ann."},
    ]
    out = responses_request_to_chat(
        {
            "model": "m",
            "instructions": "Be nice.",
            "input": "What is my name?",
            "previous_response_id": "resp_1",
        },
        history=history,
    )
    assert out["messages"] == [
        {"role": "system", "content": "Be nice."},
        *history,
        {"role": "user", "content": "What is my name?"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_image", "image_url": "data:image/png;base64,!!"}
                        ],
                    }
                ],
            },
            "input[0].content[0].image_url",
            id="broken-data-url",
        ),
        pytest.param(
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}
                ],
            },
            "input[0].content[0].image_url",
            id="image-by-file-id",
        ),
        pytest.param(
            {"model": "m", "input": [{"type": "item_reference", "id": "x"}]},
            "input[0].type",
            id="item-reference",
        ),
        pytest.param({"model": "m"}, "input", id="no-input"),
        pytest.param(
            {"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}},
            "tool_choice",
            id="hosted-tool-choice",
        ),
    ],
)
def test_responses_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as caught:
        responses_request_to_chat(body)
    assert caught.value.param == param


# -- chat response -> Response ---------------------------------------------------------


def chat_completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
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
            "prompt_tokens": 40,
            "completion_tokens": 12,
            "total_tokens": 52,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }


REQUEST = {
    "model": "my-model",
    "input": "Weather?",
    "instructions": "Be brief.",
    "tools": [FUNCTION_TOOL],
    "max_output_tokens": 500,
    "previous_response_id": "resp_prev",
    "store": True,
}


def test_chat_response_becomes_a_response_object() -> None:
    resp = chat_completion(
        {
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        "tool_calls",
    )
    out = chat_response_to_responses(
        resp, response_id="resp_abc", model="my-model", request_body=REQUEST
    )
    response = Response.model_validate(out)
    assert response.id == "resp_abc"
    assert response.status == "completed"
    assert response.incomplete_details is None
    assert response.output_text == "Checking."
    assert [item.type for item in response.output] == ["message", "function_call"]
    call = response.output[1]
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert response.output[0].id != call.id
    assert response.usage.input_tokens == 40
    assert response.usage.input_tokens_details.cached_tokens == 8
    assert response.usage.output_tokens_details.reasoning_tokens == 4
    assert response.usage.total_tokens == 52
    assert response.instructions == "Be brief."
    assert response.max_output_tokens == 500
    assert response.previous_response_id == "resp_prev"
    assert response.tools[0].name == "get_weather"
    assert response.created_at == 1700000000


@pytest.mark.parametrize(
    ("finish_reason", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_finish_reasons_as_response_status(
    finish_reason: str, status: str, reason: str | None
) -> None:
    out = chat_response_to_responses(
        chat_completion({"content": "Hi"}, finish_reason),
        response_id="resp_1",
        model="m",
        request_body={"input": "x"},
    )
    response = Response.model_validate(out)
    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == reason


# -- chat stream -> Responses stream ------------------------------------------------------


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
    chat_chunk(tool_delta(1, id="call_b", name="get_time", arguments='{"tz":"CET"}')),
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


def run_stream(
    chunks: list[dict[str, Any]], request_body: dict[str, Any] = REQUEST
) -> tuple[ChatStreamToResponses, list[dict[str, Any]]]:
    translator = ChatStreamToResponses(
        response_id="resp_s", model="my-model", request_body=request_body, created_at=5
    )
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    return translator, events + translator.finish()


def replay_with_sdk(events: list[dict[str, Any]]) -> Any:
    """Run the events through the OpenAI SDK's own stream accumulator, which checks order and ids."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(STREAM_EVENT.validate_python(event))
    return state._completed_response


def test_chat_stream_becomes_responses_events() -> None:
    translator, events = run_stream(CHAT_STREAM)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    summary = [(e["type"], e.get("output_index")) for e in events]
    assert summary == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[6]["text"] == "Checking both."
    assert events[12]["arguments"] == '{"city":"Paris"}'

    final = replay_with_sdk(events)
    assert final.output_text == "Checking both."
    assert [(o.type, getattr(o, "call_id", None)) for o in final.output] == [
        ("message", None),
        ("function_call", "call_a"),
        ("function_call", "call_b"),
    ]
    assert final.usage.input_tokens == 50
    assert final.usage.output_tokens == 20

    stored = Response.model_validate(translator.response)
    assert stored.status == "completed"
    assert stored.output[2].arguments == '{"tz":"CET"}'
    assert stored.previous_response_id == "resp_prev"


def test_stream_cut_by_max_tokens_ends_incomplete() -> None:
    translator, events = run_stream(
        [chat_chunk({"content": "Once upon"}), chat_chunk({}, "length")]
    )
    assert events[-1]["type"] == "response.incomplete"
    response = Response.model_validate(translator.response)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"
    replay_with_sdk(events)


def test_stream_failure_after_output_started() -> None:
    translator = ChatStreamToResponses(response_id="resp_f", model="m", request_body={"input": "x"})
    events = translator.feed(chat_chunk({"content": "Hel"})) + translator.fail("upstream died")
    types = [e["type"] for e in events]
    assert types[-2:] == ["error", "response.failed"]
    for event in events:
        STREAM_EVENT.validate_python(event)
    response = Response.model_validate(translator.response)
    assert response.status == "failed"
    assert response.error.message == "upstream died"
    assert response.output_text == "Hel"


def test_empty_stream_still_completes() -> None:
    translator, events = run_stream([], {"input": "x"})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]
    replay_with_sdk(events)
    assert translator.response["output"] == []


# -- stored response -> chat history -------------------------------------------------------


def test_stored_response_rebuilds_the_conversation() -> None:
    request = {
        "model": "m",
        "instructions": "Not carried over.",
        "input": [{"role": "user", "content": "Weather in Paris?"}],
    }
    resp = chat_completion(
        {
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        "tool_calls",
    )
    response = chat_response_to_responses(
        resp, response_id="resp_1", model="m", request_body=request
    )
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    history = responses_output_to_chat_messages(response, request_body=request, history=earlier)
    assert history == [
        *earlier,
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
    ]
    # The next turn answers the call and continues from that history.
    follow_up = responses_request_to_chat(
        {
            "model": "m",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "18C"}],
        },
        history=history,
    )
    assert follow_up["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert follow_up["messages"][:-1] == history
