"""What coding agents send, carried across dialects: namespace, freeform and built-in
tools, system messages mid-conversation, reasoning, cache_control, and the
Responses-shaped bodies some clients post to /v1/chat/completions."""

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
    TranslationNotes,
    anthropic_request_to_chat,
    chat_request_to_anthropic,
    chat_request_to_gemini,
    chat_response_to_responses,
    limit_cache_breakpoints,
    normalize_chat_request,
    responses_request_to_chat,
)
from providers.translation.chat import ChunkFactory

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
SCHEMA = {"type": "object", "properties": {"cmd": {"type": "string"}}}
EXEC = {"type": "function", "name": "exec_command", "parameters": SCHEMA, "strict": False}
GRAMMAR = 'start: "*** Begin Patch" LF\n%import common.LF\n'
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files. This is a FREEFORM tool.",
    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents.",
    "tools": [
        {"type": "function", "name": "spawn_agent", "parameters": SCHEMA},
        {"type": "function", "name": "close_agent", "parameters": SCHEMA},
    ],
}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"


def responses(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "input": "Hi", **extra}


def chat_tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body.get("tools", [])]


# -- Responses tools -> chat ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "names", "dropped"),
    [
        pytest.param([EXEC, NAMESPACE], ["exec_command", "spawn_agent", "close_agent"], [], id="namespace"),
        pytest.param([EXEC, APPLY_PATCH], ["exec_command", "apply_patch"], [], id="custom"),
        pytest.param(
            [
                EXEC,
                {"type": "web_search", "external_web_access": False},
                {"type": "tool_search", "execution": "client", "parameters": SCHEMA},
                {"type": "image_generation"},
                {"type": "local_shell"},
                {"type": "file_search", "vector_store_ids": ["v"]},
                {"type": "computer_use_preview", "display_width": 1, "display_height": 1},
            ],
            ["exec_command"],
            [
                ("tools[1]", "web_search"),
                ("tools[2]", "tool_search"),
                ("tools[3]", "image_generation"),
                ("tools[4]", "local_shell"),
                ("tools[5]", "file_search"),
                ("tools[6]", "computer_use_preview"),
            ],
            id="built-ins-dropped",
        ),
    ],
)  # fmt: skip
def test_responses_tools_become_function_tools(
    tools: list[dict[str, Any]], names: list[str], dropped: list[tuple[str, str]]
) -> None:
    notes = TranslationNotes()
    out = responses_request_to_chat(responses(tools=tools, parallel_tool_calls=True), notes=notes)
    assert chat_tool_names(out) == names
    assert all(tool["type"] == "function" for tool in out["tools"])
    assert [(d.param, d.kind) for d in notes.dropped_tools] == dropped
    assert out["parallel_tool_calls"] is True


def test_dropped_tools_make_one_ascii_warning() -> None:
    notes = TranslationNotes()
    responses_request_to_chat(
        responses(tools=[{"type": "web_search"}, EXEC, {"type": "image_generation"}]), notes=notes
    )
    assert notes.warning() == "web_search (tools[0]), image_generation (tools[2])"
    assert TranslationNotes().warning() is None


def test_a_custom_tool_is_a_function_of_one_string_argument_with_its_grammar() -> None:
    out = responses_request_to_chat(responses(tools=[APPLY_PATCH]))
    function = out["tools"][0]["function"]
    assert function["description"] == APPLY_PATCH["description"]
    assert function["parameters"]["required"] == ["input"]
    argument = function["parameters"]["properties"]["input"]
    assert argument["type"] == "string"
    assert GRAMMAR in argument["description"]


