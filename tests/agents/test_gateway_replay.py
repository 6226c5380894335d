"""The captured agent requests (tests/conformance/requests), replayed as they were sent
against the gateway on a real port, on an OpenAI-kind and an Anthropic-kind model:
each must be answered in the caller's dialect, parsed by the official SDK's types, and
charged exactly the fake upstream's usage at the model's price.

Also the small things the agents do around their turns: Codex's Responses WebSocket
probe, compressed request bodies, and what the gateway tells the caller about tools
the upstream cannot run. No agent binary is needed here.
"""

from __future__ import annotations

import gzip
import json
from math import ceil
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from anthropic.types import RawMessageStreamEvent
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from providers.translation import WARNING_HEADER, SSEParser
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, settled

from .conftest import Stack

pytestmark = pytest.mark.agents

CORPUS = Path(__file__).parent.parent / "conformance" / "requests"
RESPONSES_EVENT = TypeAdapter(ResponseStreamEvent)
MESSAGES_EVENT = TypeAdapter(RawMessageStreamEvent)
PROMPT_TOKENS, COMPLETION_TOKENS = 900, 21
MODELS = ["gpt-4o", "claude-sonnet"]
CODEX_TURN = "codex-0.171.0__tool-roundtrip__02-post-v1-responses.json"


def record(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / name).read_text())


def turns() -> list[Any]:
    """Every captured model call: a POST to /v1/responses or /v1/messages."""
    return [
        pytest.param(path.name, id=path.stem)
        for path in sorted(CORPUS.glob("*.json"))
        if path.name.endswith(("-post-v1-responses.json", "-post-v1-messages.json"))
    ]


def replay(
    stack: Stack, captured: dict[str, Any], *, model: str, encoding: str | None = None
) -> httpx.Response:
    """The request as the agent sent it, with this customer's key and `model`."""
    headers = {k: v for k, v in captured["headers"].items() if v != "<scrubbed>"}
    headers.pop("accept-encoding", None)
    key = stack.customer.key.secret
    if "authorization" in captured["headers"]:
        headers["authorization"] = f"Bearer {key}"
    else:
        headers["x-api-key"] = key
    body = json.dumps({**captured["body"], "model": model}).encode()
    if encoding == "zstd":
        body = zstandard.ZstdCompressor().compress(body)
    elif encoding == "gzip":
        body = gzip.compress(body)
    if encoding:
        headers["content-encoding"] = encoding
    url = stack.gateway.base_url + captured["path"]
    return httpx.post(url, params=captured["query"], headers=headers, content=body, timeout=30)


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    parser = SSEParser()
    frames = parser.feed(response.content) + parser.finish()
    return [json.loads(data) for _, data in frames if data != "[DONE]"]


def assert_answered_in_dialect(captured: dict[str, Any], response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response)
    if captured["path"].endswith("/responses"):
        for event in events:
            RESPONSES_EVENT.validate_python(event)
        assert events[-1]["type"] == "response.completed"
        final = Response.model_validate(events[-1]["response"])
        assert final.output_text
    else:
        for event in events:
            if event["type"] != "ping":  # a keep-alive the SDK skips
                MESSAGES_EVENT.validate_python(event)
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] == "message_stop"


def assert_charged_exactly(stack: Stack, calls: int) -> None:
    expected = ceil((PROMPT_TOKENS * INPUT_PRICE + COMPLETION_TOKENS * OUTPUT_PRICE) / 1_000_000)
    records = settled(stack.customer)
    assert [(r.status, r.input_tokens, r.output_tokens, r.charge) for r in records] == [
        (200, PROMPT_TOKENS, COMPLETION_TOKENS, expected)
    ] * calls


@pytest.fixture
def scripted(stack: Stack) -> Stack:
    for fake in (stack.openai, stack.anthropic):
        fake.set_reply(
            text="Replayed.", prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS
        )
    return stack


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", turns())
def test_captured_turn_is_answered_and_charged(scripted: Stack, name: str, model: str) -> None:
    captured = record(name)
    response = replay(scripted, captured, model=model)
    assert_answered_in_dialect(captured, response)
    assert_charged_exactly(scripted, 1)


@pytest.mark.parametrize("encoding", ["zstd", "gzip"])
def test_compressed_request_bodies_are_accepted(scripted: Stack, encoding: str) -> None:
    """Codex compresses its request bodies with zstd (enable_request_compression)."""
    captured = record(CODEX_TURN)
    response = replay(scripted, captured, model="gpt-4o", encoding=encoding)
    assert_answered_in_dialect(captured, response)
    assert_charged_exactly(scripted, 1)


def test_codex_on_an_openai_model_is_forwarded_as_written(scripted: Stack) -> None:
    """A Responses request on an upstream that speaks Responses is passed through: its
    built-in, namespace and custom tools, reasoning items and settings reach OpenAI."""
    captured = record("codex-0.171.0__long-conversation__04-post-v1-responses.json")
    response = replay(scripted, captured, model="gpt-4o")
    assert response.status_code == 200
    upstream = scripted.openai.last_request
    assert upstream.path == "/v1/responses"
    sent = {k: v for k, v in upstream.json.items() if k != "model"}
    assert sent == {k: v for k, v in captured["body"].items() if k != "model"}
    assert upstream.json["model"] == "gpt-4o"


def test_tools_the_upstream_cannot_run_are_named_in_a_header(scripted: Stack) -> None:
    """Codex offers web_search and tool_search; on an Anthropic upstream they are
    dropped, the turn goes ahead, and the answer says which were dropped."""
    captured = record("codex-0.171.0__long-conversation__04-post-v1-responses.json")
    response = replay(scripted, captured, model="claude-sonnet")
    assert response.status_code == 200
    assert response.headers.get(WARNING_HEADER) == "tool_search (tools[8]), web_search (tools[9])"
    names = [tool["name"] for tool in scripted.anthropic.last_request.json["tools"]]
    assert "apply_patch" in names and "exec_command" in names


def test_codex_websocket_probe_gets_426_so_codex_falls_back_at_once(scripted: Stack) -> None:
    """Codex's built-in provider first asks for a Responses WebSocket. 426 makes it use
    HTTP at once; 404 or 405 cost it seven retries, and 400 ends the session."""
    captured = record("codex-0.171.0__openai-base-url-first-turn__01-get-v1-responses.json")
    headers = {k: v for k, v in captured["headers"].items() if v != "<scrubbed>"}
    headers["authorization"] = f"Bearer {scripted.customer.key.secret}"
    response = httpx.get(scripted.gateway.base_url + captured["path"], headers=headers)
    assert response.status_code == 426


@pytest.mark.parametrize("path", ["/", "/v1", "/api/hello"])
def test_reachability_probes_answer_200(scripted: Stack, path: str) -> None:
    """Claude Code sends HEAD /api/hello before its first turn (the captured
    claude-code-*__01-head-api-hello.json); other clients probe / and /v1."""
    response = httpx.head(scripted.gateway.base_url + path)
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_claude_code_conversation_can_be_counted(scripted: Stack, model: str) -> None:
    """Claude Code counts a conversation's tokens (/context, auto-compaction) with the
    body of its turns, less the settings count_tokens does not take. Never charged."""
    captured = record("claude-code-2.1.332__long-conversation__04-post-v1-messages.json")
    count = {k: v for k, v in captured["body"].items() if k in ("messages", "system", "tools")}
    counting = {**captured, "path": "/v1/messages/count_tokens", "body": count}
    response = replay(scripted, counting, model=model)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["input_tokens"] > 0
    assert [r.charge for r in settled(scripted.customer)] in ([], [0])
