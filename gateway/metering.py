"""Counting what a request uses when the upstream does not say, and what it may cost.

Without a tokenizer for every model family (and no network to fetch one), nexai
estimates tokens as ceil(characters / 4) plus a small per-message overhead: OpenAI's
published rule of thumb for English. Records metered this way are marked estimated.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4
DEFAULT_MAX_OUTPUT = 4096  # reserved when neither the request nor the model sets one
IMAGE_TOKENS = 765  # a 1024x1024 image at high detail, OpenAI's published count


def tokens_for_text(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return tokens_for_text(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in ("image_url", "input_image", "image"):
                total += IMAGE_TOKENS
            else:
                total += tokens_for_text(str(part.get("text") or ""))
        return total
    return 0


def chat_input_tokens(body: dict[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {} if isinstance(call, dict) else {}
            total += tokens_for_text(str(function.get("arguments") or ""))
    for tool in body.get("tools") or []:
        total += tokens_for_text(str(tool))
    return total


def requested_max_output(body: dict[str, Any], model_default: int | None) -> int:
    for field in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return model_default or DEFAULT_MAX_OUTPUT


class OutputCounter:
    """Characters of output seen in a chat stream, for estimating when no usage comes."""

    def __init__(self) -> None:
        self.chars = 0

    def add_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.chars += len(content)
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if arguments:
                    self.chars += len(arguments)

    def add_message(self, completion: dict[str, Any]) -> None:
        for choice in completion.get("choices") or ():
            message = choice.get("message") or {}
            self.chars += len(message.get("content") or "")
            for call in message.get("tool_calls") or ():
                self.chars += len((call.get("function") or {}).get("arguments") or "")

    @property
    def tokens(self) -> int:
        return -(-self.chars // CHARS_PER_TOKEN)
