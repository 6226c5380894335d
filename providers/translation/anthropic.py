"""Anthropic Messages API <-> OpenAI Chat Completions, both directions.

Chat -> Anthropic serves chat (and Responses) callers on an Anthropic upstream;
Anthropic -> chat serves /v1/messages callers on any other upstream.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from typing import Any

from . import chat
from .errors import TranslationError
from .media import is_http_url, make_data_url, parse_data_url
from .notes import TranslationNotes
from .usage import Usage

# Anthropic refuses a request with more cache_control breakpoints than this.
MAX_CACHE_BREAKPOINTS = 4

# OpenAI refuses a `user` longer than this; Claude Code's metadata.user_id is a JSON
# object of about 150 characters.
_MAX_USER_LENGTH = 64

# Assistant blocks that record what a server tool did at Anthropic: only Anthropic can
# read them back, and their tools are dropped for other upstreams too.
_SERVER_BLOCKS = frozenset(
    {
        "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
        "code_execution_tool_result", "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result", "tool_search_tool_result",
        "mcp_tool_use", "mcp_tool_result", "container_upload",
    }
)  # fmt: skip

ANTHROPIC_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# Anthropic stop_reason -> chat finish_reason.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# chat finish_reason -> Anthropic stop_reason.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason_from_anthropic(stop_reason: str | None) -> str:
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def stop_reason_from_chat(finish_reason: str | None) -> str:
    return _STOP_REASONS.get(finish_reason or "", "end_turn")


# =============================================================================
# Chat request -> Anthropic request
# =============================================================================


def chat_request_to_anthropic(
    body: dict[str, Any], *, upstream_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """A chat completions request body as an Anthropic Messages request body."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise TranslationError("This model returns a single choice; 'n' must be 1.", param="n")
    system, messages = _chat_messages_to_anthropic(body.get("messages"))
    out: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": _max_tokens(body, default_max_tokens),
        "messages": messages,
    }
    if system:
        out["system"] = system
    _copy_sampling(body, out)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    if body.get("tools"):
        out["tools"] = _chat_tools_to_anthropic(body["tools"])
    tool_choice = _chat_tool_choice_to_anthropic(body)
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    return limit_cache_breakpoints(out)


def limit_cache_breakpoints(
    body: dict[str, Any], *, limit: int = MAX_CACHE_BREAKPOINTS
) -> dict[str, Any]:
    """A Messages request body with at most `limit` cache_control breakpoints.

    Anthropic answers 400 beyond four. The last ones are kept: a breakpoint caches
    everything before it, so the latest covers the most. The body is returned as it
    is when within the limit (the common case), else as a changed copy.
    """
    blocks = _cached_blocks(body)
    if len(blocks) <= limit:
        return body
    body = copy.deepcopy(body)
    for block in _cached_blocks(body)[: len(blocks) - limit]:
        del block["cache_control"]
    return body


def _cached_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Blocks carrying cache_control, in Anthropic's prompt order: tools, system, messages."""
    found: list[dict[str, Any]] = []

    def visit(blocks: Any) -> None:
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("cache_control"):
                found.append(block)
            if block.get("type") == "tool_result":
                visit(block.get("content"))

    visit(body.get("tools"))
    visit(body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            visit(message.get("content"))
    return found


def _max_tokens(body: dict[str, Any], default: int) -> int:
    # Anthropic requires max_tokens; chat callers usually leave it out.
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TranslationError(f"'{key}' must be a positive integer.", param=key)
            return value
    return default


def _copy_sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)):
        # OpenAI allows 0..2, Anthropic 0..1: clamp rather than fail the request.
        out["temperature"] = min(temperature, 1)
    top_p = body.get("top_p")
    # Recent Claude models refuse temperature and top_p together; temperature is
    # what callers usually mean to set, so it wins.
    if top_p is not None and temperature is None:
        out["top_p"] = top_p


