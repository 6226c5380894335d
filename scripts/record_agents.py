"""Record what real coding agents send, for the conformance corpus (tests/conformance/).

Starts a small scripted model server on 127.0.0.1 that speaks every dialect the agents
use (OpenAI Responses and chat completions, Anthropic Messages, the Gemini API), points
Codex CLI, Claude Code, Gemini CLI and Qwen Code at it with their documented settings, drives a few scenarios (a first
turn, a tool round trip, a longer conversation with several tools, a resumed
session) and writes every request it received, secrets scrubbed, as one JSON file per
request: `<client>-<version>__<scenario>__<nn>-<method>-<path>.json`.

The server answers plausibly so the agents carry on: when a request offers the
agent's shell tool and the scenario wants more tool calls, it asks for one (Codex:
`exec_command`/`shell`, and `apply_patch` as a freeform custom tool; Claude Code:
`Bash`; Gemini CLI and Qwen Code: `run_shell_command`), with a reasoning item /
thinking block / thought signature so the agents send those back; otherwise it
answers with text.

    .venv/bin/python scripts/record_agents.py --agents-dir ~/.cache/nexai/agents \
        --out tests/conformance/requests

The agents are installed with `make agents` (npm, outside the repository).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SCRUBBED = "<scrubbed>"
_SECRET_HEADERS = {
    "authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "chatgpt-account-id",
    "x-gemini-api-privileged-user-id",
}  # fmt: skip
_VOLATILE_HEADERS = {"content-length", "host", "connection"}
RECORD_KEY = "sk-record-not-a-secret"
SHELL_TOOLS = ("exec_command", "shell_command", "shell", "Bash", "local_shell", "run_shell_command")


# =============================================================================
# Requests: decoding and scrubbing
# =============================================================================


def decode_body(raw: bytes, encoding: str) -> bytes:
    """The body as the agent meant it: Codex compresses with zstd, others may gzip."""
    encoding = encoding.strip().lower()
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    return raw


def scrub_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in sorted(headers.items()):
        name = name.lower()
        if name in _VOLATILE_HEADERS:
            continue
        out[name] = SCRUBBED if name in _SECRET_HEADERS else value
    return out


def scrub_text(text: str) -> str:
    """Values that could identify the machine or a session; never a real key here,
    but the pattern is kept so a re-record against a real key stays safe."""
    text = re.sub(r"\bsk-[A-Za-z0-9_-]{12,}", "sk-" + SCRUBBED, text)
    text = re.sub(r"/tmp/record-[a-z-]+-[a-z0-9_]+/home", "/home/user", text)
    text = re.sub(r"/tmp/record-[a-z-]+-[a-z0-9_]+/work", "/home/user/project", text)
    return text.replace(str(Path.home()), "/home/user")


# =============================================================================
# The scripted model
# =============================================================================


@dataclass
class Plan:
    """What the model does in the current scenario."""

    shell_calls: int = 0  # how many shell tool calls before the final answer
    patch_calls: int = 0  # then how many apply_patch calls (Codex's custom tool)
    reasoning: bool = True  # a reasoning item / thinking block before tool calls


@dataclass
class Recorded:
    scenario: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    content_encoding: str | None
    body: Any


@dataclass
class Recorder:
    plan: Plan = field(default_factory=Plan)
    scenario: str = ""
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, item: Recorded) -> None:
        with self.lock:
            self.requests.append(item)


def tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        for declaration in tool.get("functionDeclarations") or []:  # the Gemini API
            names.append(declaration.get("name") or "")
        if tool.get("type") == "namespace":
            names += [t.get("name") for t in tool.get("tools") or [] if isinstance(t, dict)]
        names.append(tool.get("name") or (tool.get("function") or {}).get("name") or "")
    return [n for n in names if n]


def _is_user_text(item: dict[str, Any]) -> bool:
    if item.get("role") != "user":
        return False
    content = item.get("content")
    if isinstance(content, str):
        return True
    return any(
        isinstance(b, dict) and b.get("type") in ("text", "input_text") for b in content or []
    )


def tool_results(body: dict[str, Any]) -> int:
    """How many tool results followed the user's last words, in any dialect: a
    resumed session starts counting again."""
    count = 0
    for item in body.get("input") or body.get("messages") or body.get("contents") or []:
        if not isinstance(item, dict):
            continue
        if "parts" in item:  # the Gemini API
            parts = [p for p in item["parts"] if isinstance(p, dict)]
            answers = sum(1 for p in parts if "functionResponse" in p)
            if (
                item.get("role", "user") == "user"
                and not answers
                and any("text" in p for p in parts)
            ):
                count = 0
            count += answers
            continue
        if _is_user_text(item) and not any(
            isinstance(b, dict) and b.get("type") == "tool_result"
            for b in item.get("content") or []
            if not isinstance(item.get("content"), str)
        ):
            count = 0
        elif item.get("type", "").endswith("_call_output") or item.get("role") == "tool":
            count += 1
        elif isinstance(item.get("content"), list):
            count += sum(
                1 for b in item["content"] if isinstance(b, dict) and b.get("type") == "tool_result"
            )
    return count


def next_action(body: dict[str, Any], plan: Plan) -> tuple[str, str, Any] | None:
    """(kind, tool name, arguments) of the tool call to make now, or None for text."""
    names = tool_names(body)
    done = tool_results(body)
    shell = next((n for n in SHELL_TOOLS if n in names), None)
    if shell and done < plan.shell_calls:
        command = f"echo hi-{done + 1}"
        if shell == "exec_command":
            return "function", shell, {"cmd": command}
        if shell == "shell":
            return "function", shell, {"command": ["bash", "-lc", command]}
        if shell in ("Bash", "run_shell_command"):
            return "function", shell, {"command": command, "description": "Print a greeting"}
        return "function", shell, {"command": command}
    if "apply_patch" in names and done < plan.shell_calls + plan.patch_calls:
        patch = (
            "*** Begin Patch\n*** Add File: hello.txt\n+hello from the recorder\n*** End Patch\n"
        )
        return "custom", "apply_patch", patch
    return None


def answer_text(done: int) -> str:
    return f"All done: {done} tool call(s) ran." if done else "Hello from the recording server."


# -- OpenAI Responses --------------------------------------------------------------


def _sse(event: dict[str, Any], *, named: bool = True) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    head = f"event: {event['type']}\n" if named and "type" in event else ""
    return f"{head}data: {data}\n\n".encode()


def responses_answer(body: dict[str, Any], plan: Plan) -> tuple[dict[str, Any], list[bytes]]:
    rid = "resp_" + uuid.uuid4().hex
    action = next_action(body, plan)
    output: list[dict[str, Any]] = []
    if action and plan.reasoning:
        output.append(
            {
                "id": "rs_" + uuid.uuid4().hex,
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Run the command the user asked."}],
                "encrypted_content": "gAAAAB" + base64.b64encode(os.urandom(48)).decode(),
            }
        )
    if action is None:
        text = answer_text(tool_results(body))
        output.append(
            {
                "id": "msg_" + uuid.uuid4().hex,
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    elif action[0] == "custom":
        output.append(
            {
                "id": "ctc_" + uuid.uuid4().hex,
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": "call_" + uuid.uuid4().hex[:24],
                "name": action[1],
                "input": action[2],
            }
        )
    else:
        output.append(
            {
                "id": "fc_" + uuid.uuid4().hex,
                "type": "function_call",
                "status": "completed",
                "call_id": "call_" + uuid.uuid4().hex[:24],
                "name": action[1],
                "arguments": json.dumps(action[2]),
            }
        )
    usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 4 if action else 0},
        "total_tokens": 132,
    }
    final = {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model"),
        "output": output,
        "usage": usage,
    }
    seq = iter(range(10_000))
    events = [
        {"type": "response.created", "response": {**final, "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "response": {**final, "status": "in_progress"}},
    ]
    for index, item in enumerate(output):
        opened = {**item, "status": "in_progress"}
        if item["type"] == "message":
            opened["content"] = []
        events.append({"type": "response.output_item.added", "output_index": index, "item": opened})
        if item["type"] == "message":
            text = item["content"][0]["text"]
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append({"type": "response.content_part.added", **ids, "part": part})
            events.append({"type": "response.output_text.delta", **ids, "delta": text})
            events.append({"type": "response.output_text.done", **ids, "text": text})
            events.append(
                {"type": "response.content_part.done", **ids, "part": {**part, "text": text}}
            )
        elif item["type"] == "function_call":
            ids = {"item_id": item["id"], "output_index": index}
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    **ids,
                    "delta": item["arguments"],
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **ids,
                    "arguments": item["arguments"],
                }
            )
        elif item["type"] == "custom_tool_call":
            ids = {"item_id": item["id"], "output_index": index}
            events.append(
                {"type": "response.custom_tool_call_input.delta", **ids, "delta": item["input"]}
            )
            events.append(
                {"type": "response.custom_tool_call_input.done", **ids, "input": item["input"]}
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": final})
    frames = [_sse({**e, "sequence_number": next(seq)}) for e in events]
    return final, frames


# -- OpenAI chat completions ---------------------------------------------------------


def chat_answer(body: dict[str, Any], plan: Plan) -> tuple[dict[str, Any], list[bytes]]:
    action = next_action(body, plan)
    cid = "chatcmpl-" + uuid.uuid4().hex
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if action is None:
        message["content"] = answer_text(tool_results(body))
        finish = "stop"
    else:
        arguments = action[2] if action[0] == "function" else {"input": action[2]}
        message["tool_calls"] = [
            {
                "id": "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {"name": action[1], "arguments": json.dumps(arguments)},
            }
        ]
        finish = "tool_calls"
    usage = {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132}
    whole = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
    base = {k: whole[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    delta = {k: v for k, v in message.items() if v is not None}
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": 0, **delta["tool_calls"][0]}]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        {**base, "choices": [], "usage": usage},
    ]
    frames = [_sse(c, named=False) for c in chunks] + [b"data: [DONE]\n\n"]
    return whole, frames


# -- Anthropic Messages ----------------------------------------------------------------


def messages_answer(body: dict[str, Any], plan: Plan) -> tuple[dict[str, Any], list[bytes]]:
    action = next_action(body, plan)
    content: list[dict[str, Any]] = []
    thinking_on = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in (
        "enabled",
        "adaptive",
    )
    if action and plan.reasoning and thinking_on:
        signature = base64.b64encode(os.urandom(64)).decode()
        content.append(
            {
                "type": "thinking",
                "thinking": "Run the command the user asked.",
                "signature": signature,
            }
        )
    if action is None:
        content.append({"type": "text", "text": answer_text(tool_results(body))})
        stop = "end_turn"
    else:
        arguments = action[2] if action[0] == "function" else {"input": action[2]}
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": action[1],
                "input": arguments,
            }
        )
        stop = "tool_use"
    usage = {
        "input_tokens": 120,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    message = {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                **message,
                "content": [],
                "stop_reason": None,
                "usage": {**usage, "output_tokens": 1},
            },
        }
    ]
    for index, block in enumerate(content):
        if block["type"] == "text":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block["text"]},
                }
            )
        elif block["type"] == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            )
        else:
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                }
            )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                }
            )
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 12},
        }
    )
    events.append({"type": "message_stop"})
    return message, [_sse(e) for e in events]


# -- the Gemini API ----------------------------------------------------------------------


def gemini_answer(body: dict[str, Any], plan: Plan) -> tuple[dict[str, Any], list[bytes]]:
    """A GenerateContentResponse, and the same as streamGenerateContent?alt=sse events:
    the text in two chunks, or a function call whole (signed, as Gemini 3 signs it)."""
    action = next_action(body, plan)
    usage = {"promptTokenCount": 120, "candidatesTokenCount": 12, "totalTokenCount": 132}
    if action is None:
        text = answer_text(tool_results(body))
        pieces = [[{"text": text[: len(text) // 2]}], [{"text": text[len(text) // 2 :]}]]
    else:
        signature = base64.b64encode(os.urandom(48)).decode()
        call = {"functionCall": {"name": action[1], "args": action[2]}}
        pieces = [[{**call, "thoughtSignature": signature}]]
    rid = uuid.uuid4().hex[:22]

    def chunk(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        meta = usage if last else {"promptTokenCount": 120, "totalTokenCount": 120}
        return {
            "candidates": [candidate],
            "usageMetadata": meta,
            "modelVersion": "m",
            "responseId": rid,
        }

    chunks = [chunk(parts, i == len(pieces) - 1) for i, parts in enumerate(pieces)]
    whole = chunk([p for parts in pieces for p in parts], True)
    frames = [f"data: {json.dumps(c, separators=(',', ':'))}\r\n\r\n".encode() for c in chunks]
    return whole, frames


# =============================================================================
# The HTTP server
# =============================================================================


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read(self) -> tuple[bytes, str | None]:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(parts)
        else:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        encoding = self.headers.get("content-encoding")
        return (decode_body(raw, encoding) if encoding else raw), encoding

    def _handle(self) -> None:
        split = urlsplit(self.path)
        raw, encoding = self._read() if self.command not in ("GET", "HEAD") else (b"", None)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorder = self.server.recorder
        recorder.record(
            Recorded(
                scenario=recorder.scenario,
                method=self.command,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers=scrub_headers(dict(self.headers.items())),
                content_encoding=encoding,
                body=body,
            )
        )
        self._answer(split.path, body if isinstance(body, dict) else {}, recorder.plan)

    def _answer(self, path: str, body: dict[str, Any], plan: Plan) -> None:
        path = path.rstrip("/")
        if self.headers.get("upgrade", "").lower() == "websocket":
            # Codex's built-in provider tries a Responses WebSocket first. 426 makes it
            # fall back to HTTP at once; 404 costs seven retries, 400 ends the session.
            return self._json(
                {"error": {"message": "WebSocket is not supported"}},
                status=int(os.environ.get("WS_STATUS", "426")),
            )
        if self.command == "HEAD" or path in ("", "/v1"):
            return self._json({})
        if path.endswith("/models"):
            return self._json(
                {"object": "list", "data": [{"id": "m", "object": "model"}], "models": []}
            )
        if path.endswith("/count_tokens"):
            return self._json({"input_tokens": 120})
        if path.endswith(":countTokens"):
            return self._json({"totalTokens": 120})
        if path.endswith((":generateContent", ":streamGenerateContent")):
            final, frames = gemini_answer(body, plan)
            if path.endswith(":streamGenerateContent"):
                return self._stream(frames)
            return self._json(final)
        if path.endswith("/responses/compact"):
            final, _ = responses_answer({"model": body.get("model")}, Plan())
            return self._json(
                {
                    "id": final["id"],
                    "object": "response.compaction",
                    "output": final["output"],
                    "usage": final["usage"],
                }
            )
        if path.endswith("/responses"):
            final, frames = responses_answer(body, plan)
        elif path.endswith("/chat/completions"):
            final, frames = chat_answer(body, plan)
        elif path.endswith("/messages"):
            final, frames = messages_answer(body, plan)
        else:
            return self._json({"error": {"message": f"no route {path}"}}, status=404)
        if body.get("stream"):
            return self._stream(frames)
        return self._json(final)

    def _json(self, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, frames: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("content-length", str(sum(len(f) for f in frames)))
        self.end_headers()
        for frame in frames:
            self.wfile.write(frame)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # agents drop connections they no longer need (Codex's WebSocket probe)


# =============================================================================
# Driving the agents
# =============================================================================


@dataclass
class Scenario:
    name: str
    prompt: str
    plan: Plan
    resume: bool = False  # continue the previous scenario's session


SCENARIOS = [
    Scenario("first-turn", "Say hello in one short sentence.", Plan()),
    Scenario(
        "tool-roundtrip",
        "Run the shell command `echo hi` and tell me what it printed.",
        Plan(shell_calls=1),
    ),
    Scenario(
        "long-conversation",
        "Run `echo hi-1` and `echo hi-2`, then create hello.txt, then summarise.",
        Plan(shell_calls=2, patch_calls=1),
    ),
    Scenario("resumed", "Now run `echo hi` once more.", Plan(shell_calls=1), resume=True),
]


@dataclass
class Variant:
    """One way of configuring an agent, as its documentation shows."""

    client: str  # "codex", "claude-code", "gemini-cli" or "qwen-code"
    name: str  # "" for the main configuration
    scenarios: tuple[str, ...]
    model: str = ""  # codex: the model in config.toml; claude: ANTHROPIC_MODEL
    openai_base_url: bool = False  # codex: the built-in provider with openai_base_url


VARIANTS = [
    Variant(
        "codex", "", ("first-turn", "tool-roundtrip", "long-conversation", "resumed"), "gpt-5.5"
    ),
    Variant("codex", "other-model", ("first-turn", "tool-roundtrip"), "claude-sonnet-4-5"),
    Variant("codex", "openai-base-url", ("first-turn", "tool-roundtrip"), "gpt-5.5", True),
    Variant("claude-code", "", ("first-turn", "tool-roundtrip", "long-conversation", "resumed")),
    Variant("claude-code", "openai-model", ("first-turn", "tool-roundtrip"), "gpt-5.5"),
    Variant(
        "gemini-cli",
        "",
        ("first-turn", "tool-roundtrip", "long-conversation", "resumed"),
        "gemini-2.5-pro",
    ),
    Variant("gemini-cli", "openai-model", ("first-turn", "tool-roundtrip"), "gpt-5.5"),
    Variant("qwen-code", "", ("first-turn", "tool-roundtrip"), "qwen3-coder-plus"),
]

BINARIES = {"codex": "codex", "claude-code": "claude", "gemini-cli": "gemini", "qwen-code": "qwen"}
# Gemini CLI and Qwen Code: the API-key sign-in, nothing sent anywhere else.
GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}

# Codex with a custom provider, as docs/api.md shows it.
CODEX_PROVIDER_CONFIG = """\
model = "{model}"
model_provider = "nexai"