@pytest.mark.parametrize(
    ("tools", "tool_choice", "expected"),
    [
        pytest.param([EXEC, APPLY_PATCH], {"type": "custom", "name": "apply_patch"},
                     {"type": "function", "function": {"name": "apply_patch"}}, id="force-custom"),
        pytest.param([NAMESPACE], {"type": "function", "name": "spawn_agent"},
                     {"type": "function", "function": {"name": "spawn_agent"}}, id="force-namespaced"),
        pytest.param([EXEC], {"type": "allowed_tools", "mode": "required", "tools": []}, "required",
                     id="allowed-tools"),
        pytest.param([{"type": "web_search"}], "auto", None, id="auto-without-tools-left-out"),
    ],
)  # fmt: skip
def test_responses_tool_choice(tools: list[Any], tool_choice: Any, expected: Any) -> None:
    out = responses_request_to_chat(responses(tools=tools, tool_choice=tool_choice))
    assert out.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("tools", "tool_choice", "named"),
    [
        pytest.param([EXEC, {"type": "web_search"}], {"type": "web_search"}, "web_search", id="forced-built-in"),
        pytest.param([{"type": "image_generation"}], {"type": "image_generation"}, "image_generation",
                     id="forced-only-built-in"),
        pytest.param([{"type": "web_search"}], "required", "none of the tools", id="required-none-left"),
    ],
)  # fmt: skip
def test_forcing_a_tool_the_model_cannot_run_is_refused(
    tools: list[Any], tool_choice: Any, named: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        responses_request_to_chat(responses(tools=tools, tool_choice=tool_choice))
    assert caught.value.param == "tool_choice"
    assert named in caught.value.message


# -- Responses conversation items -> chat ------------------------------------------------------


def test_codex_conversation_items_become_chat_messages() -> None:
    body = responses(
        instructions="Be Codex.",
        input=[
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Patch it."}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA..."},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": PATCH},
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Success."},
            {"type": "function_call", "call_id": "call_e", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
            {"type": "function_call_output", "call_id": "call_e", "output": "a.txt"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Mid."}]},
        ],
        tools=[EXEC, APPLY_PATCH],
    )  # fmt: skip
    messages = responses_request_to_chat(body)["messages"]
    assert [m["role"] for m in messages] == [
        "system", "system", "user", "assistant", "tool", "assistant", "tool", "system",
    ]  # fmt: skip
    assert messages[-1] == {"role": "system", "content": "Mid."}
    call = messages[3]["tool_calls"][0]
    assert call["id"] == "call_p" and call["function"]["name"] == "apply_patch"
    assert json.loads(call["function"]["arguments"]) == {"input": PATCH}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_p", "content": "Success."}
    assert "encrypted_content" not in json.dumps(messages)


# -- chat answers -> Responses, for freeform tools -------------------------------------------------


def chat_with_calls(*calls: tuple[str, str, str]) -> dict[str, Any]:
    tool_calls = [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
        for cid, name, arguments in calls
    ]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


@pytest.mark.parametrize(
    ("arguments", "expected_input"),
    [
        pytest.param(json.dumps({"input": PATCH}), PATCH, id="string-argument"),
        pytest.param("*** Begin Patch\n", "*** Begin Patch\n", id="model-wrote-raw-text"),
    ],
)
def test_a_freeform_call_comes_back_as_custom_tool_call(
    arguments: str, expected_input: str
) -> None:
    request = responses(tools=[EXEC, APPLY_PATCH])
    resp = chat_with_calls(("call_1", "apply_patch", arguments), ("call_2", "exec_command", "{}"))
    out = chat_response_to_responses(resp, response_id="resp_1", model="m", request_body=request)
    Response.model_validate(out)
    custom, function = out["output"]
    assert custom["type"] == "custom_tool_call"
    assert (custom["call_id"], custom["name"], custom["input"]) == (
        "call_1",
        "apply_patch",
        expected_input,
    )
    assert function["type"] == "function_call" and function["name"] == "exec_command"


def test_a_streamed_freeform_call_ends_with_its_whole_input() -> None:
    request = responses(tools=[APPLY_PATCH, EXEC], stream=True)
    stream = ChatStreamToResponses(response_id="resp_s", model="m", request_body=request)
    chunks = ChunkFactory(model="m", chunk_id="c", created=1)
    arguments = json.dumps({"input": PATCH})
    events = stream.feed(chunks.role_chunk())
    events += stream.feed(chunks.tool_start_chunk(0, "call_p", "apply_patch"))
    for piece in (arguments[:10], arguments[10:30], arguments[30:]):
        events += stream.feed(chunks.tool_arguments_chunk(0, piece))
    events += stream.feed(chunks.tool_start_chunk(1, "call_e", "exec_command", '{"cmd":"ls"}'))
    events += stream.feed(chunks.finish_chunk("tool_calls"))
    events += stream.finish()
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(STREAM_EVENT.validate_python(event))
    kinds = [event["type"] for event in events]
    assert "response.custom_tool_call_input.done" in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == PATCH
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["custom_tool_call", "function_call"]
    assert final["output"][0]["input"] == PATCH
    assert final["output"][1]["arguments"] == '{"cmd":"ls"}'


# -- Messages -> chat ------------------------------------------------------------------------


def messages(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    return body | extra


BASH = {"name": "Bash", "input_schema": SCHEMA, "cache_control": {"type": "ephemeral"}}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("Env: Linux.", "Env: Linux.", id="string"),
        pytest.param([{"type": "text", "text": "Env."}, {"type": "text", "text": "More."}], "Env.\n\nMore.", id="blocks"),
    ],
)  # fmt: skip
def test_a_system_message_mid_conversation_stays_in_place(content: Any, expected: str) -> None:
    body = messages(
        system="Be Claude.",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": content},
            {"role": "assistant", "content": "Hello"},
        ],
    )
    out = anthropic_request_to_chat(body)["messages"]
    assert [m["role"] for m in out] == ["system", "user", "system", "assistant"]
    assert out[2] == {"role": "system", "content": expected}