def _chat_messages_to_anthropic(
    messages: Any,
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    messages = chat.expect_list(messages, param="messages")
    system_blocks: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        message = chat.expect_dict(message, param=param)
        role = message.get("role")
        if role in chat.SYSTEM_ROLES:
            system_blocks.extend(_text_blocks(message.get("content"), param=f"{param}.content"))
        elif role == "user":
            _append_turn(
                turns, "user", _user_blocks(message.get("content"), param=f"{param}.content")
            )
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_blocks(message, param=param))
        elif role == "tool":
            _append_turn(turns, "user", [_tool_result_block(message, param=param)])
        else:
            raise TranslationError(f"Unsupported message role {role!r}.", param=f"{param}.role")
    return _system_value(system_blocks), turns


def _append_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Anthropic wants user and assistant turns to alternate and none to be empty:
    # consecutive turns of one role (tool results, then the user's next words)
    # become one turn, and a turn with nothing in it disappears.
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _system_value(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and "cache_control" not in blocks[0]:
        return str(blocks[0]["text"])
    return blocks


def _text_block(part: dict[str, Any]) -> dict[str, Any] | None:
    text = part.get("text")
    if not isinstance(text, str) or not text:
        return None  # Anthropic rejects empty text blocks
    block: dict[str, Any] = {"type": "text", "text": text}
    if part.get("cache_control"):
        # Passed through so prompt caching still works for callers that know it.
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(chat.expect_list(content, param=param)):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise TranslationError("Only text parts are allowed here.", param=f"{param}[{j}]")
        block = _text_block(part)
        if block:
            blocks.append(block)
    return blocks


def _user_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    return chat.convert_parts(
        content, param=param, text=lambda t: {"type": "text", "text": t}, convert=_user_part
    )


def _user_part(part: Any, *, param: str) -> dict[str, Any] | None:
    part = chat.expect_dict(part, param=param)
    kind = part.get("type")
    if kind == "text":
        return _text_block(part)
    if kind == "image_url":
        return _image_block(part.get("image_url"), param=f"{param}.image_url")
    if kind == "file":
        return _document_block(part.get("file"), param=f"{param}.file")
    raise TranslationError(
        f"Content part type {kind!r} is not supported by this model.", param=f"{param}.type"
    )


def _image_block(image_url: Any, *, param: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url.url is required.", param=param)
    if is_http_url(url):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = parse_data_url(url, param=param)
    if media_type not in ANTHROPIC_IMAGE_TYPES:
        raise TranslationError(
            f"Image type {media_type!r} is not supported; use JPEG, PNG, GIF or WebP.", param=param
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(file: Any, *, param: str) -> dict[str, Any]:
    file_data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(file_data, str):
        raise TranslationError("Only inline files (file.file_data) are supported.", param=param)
    media_type, data = parse_data_url(file_data, param=f"{param}.file_data")
    if media_type != "application/pdf":
        raise TranslationError("Only PDF files are supported.", param=f"{param}.file_data")
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _assistant_blocks(message: dict[str, Any], *, param: str) -> list[dict[str, Any]]:
    text = chat.text_of_parts(
        message.get("content"), param=f"{param}.content", allowed=frozenset({"text", "refusal"})
    )
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for k, call in enumerate(message.get("tool_calls") or []):
        blocks.append(_tool_use_block(call, param=f"{param}.tool_calls[{k}]"))
    return blocks


def _tool_use_block(call: Any, *, param: str) -> dict[str, Any]:
    call = chat.expect_dict(call, param=param)
    function = chat.expect_dict(call.get("function"), param=f"{param}.function")
    if not call.get("id") or not function.get("name"):
        raise TranslationError("A tool call needs an id and a function name.", param=param)
    return {
        "type": "tool_use",
        "id": call["id"],
        "name": function["name"],
        "input": chat.parse_arguments(
            function.get("arguments"), param=f"{param}.function.arguments"
        ),
    }


def _tool_result_block(message: dict[str, Any], *, param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise TranslationError(
            "A tool message needs a tool_call_id.", param=f"{param}.tool_call_id"
        )
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, list):
        block["content"] = _user_blocks(content, param=f"{param}.content")
    else:
        block["content"] = content or ""
    return block


def _chat_tools_to_anthropic(tools: Any) -> list[dict[str, Any]]:
    out = []
    for function in chat.function_tools(tools):
        entry: dict[str, Any] = {
            "name": function["name"],
            # Anthropic requires an object schema even for a tool without parameters.
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def _chat_tool_choice_to_anthropic(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise TranslationError("Unsupported tool_choice.", param="tool_choice")
    if body.get("parallel_tool_calls") is False and body.get("tools"):
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


# =============================================================================
# Anthropic response -> chat response
# =============================================================================


def anthropic_response_to_chat(
    resp: dict[str, Any],
    *,
    model: str,
    request_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """An Anthropic Message as a chat.completion object.

    Thinking blocks and server tool blocks are left out: chat has no place for them.
    """
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in resp.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(
                chat.tool_call(block["id"], block["name"], chat.dump_arguments(block.get("input")))
            )
    text = "".join(texts)
    return chat.completion(
        completion_id=request_id or _chat_id_from(resp.get("id")),
        model=model,
        created=created if created is not None else chat.now(),
        content=text if text or not tool_calls else None,
        tool_calls=tool_calls,
        finish_reason=finish_reason_from_anthropic(resp.get("stop_reason")),
        usage=Usage.from_anthropic(resp.get("usage")),
    )


def _chat_id_from(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id.removeprefix("msg_")
    return chat.new_id("chatcmpl-")


class AnthropicStreamToChat(chat.ChunkStream):
    """Anthropic stream events in, chat.completion.chunk objects out.

    Feed each parsed event (the JSON of one SSE frame) in order; call `finish()`
    when the upstream closes. `usage` is updated as events report it; `error`
    holds the body of an upstream `error` event, which the gateway turns into an
    error in the caller's dialect.
    """

    def _setup(self) -> None:
        self._usage_sent = False
        # Anthropic content block index -> chat tool_calls index.
        self._tool_index: dict[int, int] = {}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        handler = getattr(self, "_on_" + str(event.get("type")), None)
        return handler(event) if handler else []  # ping and unknown events: nothing

    def finish(self) -> list[dict[str, Any]]:
        """Closing chunks if the upstream ended without message_stop."""
        out = self._start()
        if not self._finished and self.error is None:
            out.append(self._finish_chunk("stop"))
        out.extend(self._usage())
        return out

    def _finish_chunk(self, reason: str) -> dict[str, Any]:
        self._finished = True
        self.finish_reason = reason
        return self._chunks.finish_chunk(reason)

    def _usage(self) -> list[dict[str, Any]]:
        if not self._include_usage or self._usage_sent:
            return []
        self._usage_sent = True
        return [self._chunks.usage_chunk(self.usage)]

    def _on_message_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.usage = Usage.from_anthropic((event.get("message") or {}).get("usage"))
        return self._start()

    def _on_content_block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._start()
        block = event.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            out.append(self._chunks.text_chunk(block["text"]))
        elif block.get("type") == "tool_use":
            index = len(self._tool_index)
            self._tool_index[event.get("index", -1)] = index
            # The input normally arrives in input_json_delta fragments; a block
            # that already carries it (some proxies do that) sends it here.
            initial = block.get("input")
            arguments = chat.dump_arguments(initial) if initial else ""
            out.append(self._chunks.tool_start_chunk(index, block["id"], block["name"], arguments))
        return out

    def _on_content_block_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [*self._start(), self._chunks.text_chunk(delta["text"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(event.get("index", -1))
            if index is not None:
                return [self._chunks.tool_arguments_chunk(index, delta["partial_json"])]
        return []  # thinking, signature and citation deltas have no chat form

    def _on_message_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self._merge_usage(event.get("usage") or {})
        reason = (event.get("delta") or {}).get("stop_reason")
        if reason is None or self._finished:
            return []
        return [*self._start(), self._finish_chunk(finish_reason_from_anthropic(reason))]

    def _on_message_stop(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._start()
        if not self._finished:
            out.append(self._finish_chunk("stop"))
        return out + self._usage()

    def _on_error(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.error = event.get("error") or {"type": "api_error", "message": "Upstream error"}
        return []

    def _merge_usage(self, delta_usage: dict[str, Any]) -> None:
        # message_delta's counts are cumulative; input counts appear only on some
        # upstreams, so a missing one keeps what message_start said.
        output = delta_usage.get("output_tokens")
        if isinstance(output, int):
            self.usage = replace(self.usage, output_tokens=output)
        if any(
            isinstance(delta_usage.get(key), int)
            for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        ):
            seen = Usage.from_anthropic({**delta_usage, "output_tokens": 0})
            self.usage = self.usage.merged(seen)


# =============================================================================
# Anthropic request -> chat request (the /v1/messages endpoint on other upstreams)
# =============================================================================


def anthropic_request_to_chat(
    body: dict[str, Any], *, notes: TranslationNotes | None = None
) -> dict[str, Any]:
    """An Anthropic Messages request body as a chat completions request body.

    A `system` message inside `messages` (Claude Code sends one after the first user
    turn) stays a system message in place. Server tools (web_search_..., bash_...,
    code_execution_...) are dropped and recorded in `notes`, unless `tool_choice`
    names one (TranslationError naming tool_choice); the blocks that record their runs
    are dropped too. Thinking blocks, cache_control, betas and Anthropic-only settings
    (thinking, context_management, output_config) have no chat form and are left out.
    """
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise TranslationError(
            "max_tokens is required and must be a positive integer.", param="max_tokens"
        )
    messages = _anthropic_system_to_chat(body.get("system"))
    for i, message in enumerate(chat.expect_list(body.get("messages"), param="messages")):
        messages.extend(_anthropic_message_to_chat(message, param=f"messages[{i}]"))
    out: dict[str, Any] = {
        "model": body.get("model"),
        "messages": messages,
        "max_tokens": max_tokens,
    }
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        # The closing message_delta must report usage, which chat streams only
        # send when asked.
        out["stream_options"] = {"include_usage": True}
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        out["user"] = _chat_user(str(user_id))
    dropped: set[str] = set()
    if body.get("tools"):
        tools = _anthropic_tools_to_chat(body["tools"], notes=notes, dropped=dropped)
        if tools:
            out["tools"] = tools
    _anthropic_tool_choice_to_chat(body.get("tool_choice"), out, dropped=dropped)
    return out


def _chat_user(user_id: str) -> str:
    if len(user_id) <= _MAX_USER_LENGTH:
        return user_id
    # Stable per user, so the upstream's abuse tracking still sees one user.
    return hashlib.sha256(user_id.encode()).hexdigest()


def _anthropic_system_to_chat(system: Any) -> list[dict[str, Any]]:
    if not system:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    # Separate blocks are separate instructions; keep them apart.
    text = chat.text_of_parts(system, param="system", sep="\n\n")
    return [{"role": "system", "content": text}] if text else []


def _anthropic_message_to_chat(message: Any, *, param: str) -> list[dict[str, Any]]:
    message = chat.expect_dict(message, param=param)
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant", "system"):
        raise TranslationError(f"Unsupported message role {role!r}.", param=f"{param}.role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = chat.expect_list(content, param=f"{param}.content")
    if role == "system":
        # Chat allows system messages anywhere: it stays where the caller put it.
        text = chat.text_of_parts(blocks, param=f"{param}.content", sep="\n\n")
        return [{"role": "system", "content": text}] if text else []
    if role == "assistant":
        return [_anthropic_assistant_to_chat(blocks, param=f"{param}.content")]
    return _anthropic_user_to_chat(blocks, param=f"{param}.content")


def _anthropic_assistant_to_chat(blocks: list[Any], *, param: str) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        block = chat.expect_dict(block, param=f"{param}[{j}]")
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            tool_calls.append(
                chat.tool_call(block["id"], block["name"], chat.dump_arguments(block.get("input")))
            )
        elif kind in ("thinking", "redacted_thinking") or kind in _SERVER_BLOCKS:
            continue  # only the model (or the API) that wrote them could read them back
        else:
            raise TranslationError(
                f"Content block type {kind!r} is not supported by this model.",
                param=f"{param}[{j}].type",
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _anthropic_user_to_chat(blocks: list[Any], *, param: str) -> list[dict[str, Any]]:
    # Tool results become tool messages, which must directly follow the assistant's
    # tool calls; whatever else the turn says follows them as one user message.
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        block = chat.expect_dict(block, param=f"{param}[{j}]")
        if block.get("type") == "tool_result":
            message, images = _anthropic_tool_result_to_chat(block, param=f"{param}[{j}]")
            tool_messages.append(message)
            parts.extend(images)
        else:
            parts.append(_anthropic_block_to_part(block, param=f"{param}[{j}]"))
    if parts:
        tool_messages.append({"role": "user", "content": chat.collapse_text_parts(parts)})
    return tool_messages


def _anthropic_block_to_part(block: dict[str, Any], *, param: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text") or ""}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _source_url(block, param=param)}}
    if kind == "document" and (block.get("source") or {}).get("type") == "text":
        return {"type": "text", "text": str(block["source"].get("data") or "")}
    if kind == "document":
        url = _source_url(block, param=param)
        if not url.startswith("data:application/pdf;"):
            raise TranslationError(
                "Only base64 PDF documents are supported.", param=f"{param}.source"
            )
        return {"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}
    raise TranslationError(
        f"Content block type {kind!r} is not supported by this model.", param=f"{param}.type"
    )


def _source_url(block: dict[str, Any], *, param: str) -> str:
    source = chat.expect_dict(block.get("source"), param=f"{param}.source")
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return source["url"]
    if source.get("type") == "base64":
        url = make_data_url(str(source.get("media_type") or ""), str(source.get("data") or ""))
        parse_data_url(url, param=f"{param}.source")  # validates media type and data
        return url
    raise TranslationError("Unsupported source type.", param=f"{param}.source.type")


def _anthropic_tool_result_to_chat(
    block: dict[str, Any], *, param: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, item in enumerate(content):
            part = _anthropic_block_to_part(
                chat.expect_dict(item, param=f"{param}.content[{k}]"), param=f"{param}.content[{k}]"
            )
            # Chat tool messages hold text only: images travel in the user message after.
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part)
    tool_use_id = block.get("tool_use_id")
    if not tool_use_id:
        raise TranslationError("tool_result needs a tool_use_id.", param=f"{param}.tool_use_id")
    return {"role": "tool", "tool_call_id": tool_use_id, "content": "\n".join(texts)}, images


def _anthropic_tools_to_chat(
    tools: Any, *, notes: TranslationNotes | None, dropped: set[str]
) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(chat.expect_list(tools, param="tools")):
        tool = chat.expect_dict(tool, param=f"tools[{i}]")
        kind = tool.get("type") or "custom"
        if kind != "custom":
            # Server tools (web_search_..., bash_..., code_execution_...) run at
            # Anthropic; other upstreams have nothing to run them with.
            if notes is not None:
                notes.drop_tool(param=f"tools[{i}]", kind=str(kind), name=tool.get("name"))
            dropped.add(str(tool.get("name") or kind))
            continue
        if not tool.get("name"):
            raise TranslationError("A tool needs a name.", param=f"tools[{i}].name")
        function: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _anthropic_tool_choice_to_chat(choice: Any, out: dict[str, Any], *, dropped: set[str]) -> None:
    if not choice:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "none", "tool") or (kind == "tool" and not choice.get("name")):
        raise TranslationError("Unsupported tool_choice.", param="tool_choice")
    if kind == "tool" and choice.get("name") in dropped:
        raise TranslationError(
            f"tool_choice forces the server tool {choice['name']!r}, which this model cannot run.",
            param="tool_choice",
        )
    if not out.get("tools"):
        if kind in ("any", "tool"):
            raise TranslationError(
                "tool_choice requires a tool, but none of the tools can run on this model.",
                param="tool_choice",
            )
        return  # upstreams refuse tool_choice without tools
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    else:
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


# =============================================================================
# Chat response -> Anthropic response
# =============================================================================


def chat_response_to_anthropic(resp: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A chat.completion object as an Anthropic Message."""
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = chat.text_of_parts(text, param="content", allowed=frozenset({"text", "refusal"}))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or chat.new_id("toolu_"),
                "name": function.get("name") or "",
                "input": chat.lenient_arguments(function.get("arguments")),
            }
        )
    return {
        "id": _message_id_from(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_from_chat(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": Usage.from_openai_chat(resp.get("usage")).to_anthropic(),
    }


def _message_id_from(completion_id: Any) -> str:
    if isinstance(completion_id, str) and completion_id:
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return chat.new_id("msg_")


class ChatStreamToAnthropic(chat.ChatChunkReader):
    """chat.completion.chunk objects in, Anthropic stream events out.

    Events come in Anthropic's order: message_start, then for each content block
    content_block_start / content_block_delta... / content_block_stop (text and
    each tool call are separate blocks with increasing indexes), then
    message_delta and message_stop from `finish()`.

    Tool call fragments are expected in order per call, as every OpenAI-compatible
    upstream streams them: once a later call has started, a stray fragment of an
    earlier one cannot be placed in its block and is dropped.
    """

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id
        self.usage = Usage(0, 0)
        self.stop_reason: str | None = None
        self._started = False
        self._next_index = 0
        # ("text", block index) or ("tool", chat tool index, block index), or None.
        self._open: tuple[Any, ...] | None = None
        # chat tool index -> pending {"id", "name", "arguments"} until its name is known.
        self._tools = chat.PendingToolCalls()

    def _finished(self, finish_reason: str) -> list[dict[str, Any]]:
        out = self._close_all()
        self.stop_reason = stop_reason_from_chat(finish_reason)
        return out

    def finish(self) -> list[dict[str, Any]]:
        out = self._start({})
        out.extend(self._close_all())
        usage = self.usage.to_anthropic()
        out.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None},
                "usage": usage,
            }
        )
        out.append({"type": "message_stop"})
        return out

    def error(self, message: str, *, error_type: str = "api_error") -> list[dict[str, Any]]:
        """The event that ends a stream whose upstream failed after output started."""
        return [{"type": "error", "error": {"type": error_type, "message": message}}]

    def _start(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if self.message_id is None:
            self.message_id = _message_id_from(chunk.get("id"))
        return [
            {
                "type": "message_start",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    # Chat streams report usage only at the end; message_delta has it.
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            }
        ]

    def _open_block(self, block: dict[str, Any], state: tuple[Any, ...]) -> list[dict[str, Any]]:
        out = self._close()
        index = self._next_index
        self._next_index += 1
        self._open = (*state, index)
        out.append({"type": "content_block_start", "index": index, "content_block": block})
        return out

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        index, self._open = self._open[-1], None
        return [{"type": "content_block_stop", "index": index}]

    def _close_all(self) -> list[dict[str, Any]]:
        # A tool call whose name never came is still a call: give it a block so
        # its id and arguments are not lost.
        out: list[dict[str, Any]] = []
        for tool_index in self._tools.indexes():
            out.extend(self._open_pending(tool_index))
        return out + self._close()

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._open is None or self._open[0] != "text":
            out = self._open_block({"type": "text", "text": ""}, ("text",))
        out.append(
            {
                "type": "content_block_delta",
                "index": self._open[-1],  # type: ignore[index]
                "delta": {"type": "text_delta", "text": text},
            }
        )
        return out

    def _tool_fragment(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        tool_index = call.get("index", 0)
        fragment = (call.get("function") or {}).get("arguments") or ""
        if self._open is not None and self._open[:2] == ("tool", tool_index):
            return [self._json_delta(fragment)] if fragment else []
        # The block's start event needs the name, so the call waits for it.
        ready = self._tools.add(call)
        return self._open_pending(ready) if ready is not None else []

    def _open_pending(self, tool_index: int) -> list[dict[str, Any]]:
        pending = self._tools.pop(tool_index)
        block = {
            "type": "tool_use",
            "id": pending["id"] or chat.new_id("toolu_"),
            "name": pending["name"],
            "input": {},
        }
        out = self._open_block(block, ("tool", tool_index))
        if pending["arguments"]:
            out.append(self._json_delta(pending["arguments"]))
        return out

    def _json_delta(self, fragment: str) -> dict[str, Any]:
        return {
            "type": "content_block_delta",
            "index": self._open[-1],  # type: ignore[index]
            "delta": {"type": "input_json_delta", "partial_json": fragment},
        }
