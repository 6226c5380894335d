"""A chat completion as Gemini's GenerateContentResponse (the Gemini API on models
whose upstream speaks something else)."""

from __future__ import annotations

from typing import Any

from .. import chat
from ..usage import Usage
from . import signatures

# chat finish_reason -> Gemini finishReason (a function call ends with STOP there).
FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def finish_reason(chat_reason: str | None) -> str:
    return FINISH_REASONS.get(chat_reason or "", "STOP")


def function_call_part(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """A chat tool call as a functionCall part: its id for the caller to answer with
    (Gemini CLI does), and the thought signature its id carried, if any."""
    base, signature = signatures.split(call_id)
    part: dict[str, Any] = {
        "functionCall": {"id": base, "name": name, "args": chat.lenient_arguments(arguments)}
    }
    if signature:
        part["thoughtSignature"] = signature
    return part


def response_id(completion_id: Any) -> str:
    if isinstance(completion_id, str) and completion_id:
        return completion_id.removeprefix("chatcmpl-")
    return chat.new_id("")


def chat_response_to_gemini(completion: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A chat.completion object as a GenerateContentResponse naming `model`."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    parts: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = chat.text_of_parts(text, param="content", allowed=frozenset({"text", "refusal"}))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(
            function_call_part(
                str(call.get("id") or chat.new_id("call_")),
                function.get("name") or "",
                function.get("arguments"),
            )
        )
    out: dict[str, Any] = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts or [{"text": ""}]},
                "finishReason": finish_reason(choice.get("finish_reason")),
                "index": 0,
            }
        ],
    }
    if completion.get("usage"):
        out["usageMetadata"] = Usage.from_openai_chat(completion["usage"]).to_gemini()
    out["modelVersion"] = model
    out["responseId"] = response_id(completion.get("id"))
    return out
