"""Builders for the hub dialect, OpenAI Chat Completions.

Every translator produces chat objects through these, so the shapes are fixed
in one place and match what the `openai` SDK parses.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from .errors import TranslationError
from .usage import Usage

SYSTEM_ROLES = frozenset({"system", "developer"})


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def completion(
    *,
    completion_id: str,
    model: str,
    created: int,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage | None,
) -> dict[str, Any]:
    """A whole `chat.completion` object with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    result: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage is not None:
        result["usage"] = usage.to_openai_chat()
    return result


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def dump_arguments(arguments: Any) -> str:
    """Tool arguments as the JSON string chat completions carry."""
    return json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)


def parse_arguments(arguments: Any, *, param: str) -> dict[str, Any]:
    """A chat tool call's JSON arguments string as the object other dialects want."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if not isinstance(arguments, str):
        raise TranslationError("Tool call arguments must be a JSON string.", param=param)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise TranslationError("Tool call arguments are not valid JSON.", param=param) from None
    if not isinstance(parsed, dict):
        raise TranslationError("Tool call arguments must be a JSON object.", param=param)
    return parsed


def lenient_arguments(arguments: Any) -> dict[str, Any]:
    """Parse arguments that a model produced, never failing.

    Models do sometimes emit broken JSON; that is the upstream's output, not the
    caller's fault, so it is kept (as a string) rather than turned into an error.
    """
    try:
        return parse_arguments(arguments, param="")
    except TranslationError:
        return {"_raw_arguments": arguments}


class ChunkFactory:
    """Builds the `chat.completion.chunk` objects of one stream (same id and time)."""

    def __init__(self, *, model: str, chunk_id: str | None, created: int | None) -> None:
        self.chunk_id = chunk_id or new_id("chatcmpl-")
        self.model = model
        self.created = created if created is not None else now()

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.chunk_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        # What OpenAI sends last when stream_options.include_usage is set.
        return {
            "id": self.chunk_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage.to_openai_chat(),
        }

    def role_chunk(self) -> dict[str, Any]:
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def text_chunk(self, text: str) -> dict[str, Any]:
        return self.chunk({"content": text})

    def tool_start_chunk(self, index: int, call_id: str, name: str, arguments: str = "") -> dict:
        return self.chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ]
            }
        )

    def tool_arguments_chunk(self, index: int, fragment: str) -> dict[str, Any]:
        return self.chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def finish_chunk(self, finish_reason: str) -> dict[str, Any]:
        return self.chunk({}, finish_reason)


def text_of_parts(
    content: Any, *, param: str, allowed: frozenset[str] = frozenset({"text"}), sep: str = ""
) -> str:
    """The text of content given as a str or a list of text parts (system, tool, assistant)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError("Content must be a string or a list of parts.", param=param)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise TranslationError(
                f"Content part type {kind!r} is not supported here.", param=f"{param}[{j}].type"
            )
        texts.append(part.get(kind) or "")  # a "text" part's text, a "refusal" part's refusal
    return sep.join(texts)


def convert_parts(
    content: Any,
    *,
    param: str,
    text: Callable[[str], dict[str, Any]],
    convert: Callable[..., dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """A chat message's content (a string, or a list of parts) as another dialect's
    parts: `text` for a plain string, `convert(part, param=...)` for each part (parts
    it turns into None are left out)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text(content)] if content else []
    converted = (
        convert(part, param=f"{param}[{j}]")
        for j, part in enumerate(expect_list(content, param=param))
    )
    return [part for part in converted if part]


def collapse_text_parts(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text part as a plain string, the form every OpenAI-compatible upstream takes.

    Several parts stay a list: joining them would change where one text ends.
    """
    if len(parts) == 1 and parts[0].get("type") == "text":
        return str(parts[0]["text"])
    return parts


def expect_list(value: Any, *, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"'{param}' must be an array.", param=param)
    return value


def expect_dict(value: Any, *, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TranslationError(f"'{param}' must be an object.", param=param)
    return value


class ChunkStream:
    """What every upstream-stream-to-chat translator keeps: a chunk factory, the
    running usage, the upstream's error if one came, and whether the opening role
    chunk has been sent."""

    def __init__(
        self,
        *,
        model: str,
        include_usage: bool = False,
        chunk_id: str | None = None,
        created: int | None = None,
    ) -> None:
        self._chunks = ChunkFactory(model=model, chunk_id=chunk_id, created=created)
        self._include_usage = include_usage
        self.usage = Usage(0, 0)
        self.error: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._started = False
        self._finished = False
        self._setup()

    def _setup(self) -> None:
        """A translator's own state."""

    def _start(self) -> list[dict[str, Any]]:
        """The role chunk, once, before anything else."""
        if self._started:
            return []
        self._started = True
        return [self._chunks.role_chunk()]


def function_tools(tools: Any) -> list[dict[str, Any]]:
    """The `function` objects of a chat `tools` list, checked: only function tools,
    each with a name (TranslationError naming the field otherwise)."""
    functions = []
    for i, tool in enumerate(expect_list(tools, param="tools")):
        param = f"tools[{i}]"
        tool = expect_dict(tool, param=param)
        if tool.get("type", "function") != "function":
            raise TranslationError(
                f"Tool type {tool.get('type')!r} is not supported by this model.",
                param=f"{param}.type",
            )
        function = expect_dict(tool.get("function"), param=f"{param}.function")
        if not function.get("name"):
            raise TranslationError("A function tool needs a name.", param=f"{param}.function.name")
        functions.append(function)
    return functions


class PendingToolCalls:
    """Tool calls streamed in chat deltas, held until their name is known: a block
    (Messages) or an output item (Responses) must open with it. Assumes each call's
    fragments arrive together, as OpenAI-compatible upstreams stream them; a late
    fragment of a call already opened is dropped."""

    def __init__(self) -> None:
        self.pending: dict[int, dict[str, str]] = {}
        self.seen: set[int] = set()

    def add(self, call: dict[str, Any]) -> int | None:
        """Take a delta; returns its tool index once the call can be opened."""
        tool_index = call.get("index", 0)
        function = call.get("function") or {}
        pending = self.pending.get(tool_index)
        if pending is None:
            if tool_index in self.seen:
                return None
            self.seen.add(tool_index)
            pending = self.pending[tool_index] = {"id": "", "name": "", "arguments": ""}
        pending["id"] = pending["id"] or call.get("id") or ""
        pending["name"] = pending["name"] or function.get("name") or ""
        pending["arguments"] += function.get("arguments") or ""
        return tool_index if pending["name"] else None

    def pop(self, tool_index: int) -> dict[str, str]:
        return self.pending.pop(tool_index)

    def indexes(self) -> list[int]:
        return sorted(self.pending)


class ChatChunkReader:
    """What every chat-stream-to-dialect translator does with a chat chunk: the running
    usage, then choice 0's text delta, its tool-call fragments and its finish reason,
    each handed to the subclass to write in its dialect."""

    usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._start(chunk)
        if chunk.get("usage"):
            self.usage = Usage.from_openai_chat(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.extend(self._text_delta(delta["content"]))
            for call in delta.get("tool_calls") or []:
                out.extend(self._tool_fragment(call))
            if choice.get("finish_reason"):
                out.extend(self._finished(choice["finish_reason"]))
        return out

    def _start(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _tool_fragment(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _finished(self, finish_reason: str) -> list[dict[str, Any]]:
        raise NotImplementedError