def test_claude_code_turn_drops_what_chat_cannot_carry() -> None:
    notes = TranslationNotes()
    body = messages(
        system=[{"type": "text", "text": "Be Claude.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "adaptive"},
        context_management={"edits": []},
        output_config={"effort": "medium"},
        metadata={"user_id": json.dumps({"device_id": "d" * 64, "session_id": "s" * 36})},
        tools=[BASH, WEB_SEARCH],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Run ls", "cache_control": {"type": "ephemeral"}}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "...", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt", "is_error": False,
                     "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
    )  # fmt: skip
    out = anthropic_request_to_chat(body, notes=notes)
    text = json.dumps(out)
    for gone in ("cache_control", "signature", "srvtoolu_1", "thinking", "context_management"):
        assert gone not in text
    assert chat_tool_names(out) == ["Bash"]
    assert [(d.param, d.kind, d.name) for d in notes.dropped_tools] == [
        ("tools[1]", "web_search_20250305", "web_search")
    ]
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool"]
    assert out["messages"][2]["tool_calls"][0]["id"] == "toolu_1"
    assert len(out["user"]) == 64  # OpenAI's limit; Claude Code's user_id is longer


@pytest.mark.parametrize(
    ("tools", "tool_choice", "expected"),
    [
        pytest.param([WEB_SEARCH], {"type": "auto"}, None, id="auto-without-tools-left-out"),
        pytest.param([BASH, WEB_SEARCH], {"type": "tool", "name": "Bash"},
                     {"type": "function", "function": {"name": "Bash"}}, id="force-client-tool"),
    ],
)  # fmt: skip
def test_messages_tool_choice(tools: list[Any], tool_choice: Any, expected: Any) -> None:
    out = anthropic_request_to_chat(messages(tools=tools, tool_choice=tool_choice))
    assert out.get("tool_choice") == expected


@pytest.mark.parametrize(
    "tool_choice",
    [{"type": "tool", "name": "web_search"}, {"type": "any"}],
    ids=["forced-server-tool", "any-with-none-left"],
)
def test_messages_forcing_a_server_tool_is_refused(tool_choice: dict[str, Any]) -> None:
    with pytest.raises(TranslationError) as caught:
        anthropic_request_to_chat(messages(tools=[WEB_SEARCH], tool_choice=tool_choice))
    assert caught.value.param == "tool_choice"


def test_a_short_user_id_is_kept_and_a_text_document_is_text() -> None:
    body = messages(
        metadata={"user_id": "u-1"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Doc."}}
                ],
            }
        ],
    )  # fmt: skip
    out = anthropic_request_to_chat(body)
    assert out["user"] == "u-1"
    assert out["messages"] == [{"role": "user", "content": "Doc."}]


