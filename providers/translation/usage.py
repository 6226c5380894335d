"""Token usage in one shape, read from and written to each dialect.

Billing only ever looks at `Usage`; the dialect-specific dicts exist at the edges.
Each provider's usage shape is read here, once (`from_*`), and priced by
billing.pricing.usage_charge. All counts are ints: a missing or null field counts as 0.

How the providers count (their API references):
- OpenAI chat: `prompt_tokens` includes cache reads
  (`prompt_tokens_details.cached_tokens`) and audio (`prompt_tokens_details.audio_tokens`);
  `completion_tokens` includes reasoning (`completion_tokens_details.reasoning_tokens`)
  and audio (`completion_tokens_details.audio_tokens`). DeepSeek reports cache reads
  as `prompt_cache_hit_tokens`; xAI reports reasoning apart from `completion_tokens`
  (its `total_tokens` then adds them), which the reader detects from the total.
- Anthropic: `input_tokens` excludes cache reads (`cache_read_input_tokens`) and cache
  writes (`cache_creation_input_tokens`, split by lifetime in
  `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`); thinking is
  inside `output_tokens`.
- Gemini: `promptTokenCount` includes the cached content (`cachedContentTokenCount`);
  `toolUsePromptTokenCount` and `thoughtsTokenCount` are reported apart and billed as
  input and output; `promptTokensDetails` / `cacheTokensDetails` /
  `candidatesTokensDetails` split the counts by modality (TEXT, IMAGE, AUDIO, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def _int(value: Any) -> int:
    # Upstreams send null for "not applicable"; a bool is never a count; a negative
    # count is a bug upstream and must never lower a charge.
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def _sub(obj: Any, key: str) -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _modalities(details: Any) -> dict[str, int]:
    """Gemini's [{"modality": "AUDIO", "tokenCount": 12}, ...] as {"AUDIO": 12}."""
    counts: dict[str, int] = {}
    for item in details if isinstance(details, list) else ():
        if isinstance(item, dict) and isinstance(item.get("modality"), str):
            name = item["modality"].upper()
            counts[name] = counts.get(name, 0) + _int(item.get("tokenCount"))
    return counts


def _writes(details: dict[str, Any]) -> dict[str, int]:
    """nexai's `cache_write_tokens` (all cache writes, as OpenRouter reports them) and
    `cache_write_1h_tokens` (the part of them kept for an hour) in chat and Responses
    usage, as Usage's two disjoint counts."""
    written = _int(details.get("cache_write_tokens"))
    hour = min(_int(details.get("cache_write_1h_tokens")), written)
    return {"cache_write_tokens": written - hour, "cache_write_1h_tokens": hour}


