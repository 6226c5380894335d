"""Every captured agent request, replayed through every dialect it can reach.

A Codex request (Responses) goes to chat (an OpenAI-kind upstream), to Anthropic
Messages and to Gemini; a Claude Code request (Messages) goes to chat and Gemini, and
stays Messages (with at most four cache breakpoints) for an Anthropic upstream; a
Gemini CLI or Qwen Code request (the Gemini API) goes to chat and Messages, and stays
as written for a Gemini upstream. Each
translation must be well formed for the upstream that receives it: required fields,
valid roles, every tool call answered by a result with its id, no tool types or
blocks the upstream would refuse. Then an answer from each kind of upstream (a text
and a call of one of the agent's own tools) comes back in the caller's dialect, whole
and streamed, parsed by the official SDK's types, with the upstream's usage intact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from google.genai import types as google
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletion
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from providers.translation import (
    ChatStreamToAnthropic,
    ChatStreamToResponses,
    TranslationNotes,
    Usage,
    anthropic_request_to_chat,
    anthropic_response_to_chat,
    chat_request_to_anthropic,
    chat_request_to_gemini,
    chat_response_to_anthropic,
    chat_response_to_responses,
    gemini_response_to_chat,
    limit_cache_breakpoints,
    normalize_chat_request,
    responses_request_to_chat,
)
from providers.translation.chat import ChunkFactory
from providers.translation.gemini_api.request_to_chat import gemini_request_to_chat
from providers.translation.gemini_api.response_from_chat import chat_response_to_gemini
from providers.translation.gemini_api.stream_from_chat import ChatStreamToGemini

CORPUS = Path(__file__).parent / "requests"
RESPONSES_EVENT = TypeAdapter(ResponseStreamEvent)
MESSAGES_EVENT = TypeAdapter(RawMessageStreamEvent)
CHAT_ROLES = {"system", "user", "assistant", "tool"}
PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 1234, 56, 1000


def captured() -> list[Any]:
    params = []
    for path in sorted(CORPUS.glob("*.json")):
        record = json.loads(path.read_text())
        if record["method"] == "POST" and isinstance(record["body"], dict):
            params.append(pytest.param(record, id=path.stem))
    return params


def dialect(record: dict[str, Any]) -> str:
    path = record["path"]
    if path.endswith((":generateContent", ":streamGenerateContent")):
        return "gemini"
    return next(d for d in ("responses", "messages", "chat/completions") if path.endswith(d))


def test_the_corpus_holds_enough_real_traffic() -> None:
    files = {path.name: json.loads(path.read_text()) for path in CORPUS.glob("*.json")}
    assert len(files) >= 30
    clients = {(f["client"], f["version"]) for f in files.values()}
    assert clients >= {
        ("codex", "0.171.0"), ("claude-code", "2.1.332"), ("gemini-cli", "0.61.0"),
        ("qwen-code", "0.24.4"),
    }  # fmt: skip
    for name, record in files.items():
        assert name.startswith(f"{record['client']}-{record['version']}__")
        assert "<scrubbed>" in json.dumps(record["headers"]) or record["method"] == "HEAD"


# -- well-formedness per upstream dialect --------------------------------------------------


def no_key(obj: Any, key: str) -> bool:
    return f'"{key}"' not in json.dumps(obj)


def check_chat(body: dict[str, Any]) -> None:
    """What an OpenAI-compatible upstream accepts."""
    messages = body["messages"]
    assert messages and all(m["role"] in CHAT_ROLES for m in messages)
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_calls, f"messages[{i}] answers no call"
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, f"messages[{i}] comes before every call was answered"
        for call in message.get("tool_calls") or []:
            assert call["type"] == "function" and call["function"]["name"]
            json.loads(call["function"]["arguments"])
            open_calls.add(call["id"])
        content = message.get("content")
        assert isinstance(content, str) or content is None or isinstance(content, list)
    assert not open_calls
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    assert all(tool["type"] == "function" for tool in body.get("tools") or [])
    assert all(
        tool["function"]["parameters"]["type"] == "object" for tool in body.get("tools") or []
    )
    assert len(names) == len(set(names))
    choice = body.get("tool_choice")
    assert choice is None or names, "tool_choice without tools"
    assert choice in (None, "auto", "none", "required") or choice["function"]["name"] in names
    assert "parallel_tool_calls" not in body or names
    if body.get("stream"):
        assert body["stream_options"]["include_usage"] is True
    assert len(body.get("user") or "") <= 64
    for key in ("cache_control", "encrypted_content", "signature", "thinking"):
        assert no_key(body, key)


def check_anthropic(body: dict[str, Any]) -> None:
    """What the Messages API accepts (without the mid-conversation-system beta)."""
    assert body["max_tokens"] >= 1 and body["model"]
    turns = body["messages"]
    assert turns[0]["role"] == "user"
    pending: set[str] = set()
    for i, turn in enumerate(turns):
        assert turn["role"] == ("user" if i % 2 == 0 else "assistant"), f"messages[{i}]"
        blocks = turn["content"]
        assert blocks if isinstance(blocks, list) else blocks.strip()
        results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        assert results == pending, f"messages[{i}] does not answer every tool_use"
        pending = {b["id"] for b in blocks if b["type"] == "tool_use"}
        for block in blocks:
            assert block["type"] in {"text", "image", "document", "tool_use", "tool_result"}
            assert block["type"] != "text" or block["text"]
    assert not pending
    for tool in body.get("tools") or []:
        assert tool["name"] and tool["input_schema"]["type"] == "object"
    cached = json.dumps(body).count('"cache_control"')
    assert cached <= 4


def check_gemini(body: dict[str, Any]) -> None:
    called: list[str] = []
    for content in body["contents"]:
        assert content["role"] in ("user", "model") and content["parts"]
        for part in content["parts"]:
            if "functionCall" in part:
                called.append(part["functionCall"]["name"])
            if "functionResponse" in part:
                assert part["functionResponse"]["name"] in called
    declared = [d["name"] for t in body.get("tools") or [] for d in t["functionDeclarations"]]
    assert len(declared) == len(set(declared))
    assert set(called) <= set(declared), "history calls a tool the request does not declare"
    assert no_key(body, "cache_control")


# -- requests: every reachable dialect -------------------------------------------------------


def to_chat(record: dict[str, Any], notes: TranslationNotes) -> dict[str, Any]:
    body = record["body"]
    kind = dialect(record)
    if kind == "responses":
        return responses_request_to_chat(body, notes=notes)
    if kind == "messages":
        return anthropic_request_to_chat(body, notes=notes)
    if kind == "gemini":
        return gemini_request_to_chat(body, stream=True, notes=notes)
    return normalize_chat_request(body, notes=notes)


@pytest.mark.parametrize("record", captured())
def test_captured_request_translates_for_every_upstream(record: dict[str, Any]) -> None:
    notes = TranslationNotes()
    chat = to_chat(record, notes)
    check_chat(chat)  # an OpenAI-kind upstream
    check_gemini(chat_request_to_gemini(chat))
    if dialect(record) == "messages":
        native = limit_cache_breakpoints(record["body"])
        assert json.dumps(native).count('"cache_control"') <= 4
    if dialect(record) == "gemini":
        check_gemini(record["body"])  # forwarded as written to a Gemini upstream
    check_anthropic(
        chat_request_to_anthropic(chat, upstream_model="claude", default_max_tokens=4096)
    )
    # Only built-in tools go, and the caller is told which.
    tools = record["body"].get("tools") or []
    builtin = [t for t in tools if t.get("type") not in (None, "function", "custom", "namespace")]
    if dialect(record) == "gemini":  # Google's own tools: {"googleSearch": {}}...
        builtin = [k for t in tools for k in t if k != "functionDeclarations"]
    assert len(notes.dropped_tools) == len(builtin)


# -- answers: every upstream kind, back into the caller's dialect ----------------------------


def agent_tool(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A tool of the agent's own to call, and its arguments (freeform ones for apply_patch)."""
    names = []
    for tool in record["body"].get("tools") or []:
        names += (
            [t.get("name") for t in tool.get("tools", [])]
            if tool.get("type") == "namespace"
            else [tool.get("name")]
        )
        names += [d["name"] for d in tool.get("functionDeclarations") or []]
    if "apply_patch" in names:
        return "apply_patch", {
            "input": "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
        }
    name = next(n for n in ("exec_command", "Bash", "run_shell_command") if n in names)
    return name, {"cmd": "echo hi"} if name == "exec_command" else {"command": "echo hi"}