[model_providers.nexai]
name = "nexai"
base_url = "{base_url}/v1"
env_key = "NEXAI_API_KEY"
wire_api = "responses"
"""

# Codex's built-in OpenAI provider pointed elsewhere (key in OPENAI_API_KEY).
CODEX_BASE_URL_CONFIG = """\
model = "{model}"
openai_base_url = "{base_url}/v1"
"""


def agent_env(home: Path, base_url: str, variant: Variant) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "ANTHROPIC", "CODEX", "CLAUDE"))
    }
    env.update(HOME=str(home), CODEX_HOME=str(home / ".codex"), NO_COLOR="1")
    if variant.client in ("gemini-cli", "qwen-code"):
        env = {k: v for k, v in env.items() if not k.startswith(("GEMINI", "GOOGLE", "QWEN"))}
        env.update(GOOGLE_GEMINI_BASE_URL=base_url, GEMINI_API_KEY=RECORD_KEY)
        folder = home / (".qwen" if variant.client == "qwen-code" else ".gemini")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
        if variant.client == "qwen-code":
            env["GEMINI_MODEL"] = variant.model
    elif variant.client == "codex":
        env["NEXAI_API_KEY" if not variant.openai_base_url else "OPENAI_API_KEY"] = RECORD_KEY
        template = CODEX_BASE_URL_CONFIG if variant.openai_base_url else CODEX_PROVIDER_CONFIG
        config = template.format(model=variant.model, base_url=base_url)
        (home / ".codex" / "config.toml").write_text(config)
    else:
        env["ANTHROPIC_BASE_URL"] = base_url
        env["ANTHROPIC_API_KEY"] = RECORD_KEY
        if variant.model:
            env["ANTHROPIC_MODEL"] = variant.model
    return env


def agent_command(binary: Path, variant: Variant, scenario: Scenario) -> list[str]:
    if variant.client in ("gemini-cli", "qwen-code"):
        allowed = ["--allowed-tools", "run_shell_command(echo)"]
        if variant.client == "qwen-code":
            command = [str(binary), "--auth-type", "gemini", "-p", scenario.prompt, *allowed]
            return [*command, "--continue"] if scenario.resume else command
        command = [
            str(binary),
            "-m",
            variant.model,
            "--skip-trust",
            "-p",
            scenario.prompt,
            *allowed,
        ]
        return [*command, "--resume", "latest"] if scenario.resume else command
    if variant.client == "codex":
        # workspace-write so apply_patch can create its file; echo runs in any sandbox.
        command = [str(binary), "exec", "--skip-git-repo-check", "--sandbox", "workspace-write"]
        if scenario.resume:
            command += ["resume", "--last"]
        return [*command, scenario.prompt]
    # -p refuses tools that need permission unless allowed; echo is harmless.
    command = [str(binary), "-p", scenario.prompt, "--allowedTools", "Bash(echo:*)"]
    return [*command, "--continue"] if scenario.resume else command


def version_of(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"\d+\.\d+\.\d+", out.stdout)
    return match.group() if match else "unknown"


def record(agents_dir: Path, out: Path, only: list[str]) -> int:
    recorder = Recorder()
    server = _Server(recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    bin_dir = agents_dir / "node_modules" / ".bin"
    written = 0
    scenarios = {s.name: s for s in SCENARIOS}
    for variant in VARIANTS:
        if only and variant.client not in only:
            continue
        binary = bin_dir / BINARIES[variant.client]
        prefix = f"{variant.client}-{version_of(binary)}"
        with tempfile.TemporaryDirectory(prefix=f"record-{variant.client}-") as tmp:
            home, workdir = Path(tmp) / "home", Path(tmp) / "work"
            (home / ".codex").mkdir(parents=True)
            workdir.mkdir()
            env = agent_env(home, base_url, variant)
            if variant.openai_base_url:
                # The built-in provider reads no key from the environment: log in with it.
                login = [str(binary), "login", "--with-api-key"]
                subprocess.run(
                    login,
                    input=RECORD_KEY,
                    text=True,
                    env=env,
                    check=True,
                    timeout=60,
                    capture_output=True,
                )
            for name in variant.scenarios:
                scenario = scenarios[name]
                recorder.plan = scenario.plan
                recorder.scenario = f"{variant.name}-{name}" if variant.name else name
                start = len(recorder.requests)
                subprocess.run(
                    agent_command(binary, variant, scenario),
                    cwd=workdir,
                    env=env,
                    timeout=300,
                    check=False,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                )
                written += write(recorder.requests[start:], out, prefix)
    server.shutdown()
    return written


def _file_name(prefix: str, n: int, item: Recorded) -> str:
    path = re.sub(r"[^a-z0-9]+", "-", item.path.lower()).strip("-") or "root"
    return f"{prefix}__{item.scenario}__{n:02d}-{item.method.lower()}-{path}.json"


def write(items: list[Recorded], out: Path, prefix: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(items, 1):
        data = {
            "client": prefix.rsplit("-", 1)[0],
            "version": prefix.rsplit("-", 1)[1],
            "scenario": item.scenario,
            "method": item.method,
            "path": item.path,
            "query": item.query,
            "headers": item.headers,
            "content_encoding": item.content_encoding,
            "body": item.body,
        }
        text = scrub_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False))
        (out / _file_name(prefix, n, item)).write_text(text + "\n")
    return len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = Path(os.environ.get("NEXAI_AGENTS_DIR", Path.home() / ".cache/nexai/agents"))
    parser.add_argument("--agents-dir", type=Path, default=default_dir)
    parser.add_argument("--out", type=Path, default=Path("tests/conformance/requests"))
    parser.add_argument("--only", action="append", default=[], choices=sorted(BINARIES))
    args = parser.parse_args(argv)
    if not (args.agents_dir / "node_modules" / ".bin").is_dir():
        print(f"no agents in {args.agents_dir}: run `make agents` first", file=sys.stderr)
        return 2
    count = record(args.agents_dir, args.out, args.only)
    print(f"wrote {count} requests to {args.out}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