# -- chat -> Messages and Gemini: system prompt, cache breakpoints -----------------------------------


def cached(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


def test_at_most_four_cache_breakpoints_reach_anthropic_the_last_ones() -> None:
    body = {
        "messages": [
            {"role": "system", "content": [cached("s1"), cached("s2")]},
            {"role": "user", "content": [cached("u1"), cached("u2")]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [cached("u3"), {"type": "text", "text": "u4"}]},
        ]
    }
    out = chat_request_to_anthropic(body, upstream_model="claude", default_max_tokens=100)
    marked = [
        block["text"]
        for block in [*out["system"], *(b for m in out["messages"] for b in m["content"])]
        if "cache_control" in block
    ]
    assert marked == ["s2", "u1", "u2", "u3"]


def test_cache_breakpoints_within_the_limit_are_left_alone() -> None:
    body = {
        "tools": [{"name": "t", "input_schema": SCHEMA, "cache_control": {"type": "ephemeral"}}],
        "system": [cached("s")],
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": [cached("r")]}]}
        ],
    }  # fmt: skip
    assert limit_cache_breakpoints(body) is body
    trimmed = limit_cache_breakpoints(body, limit=1)
    assert (
        "cache_control" not in trimmed["tools"][0] and "cache_control" not in trimmed["system"][0]
    )
    assert trimmed["messages"][0]["content"][0]["content"][0]["cache_control"] == {
        "type": "ephemeral"
    }
    assert body["tools"][0]["cache_control"]  # the caller's body is not changed


def test_system_messages_mid_conversation_merge_where_the_target_has_one_system_prompt() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "First."},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Second."},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    anthropic = chat_request_to_anthropic(body, upstream_model="c", default_max_tokens=10)
    assert [b["text"] for b in anthropic["system"]] == ["First.", "Second."]
    assert [m["role"] for m in anthropic["messages"]] == ["user", "assistant"]
    gemini = chat_request_to_gemini(body)
    assert gemini["systemInstruction"] == {"parts": [{"text": "First."}, {"text": "Second."}]}
    assert [c["role"] for c in gemini["contents"]] == ["user", "model"]


# -- Responses-shaped bodies and stream_options on /v1/chat/completions ------------------------------


def test_cursor_responses_shaped_chat_body_is_normalised() -> None:
    notes = TranslationNotes()
    body = {
        "model": "gpt-5",
        "instructions": "Be Cursor.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "tools": [EXEC, {"type": "web_search"}],
        "stream": True,
        "stream_options": {"include_obfuscation": False},
        "reasoning": {"effort": "low"},
    }
    out = normalize_chat_request(body, notes=notes)
    assert out["messages"] == [
        {"role": "system", "content": "Be Cursor."},
        {"role": "user", "content": "Hi"},
    ]
    assert out["tools"][0]["function"]["name"] == "exec_command"
    assert out["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    assert out["reasoning_effort"] == "low"
    assert [d.kind for d in notes.dropped_tools] == ["web_search"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": True}},
            {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            id="stream-options-without-stream",
        ),
        pytest.param(
            {"model": "m", "messages": [], "tools": [EXEC]},
            {"model": "m", "messages": [], "tools": [{"type": "function", "function": {
                "name": "exec_command", "parameters": SCHEMA, "strict": False}}]},
            id="flat-tools",
        ),
    ],
)  # fmt: skip
def test_chat_bodies_are_normalised(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalize_chat_request(body) == expected


def test_a_well_formed_chat_body_is_returned_as_it_is() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    assert normalize_chat_request(body) is body
