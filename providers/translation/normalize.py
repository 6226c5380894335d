"""Chat completions bodies as clients really send them, made into what upstreams accept.

Cursor (with some models) posts Responses-shaped bodies to /v1/chat/completions:
`input` and `instructions` instead of `messages`, flat Responses tools
(`{"type": "function", "name": ...}`), and expects a chat completion back. Clients
also send `stream_options` on requests that do not stream, which OpenAI refuses.
"""

from __future__ import annotations

from typing import Any

from .notes import TranslationNotes
from .responses import responses_request_to_chat

# Chat settings a Responses-shaped body may carry beside its Responses fields.
_CHAT_ONLY = (
    "max_tokens", "max_completion_tokens", "n", "stop", "seed", "presence_penalty",
    "frequency_penalty", "response_format", "logprobs", "top_logprobs", "logit_bias",
    "reasoning_effort", "stream_options",
)  # fmt: skip


def normalize_chat_request(
    body: dict[str, Any], *, notes: TranslationNotes | None = None
) -> dict[str, Any]:
    """A chat completions body that every OpenAI-compatible upstream accepts.

    - `input` without `messages`: the body is read as a Responses request
      (responses_request_to_chat: instructions, items, flat, namespace, custom and
      built-in tools, recorded in `notes` when dropped), keeping the chat settings it
      also carries.
    - flat Responses function tools are nested the chat way.
    - `stream_options` is dropped unless `stream` is true.

    Returns `body` itself when nothing needed changing. Raises TranslationError, naming
    the field, for a Responses-shaped body that cannot be read.
    """
    out = body
    if "messages" not in body and "input" in body:
        out = responses_request_to_chat(body, notes=notes)
        out.update({key: body[key] for key in _CHAT_ONLY if key in body})
        if "stream_options" in body and body.get("stream") is True:
            # The translation asked for usage; the caller's own options still count.
            out["stream_options"] = {"include_usage": True, **(body["stream_options"] or {})}
    tools = out.get("tools")
    if isinstance(tools, list) and any(_is_flat_function(tool) for tool in tools):
        out = {**out, "tools": [_nested(tool) for tool in tools]}
    if "stream_options" in out and out.get("stream") is not True:
        out = {key: value for key, value in out.items() if key != "stream_options"}
    return out


def _is_flat_function(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and tool.get("type") == "function"
        and "function" not in tool
        and "name" in tool
    )


def _nested(tool: Any) -> Any:
    if not _is_flat_function(tool):
        return tool
    function = {key: value for key, value in tool.items() if key != "type"}
    return {"type": "function", "function": function}
