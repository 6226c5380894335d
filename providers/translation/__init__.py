"""Translation between LLM API dialects, as pure functions over plain dicts.

OpenAI Chat Completions is the hub: every other dialect is translated to and
from it. Nothing here does I/O or imports Django, so it can be table-tested.
"""

from __future__ import annotations

from .anthropic import (
    AnthropicStreamToChat,
    ChatStreamToAnthropic,
    anthropic_request_to_chat,
    anthropic_response_to_chat,
    chat_request_to_anthropic,
    chat_response_to_anthropic,
    limit_cache_breakpoints,
)
from .errors import TranslationError
from .gemini import GeminiStreamToChat, chat_request_to_gemini, gemini_response_to_chat
from .normalize import normalize_chat_request
from .notes import WARNING_HEADER, DroppedTool, TranslationNotes
from .responses import (
    ChatStreamToResponses,
    chat_response_to_responses,
    responses_output_to_chat_messages,
    responses_request_to_chat,
)
from .sse import SSEParser, sse_data, sse_event
from .usage import Usage

__all__ = [
    "WARNING_HEADER",
    "AnthropicStreamToChat",
    "ChatStreamToAnthropic",
    "ChatStreamToResponses",
    "DroppedTool",
    "GeminiStreamToChat",
    "SSEParser",
    "TranslationError",
    "TranslationNotes",
    "Usage",
    "anthropic_request_to_chat",
    "anthropic_response_to_chat",
    "chat_request_to_anthropic",
    "chat_request_to_gemini",
    "chat_response_to_anthropic",
    "chat_response_to_responses",
    "gemini_response_to_chat",
    "limit_cache_breakpoints",
    "normalize_chat_request",
    "responses_output_to_chat_messages",
    "responses_request_to_chat",
    "sse_data",
    "sse_event",
]