def upstream_answers(name: str, arguments: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The same answer (text, then a call) as each kind of upstream gives it, as chat."""
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
    }
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    message = {"role": "assistant", "content": "Running it.", "tool_calls": [call]}
    yield "openai", {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "u",
                     "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}], "usage": usage}  # fmt: skip
    anthropic = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "u", "stop_reason": "tool_use",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Running it."},
                    {"type": "tool_use", "id": "toolu_1", "name": name, "input": arguments}],
        "usage": {"input_tokens": PROMPT_TOKENS - CACHED_TOKENS, "cache_read_input_tokens": CACHED_TOKENS,
                  "output_tokens": COMPLETION_TOKENS},
    }  # fmt: skip
    yield "anthropic", anthropic_response_to_chat(anthropic, model="u")
    gemini = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Running it."},
                       {"functionCall": {"name": name, "args": arguments}, "thoughtSignature": "sig"}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": COMPLETION_TOKENS,
                          "cachedContentTokenCount": CACHED_TOKENS},
    }  # fmt: skip
    yield "gemini", gemini_response_to_chat(gemini, model="u")


def chunks_of(completion: dict[str, Any]) -> list[dict[str, Any]]:
    factory = ChunkFactory(model="u", chunk_id="c", created=1)
    message = completion["choices"][0]["message"]
    chunks = [factory.role_chunk(), factory.text_chunk(message["content"])]
    for index, call in enumerate(message["tool_calls"]):
        arguments = call["function"]["arguments"]
        chunks.append(factory.tool_start_chunk(index, call["id"], call["function"]["name"]))
        chunks += [
            factory.tool_arguments_chunk(index, arguments[i : i + 7])
            for i in range(0, len(arguments), 7)
        ]
    chunks.append(factory.finish_chunk("tool_calls"))
    chunks.append(factory.usage_chunk(Usage.from_openai_chat(completion["usage"])))
    return chunks


@pytest.mark.parametrize("record", captured())
def test_upstream_answers_come_back_in_the_callers_dialect(record: dict[str, Any]) -> None:
    if dialect(record) == "chat/completions":
        pytest.skip("chat callers get the upstream's chat answer")
    name, arguments = agent_tool(record)
    body = record["body"]
    expected = Usage(PROMPT_TOKENS + 0, COMPLETION_TOKENS, cached_input_tokens=CACHED_TOKENS)
    for upstream, completion in upstream_answers(name, arguments):
        ChatCompletion.model_validate(completion)
        assert Usage.from_openai_chat(completion["usage"]) == expected, upstream
        if dialect(record) == "responses":
            check_responses_answer(body, completion, name, arguments)
        elif dialect(record) == "gemini":
            check_gemini_answer(completion, name, arguments)
        else:
            check_messages_answer(completion, name, arguments)


def check_responses_answer(
    body: dict[str, Any], completion: dict[str, Any], name: str, arguments: dict[str, Any]
) -> None:
    whole = chat_response_to_responses(
        completion, response_id="resp_1", model="m", request_body=body
    )
    stream = ChatStreamToResponses(response_id="resp_1", model="m", request_body=body)
    events = [e for chunk in chunks_of(completion) for e in stream.feed(chunk)] + stream.finish()
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(RESPONSES_EVENT.validate_python(event))
    for response in (whole, events[-1]["response"]):
        Response.model_validate(response)
        message, call = response["output"]
        assert message["content"][0]["text"] == "Running it."
        if name == "apply_patch":
            assert call["type"] == "custom_tool_call" and call["input"] == arguments["input"]
        else:
            assert call["type"] == "function_call" and json.loads(call["arguments"]) == arguments
        assert call["name"] == name
        assert response["usage"]["input_tokens"] == PROMPT_TOKENS
        assert response["usage"]["input_tokens_details"]["cached_tokens"] == CACHED_TOKENS
        assert response["usage"]["output_tokens"] == COMPLETION_TOKENS


def check_messages_answer(completion: dict[str, Any], name: str, arguments: dict[str, Any]) -> None:
    whole = chat_response_to_anthropic(completion, model="m")
    stream = ChatStreamToAnthropic(model="m")
    events = [e for chunk in chunks_of(completion) for e in stream.feed(chunk)] + stream.finish()
    snapshot, json_bufs = None, {}
    for event in events:
        snapshot = accumulate_event(
            event=MESSAGES_EVENT.validate_python(event),
            current_snapshot=snapshot,
            json_bufs=json_bufs,
        )
    assert snapshot is not None
    for message in (Message.model_validate(whole), Message.model_validate(snapshot.to_dict())):
        text, call = message.content
        assert text.type == "text" and text.text == "Running it."
        assert call.type == "tool_use" and call.name == name and call.input == arguments
        assert message.stop_reason == "tool_use"
        assert message.usage.output_tokens == COMPLETION_TOKENS
        assert message.usage.cache_read_input_tokens == CACHED_TOKENS
        assert message.usage.input_tokens == PROMPT_TOKENS - CACHED_TOKENS


def check_gemini_answer(completion: dict[str, Any], name: str, arguments: dict[str, Any]) -> None:
    whole = chat_response_to_gemini(completion, model="m")
    stream = ChatStreamToGemini(model="m")
    chunks = [c for chunk in chunks_of(completion) for c in stream.feed(chunk)] + stream.finish()
    parsed = [google.GenerateContentResponse.model_validate(c) for c in chunks]
    streamed = [p for c in parsed for p in c.candidates[0].content.parts]
    for answer, parts in ((google.GenerateContentResponse.model_validate(whole), None),
                          (parsed[-1], streamed)):  # fmt: skip
        parts = parts or answer.candidates[0].content.parts
        assert "".join(p.text or "" for p in parts) == "Running it."
        (call,) = [p.function_call for p in parts if p.function_call]
        assert call.name == name and call.args == arguments and call.id
        assert answer.usage_metadata.prompt_token_count == PROMPT_TOKENS
        assert answer.usage_metadata.cached_content_token_count == CACHED_TOKENS
        assert answer.usage_metadata.candidates_token_count == COMPLETION_TOKENS