# The most a count can be: the usage table's integer columns hold no more. A larger
# one (two billion tokens in one answer, or in a sum of an upstream's parts) is a bug
# upstream; charged and recorded as this, the record still says what was charged.
MAX_COUNT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, in OpenAI's meaning: every part is inside a total.

    `input_tokens` counts every prompt token: read from a cache, written to one, or
    neither. Inside it: `cached_input_tokens` (cache reads), `cache_write_tokens`
    (5-minute cache writes), `cache_write_1h_tokens` (1-hour cache writes), and
    `audio_input_tokens` / `image_input_tokens` (audio and image prompt tokens not read
    from a cache).
    `output_tokens` counts every generated token; inside it: `reasoning_tokens`,
    `audio_output_tokens`, `image_output_tokens`.
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0

    def __post_init__(self) -> None:
        for name in _NAMES:
            if getattr(self, name) > MAX_COUNT:
                object.__setattr__(self, name, MAX_COUNT)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cache_written_tokens(self) -> int:
        return self.cache_write_tokens + self.cache_write_1h_tokens

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _NAMES}

    def merged(self, other: Usage) -> Usage:
        """Each count at its larger value: for streams that report cumulative counts in
        several events, some of which leave fields out."""
        return Usage(**{k: max(v, getattr(other, k)) for k, v in self.as_dict().items()})

    # -- readers -----------------------------------------------------------------

    @classmethod
    def from_openai_chat(cls, usage: dict[str, Any] | None) -> Usage:
        usage = usage or {}
        prompt = _sub(usage, "prompt_tokens_details")
        completion = _sub(usage, "completion_tokens_details")
        input_tokens = _int(usage.get("prompt_tokens"))
        output_tokens = _int(usage.get("completion_tokens"))
        reasoning = _int(completion.get("reasoning_tokens"))
        total = usage.get("total_tokens")
        if reasoning and _int(total) == input_tokens + output_tokens + reasoning:
            # xAI counts reasoning apart from completion_tokens (and adds it to the
            # total); OpenAI's total is prompt + completion. Either way it is output.
            output_tokens += reasoning
        return cls(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=_int(prompt.get("cached_tokens"))
            or _int(usage.get("prompt_cache_hit_tokens")),
            reasoning_tokens=reasoning,
            # Not OpenAI fields: nexai's own, written by to_openai_chat so that what an
            # Anthropic or Gemini upstream reported survives the chat hub.
            **_writes(prompt),
            audio_input_tokens=_int(prompt.get("audio_tokens")),
            audio_output_tokens=_int(completion.get("audio_tokens")),
            image_input_tokens=_int(prompt.get("image_tokens")),
            image_output_tokens=_int(completion.get("image_tokens")),
        )

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any] | None) -> Usage:
        # Anthropic's input_tokens excludes cache reads and cache writes; both are
        # still prompt tokens the caller pays for, so they count as input here.
        usage = usage or {}
        cache_read = _int(usage.get("cache_read_input_tokens"))
        split = _sub(usage, "cache_creation")
        write_1h = _int(split.get("ephemeral_1h_input_tokens"))
        # The total, or the split's sum where a proxy sends only the split.
        cache_write = max(
            _int(usage.get("cache_creation_input_tokens")),
            _int(split.get("ephemeral_5m_input_tokens")) + write_1h,
        )
        return cls(
            input_tokens=_int(usage.get("input_tokens")) + cache_read + cache_write,
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=cache_read,
            # Without the split every write has the default 5-minute lifetime.
            cache_write_tokens=cache_write - write_1h,
            cache_write_1h_tokens=write_1h,
        )

    @classmethod
    def from_responses(cls, usage: dict[str, Any] | None) -> Usage:
        usage = usage or {}
        details = _sub(usage, "input_tokens_details")
        output = _sub(usage, "output_tokens_details")
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=_int(details.get("cached_tokens")),
            reasoning_tokens=_int(output.get("reasoning_tokens")),
            **_writes(details),
            image_input_tokens=_int(details.get("image_tokens")),
            image_output_tokens=_int(output.get("image_tokens")),
        )

    @classmethod
    def from_gemini(cls, usage_metadata: dict[str, Any] | None) -> Usage:
        # Gemini bills thinking as output but reports it apart from the candidates,
        # and reports the prompt for its own tool use apart from the prompt.
        meta = usage_metadata or {}
        thoughts = _int(meta.get("thoughtsTokenCount"))
        prompt = _modalities(meta.get("promptTokensDetails"))
        cached = _modalities(meta.get("cacheTokensDetails"))
        tool_use = _modalities(meta.get("toolUsePromptTokensDetails"))
        out = _modalities(meta.get("candidatesTokensDetails"))

        def fresh(modality: str) -> int:
            # Read from the cache, they are priced as cache reads.
            seen = prompt.get(modality, 0) + tool_use.get(modality, 0)
            return max(seen - cached.get(modality, 0), 0)

        return cls(
            input_tokens=_int(meta.get("promptTokenCount"))
            + _int(meta.get("toolUsePromptTokenCount")),
            output_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
            cached_input_tokens=_int(meta.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
            # Video is billed at the text/image rate; only audio has its own price.
            audio_input_tokens=fresh("AUDIO"),
            image_input_tokens=fresh("IMAGE"),
            audio_output_tokens=out.get("AUDIO", 0),
            image_output_tokens=out.get("IMAGE", 0),
        )

    # -- writers -----------------------------------------------------------------

    def to_openai_chat(self) -> dict[str, Any]:
        prompt: dict[str, Any] = {
            "cached_tokens": self.cached_input_tokens,
            "audio_tokens": self.audio_input_tokens,
        }
        completion: dict[str, Any] = {
            "reasoning_tokens": self.reasoning_tokens,
            "audio_tokens": self.audio_output_tokens,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
        # nexai's additions to OpenAI's shape, only when there is something to say:
        # the chat hub must carry them from Anthropic and Gemini upstreams to billing.
        for target, key, value in (
            (prompt, "cache_write_tokens", self.cache_written_tokens),
            (prompt, "cache_write_1h_tokens", self.cache_write_1h_tokens),
            (prompt, "image_tokens", self.image_input_tokens),
            (completion, "image_tokens", self.image_output_tokens),
        ):
            if value:
                target[key] = value
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt,
            "completion_tokens_details": completion,
        }

    def to_anthropic(self) -> dict[str, Any]:
        # Back to Anthropic's meaning: input_tokens are the uncached ones only.
        fresh = self.input_tokens - self.cached_input_tokens - self.cache_written_tokens
        usage: dict[str, Any] = {
            "input_tokens": max(fresh, 0),
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_written_tokens,
            "cache_read_input_tokens": self.cached_input_tokens,
        }
        if self.cache_written_tokens:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": self.cache_write_tokens,
                "ephemeral_1h_input_tokens": self.cache_write_1h_tokens,
            }
        return usage

    def to_gemini(self) -> dict[str, Any]:
        """Google's usageMetadata: the prompt includes cached tokens, thoughts are
        counted apart from the candidates (from_gemini reads it back the same)."""
        meta: dict[str, Any] = {
            "promptTokenCount": self.input_tokens,
            "candidatesTokenCount": max(self.output_tokens - self.reasoning_tokens, 0),
            "totalTokenCount": self.total_tokens,
        }
        if self.cached_input_tokens:
            meta["cachedContentTokenCount"] = self.cached_input_tokens
        if self.reasoning_tokens:
            meta["thoughtsTokenCount"] = self.reasoning_tokens
        return meta

    def to_responses(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "cached_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_written_tokens,
        }
        if self.cache_write_1h_tokens:
            details["cache_write_1h_tokens"] = self.cache_write_1h_tokens
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": details,
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total_tokens,
        }


_NAMES = tuple(f.name for f in fields(Usage))
