"""Token usage in one shape, read from and written to each dialect.

Billing only ever looks at `Usage`; the dialect-specific dicts exist at the edges.
All counts are ints: a missing or null field counts as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _int(value: Any) -> int:
    # Upstreams send null for "not applicable"; a bool is never a count.
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value


def _sub(obj: Any, key: str) -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call.

    `input_tokens` counts every prompt token, cached or not (OpenAI's meaning);
    `cached_input_tokens` is the part of it read from a prompt cache.
    `output_tokens` includes `reasoning_tokens`.
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    # -- readers -----------------------------------------------------------------

    @classmethod
    def from_openai_chat(cls, usage: dict[str, Any] | None) -> Usage:
        usage = usage or {}
        return cls(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cached_input_tokens=_int(_sub(usage, "prompt_tokens_details").get("cached_tokens")),
            reasoning_tokens=_int(_sub(usage, "completion_tokens_details").get("reasoning_tokens")),
        )

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any] | None) -> Usage:
        # Anthropic's input_tokens excludes cache reads and cache writes; both are
        # still prompt tokens the caller pays for, so they count as input here.
        usage = usage or {}
        cache_read = _int(usage.get("cache_read_input_tokens"))
        cache_write = _int(usage.get("cache_creation_input_tokens"))
        return cls(
            input_tokens=_int(usage.get("input_tokens")) + cache_read + cache_write,
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=cache_read,
        )

    @classmethod
    def from_responses(cls, usage: dict[str, Any] | None) -> Usage:
        usage = usage or {}
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=_int(_sub(usage, "input_tokens_details").get("cached_tokens")),
            reasoning_tokens=_int(_sub(usage, "output_tokens_details").get("reasoning_tokens")),
        )

    @classmethod
    def from_gemini(cls, usage_metadata: dict[str, Any] | None) -> Usage:
        # Gemini bills thinking as output but reports it apart from the candidates,
        # and reports the prompt for its own tool use apart from the prompt.
        meta = usage_metadata or {}
        thoughts = _int(meta.get("thoughtsTokenCount"))
        return cls(
            input_tokens=_int(meta.get("promptTokenCount"))
            + _int(meta.get("toolUsePromptTokenCount")),
            output_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
            cached_input_tokens=_int(meta.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )

    # -- writers -----------------------------------------------------------------

    def to_openai_chat(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def to_anthropic(self) -> dict[str, Any]:
        # Back to Anthropic's meaning: input_tokens are the uncached ones only.
        return {
            "input_tokens": max(self.input_tokens - self.cached_input_tokens, 0),
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached_input_tokens,
        }

    def to_responses(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {
                "cached_tokens": self.cached_input_tokens,
                "cache_write_tokens": 0,
            },
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }
