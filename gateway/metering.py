"""Counting what a request uses when the upstream does not say, and what it may cost.

Without a tokenizer for every model family (and no network to fetch one), a call whose
upstream reports no usage is charged for the most its text can be: one token per UTF-8
byte (a byte-level BPE token covers at least one byte), the bound the reservation is
taken at. Counting characters / 4 (OpenAI's rule of thumb for English) would charge a
quarter of Chinese output and less for emoji, which take 3 and 4 bytes a character and
often a token or more each. Reasoning the upstream streams (`reasoning_content`,
Anthropic's thinking, Gemini's thoughts) counts as output. Records metered this way
are marked estimated. The rule of thumb stays for advice only (count_tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from billing.pricing import (
    charge_from_lines,
    max_input_per_mtok,
    max_output_per_mtok,
    usage_breakdown,
)
from gateway import media_bounds
from providers.catalogue import ModelInfo, RouteInfo
from providers.prices import Prices
from providers.translation.usage import Usage

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4
DEFAULT_MAX_OUTPUT = 4096  # reserved when neither the request nor the model sets one
IMAGE_TOKENS = 765  # a 1024x1024 image at high detail, OpenAI's published count


def tokens_for_text(text: str) -> int:
    """An advisory count (about four characters a token), never a charge."""
    return -(-len(text) // CHARS_PER_TOKEN)


def tokens_bound(text: str) -> int:
    """The most tokens `text` can be: its UTF-8 bytes (str.isascii() is a flag check,
    so ASCII text is not encoded)."""
    return len(text) if text.isascii() else len(text.encode())


def _content_tokens(content: Any, count: Callable[[str], int]) -> int:
    if isinstance(content, str):
        return count(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in ("image_url", "input_image", "image"):
                total += IMAGE_TOKENS
            else:
                total += count(str(part.get("text") or ""))
        return total
    return 0


def chat_input_tokens(body: dict[str, Any], *, count: Callable[[str], int] = tokens_bound) -> int:
    """A chat body's input tokens, each text counted by `count` (the UTF-8 bound, what
    an estimated charge takes; tokens_for_text for advice)."""
    total = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"), count)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {} if isinstance(call, dict) else {}
            total += count(str(function.get("arguments") or ""))
    for tool in body.get("tools") or []:
        total += count(str(tool))
    return total


def requested_max_output(body: dict[str, Any], model_default: int | None) -> int:
    for field in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return model_default or DEFAULT_MAX_OUTPUT


# Where OpenAI-compatible upstreams stream a model's reasoning beside its answer:
# DeepSeek, Qwen and xAI `reasoning_content`, OpenRouter, Groq and vLLM `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")


class OutputCounter:
    """The bound of the output seen in a chat stream or answer (its text, tool call
    arguments and reasoning, tokens_bound each), for a charge when no usage comes."""

    def __init__(self) -> None:
        self.tokens = 0

    def _add(self, part: dict[str, Any]) -> None:
        for name in ("content", *REASONING_FIELDS):
            text = part.get(name)
            if text and isinstance(text, str):
                self.tokens += tokens_bound(text)
        for call in part.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments")
            if arguments and isinstance(arguments, str):
                self.tokens += tokens_bound(arguments)

    def add_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            self._add(choice.get("delta") or {})

    def add_message(self, completion: dict[str, Any]) -> None:
        for choice in completion.get("choices") or ():
            self._add(choice.get("message") or {})


# =============================================================================
# What a settled call records, priced (billing.pricing)
# =============================================================================


def charge_values(prices: Prices, usage: Usage, *, estimated: bool) -> dict[str, Any]:
    """The charge and every usage component, as the usage record (and pipeline.settle)
    takes them: the charge can be re-derived from `charge_lines` alone."""
    lines = usage_breakdown(prices, usage)
    values: dict[str, Any] = usage.as_dict()
    values["charge"] = charge_from_lines(lines)
    values["charge_lines"] = [line.as_list() for line in lines]
    values["estimated"] = estimated
    return values


# =============================================================================
# A reservation that bounds the charge
# =============================================================================

# Tokens a provider adds that are not in the request's text: role markers and
# separators per message (OpenAI documents 3-4), a few to prime the answer, and the
# hidden system prompt that describes tools (Anthropic documents up to 530 tokens).
BOUND_PER_REQUEST = 64
BOUND_PER_MESSAGE = 16
BOUND_TOOLS = 1_024
# A max_tokens above this is refused whatever the model (no model's published output
# maximum comes near it); within it, a model's own maximum applies when it has one.
OUTPUT_CEILING = 1_000_000

# Every medium sits in a typed part: "image_url", "input_image", "input_audio",
# "input_file", "image", "document", "file" (orjson writes no spaces). Few searches:
# each costs a pass over the body.
_MEDIA_HINTS = (b'"type":"i', b'"type":"d', b'"type":"fi')
OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


@dataclass(frozen=True, slots=True)
class Bound:
    """The most a call can cost: `credits` = ceil((input_tokens * the model's highest
    input price + output_tokens * its highest output price) / 1M)."""

    input_tokens: int
    output_tokens: int
    credits: int


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _route_kinds(model: ModelInfo) -> list[tuple[str, bool, bool]]:
    """(kind, official OpenAI, gpt-4o-mini) for each route a call may take."""
    routes = []
    for route in model.routes:
        kind = route.provider.kind
        official = kind == "azure" or (
            kind == "openai" and "api.openai.com" in route.provider.base_url
        )
        routes.append((kind, official, "4o-mini" in route.upstream_model))
    return routes or [("openai", False, False)]


def _media_tokens(node: Any, routes: list[tuple[str, bool, bool]]) -> tuple[int, int]:
    """(tokens the media in `node` can cost, bytes of its payloads in the JSON)."""
    tokens = payload = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        found = _media_of(item)
        if found is None:
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
            continue
        kind, data = found
        payload += len(data) if data else 0
        tokens += _one_media_bound(kind, data, routes)
    return tokens, payload


def _media_of(part: dict[str, Any]) -> tuple[str, str | None] | None:
    """(media kind, base64 data or None) when `part` is an image, audio or document
    part of a chat, Responses or Messages body. Every image detail level is bounded by
    the highest."""
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _from_url(url, "image")
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        data = audio.get("data") if isinstance(audio, dict) else None
        return ("audio", data if isinstance(data, str) else None)
    if kind in ("file", "input_file"):
        file = part.get("file") if kind == "file" else part
        return _from_url(file.get("file_data") if isinstance(file, dict) else None, "pdf")
    if kind in ("image", "document"):
        source = part.get("source")
        if not isinstance(source, dict) or source.get("type") in ("text", "content"):
            return None  # text documents are counted as text
        media = "image" if kind == "image" else "pdf"
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            mime = str(source.get("media_type") or "")
            return (_kind_of_mime(mime, media), source["data"])
        return (media, None)
    return None


def _from_url(url: Any, default: str) -> tuple[str, str | None]:
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        return (_kind_of_mime(header.partition(";")[0].lower(), default), data)
    return (default, None)


def _kind_of_mime(mime: str, default: str) -> str:
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "audio"
    if mime.startswith("video/"):
        return "video"
    if mime == "application/pdf":
        return "pdf"
    return default


def _one_media_bound(kind: str, data: str | None, routes: list[tuple[str, bool, bool]]) -> int:
    if kind == "audio":
        return media_bounds.audio_tokens_bound(data or "")
    if kind == "video":
        return media_bounds.video_tokens_bound(data or "")
    if kind == "pdf":
        return media_bounds.pdf_tokens_bound(data) if data else media_bounds.PDF_PAGE_TOKENS * 100
    size = media_bounds.image_size(media_bounds.decode_prefix(data)) if data else None
    return max(
        media_bounds.image_tokens_bound(k, official_openai=o, mini=m, size=size)
        for k, o, m in routes
    )


def _input_bound(model: ModelInfo, body: dict[str, Any], messages: int) -> tuple[int, int]:
    """(tokens the prompt can cost, the highest price per million any of them can be
    charged at).

    Tokens: every byte of the body's JSON except media payloads (a byte-level BPE token
    covers at least one byte, and JSON is never shorter than the text it carries), plus
    each medium's bound and the overheads above. Price: cache writes (dearer than input
    on Anthropic) happen only where the request marks `cache_control`, and 1-hour ones
    only with `"ttl": "1h"`; other requests are bounded without those prices."""
    raw = orjson.dumps(body)
    tokens = len(raw) + BOUND_PER_REQUEST + BOUND_PER_MESSAGE * messages
    if body.get("tools"):
        tokens += BOUND_TOOLS
    if any(hint in raw for hint in _MEDIA_HINTS):
        media, payload = _media_tokens(body, _route_kinds(model))
        tokens += media - payload
    writes = b'"cache_control"' in raw
    hour = writes and b'"1h"' in raw
    price = max_input_per_mtok(model.prices, cache_writes=writes, hour_writes=hour)
    return tokens, price


def _output_bound(model: ModelInfo, body: dict[str, Any], *, choices: int) -> int:
    caps = [body[f] for f in OUTPUT_FIELDS if _is_count(body.get(f)) and body[f] > 0]
    cap = max(caps) if caps else (model.max_output_tokens or DEFAULT_MAX_OUTPUT)
    cap = max(cap, upstream_min_output_tokens(model))
    # A predicted output's rejected tokens are billed as output too (OpenAI).
    prediction = body.get("prediction")
    extra = len(orjson.dumps(prediction)) if isinstance(prediction, dict) else 0
    return cap * choices + extra


def _bound(prices: Prices, inputs: tuple[int, int], output_tokens: int) -> Bound:
    input_tokens, input_price = inputs
    exact = input_tokens * input_price + output_tokens * max_output_per_mtok(prices)
    return Bound(input_tokens, output_tokens, max(-(-exact // 1_000_000), 1))


def reservation_bound(model: ModelInfo, chat_body: dict[str, Any]) -> Bound:
    """An upper bound of what a chat-shaped request (chat completions, or Responses /
    Messages translated to chat) can cost on any of the model's routes.

    Output: the request's cap (the largest of max_completion_tokens, max_tokens,
    max_output_tokens; raised to an upstream's minimum where one applies), else the
    model's max_output_tokens, else DEFAULT_MAX_OUTPUT (4096: the upstream must then be
    sent that cap for the bound to hold), times `n`. Prices: the highest input and
    output prices that could apply (a cache write can cost twice an input token)."""
    n = chat_body.get("n")
    choices = n if _is_count(n) and n > 1 else 1
    messages = chat_body.get("messages")
    count = len(messages) if isinstance(messages, list) else 1
    inputs = _input_bound(model, chat_body, count)
    return _bound(model.prices, inputs, _output_bound(model, chat_body, choices=choices))


def messages_reservation_bound(model: ModelInfo, body: dict[str, Any]) -> Bound:
    """The same bound for an Anthropic Messages body forwarded as written: every byte of
    its JSON except image and document payloads, which are bounded by Anthropic's
    formula. Thinking counts inside max_tokens, so output is bounded by it.

    Not covered: what Anthropic's server tools (web search, web fetch, code execution)
    add to the prompt while they run; their results can exceed any bound taken from the
    request."""
    messages = body.get("messages")
    count = (len(messages) if isinstance(messages, list) else 1) + 1  # + the system prompt
    inputs = _input_bound(model, body, count)
    return _bound(model.prices, inputs, _output_bound(model, body, choices=1))


def raw_body_bound(model: ModelInfo, raw: bytes, *, max_output: int | None) -> Bound:
    """The simplest bound for a body that is not parsed: every byte of it."""
    output = max_output or model.max_output_tokens or DEFAULT_MAX_OUTPUT
    # Unparsed, the body may ask for cache writes of either lifetime.
    inputs = (len(raw) + BOUND_PER_REQUEST + BOUND_TOOLS, max_input_per_mtok(model.prices))
    return _bound(model.prices, inputs, output)


# =============================================================================
# Output caps: refused when beyond the model, raised to an upstream's minimum
# =============================================================================


class OutputCapError(ValueError):
    """A request's output cap that no upstream would accept: a 400 naming `param`."""

    def __init__(self, param: str, message: str, maximum: int | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.maximum = maximum


def output_cap_check(model: ModelInfo, body: dict[str, Any]) -> None:
    """Raise OutputCapError when max_tokens, max_completion_tokens or max_output_tokens
    is not a positive whole number, or is beyond what any model produces
    (OUTPUT_CEILING). A cap merely above this model's maximum is lowered to it
    (output_cap_clamped): coding agents send their own default (Claude Code 32,000)
    to whatever model they are pointed at."""
    for field_name in OUTPUT_FIELDS:
        value = body.get(field_name)
        if value is None:
            continue
        if not _is_count(value) or value < 1:
            raise OutputCapError(field_name, f"{field_name} must be a positive integer.")
        if value > OUTPUT_CEILING:
            raise OutputCapError(
                field_name,
                f"{field_name} is too large: {value}. {model.public_id} supports at most "
                f"{output_limit(model)} output tokens.",
                maximum=output_limit(model),
            )


def output_limit(model: ModelInfo) -> int:
    """The most output a request may ask of the model: its max_output_tokens, else its
    context window, else OUTPUT_CEILING."""
    return model.max_output_tokens or model.context_window or OUTPUT_CEILING


def output_cap_clamped(model: ModelInfo, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with any output cap above the model's maximum lowered to it (a copy when
    something changes): the upstream would refuse it, and the bound assumes it."""
    limit = output_limit(model)
    high = {f: limit for f in OUTPUT_FIELDS if _is_count(body.get(f)) and body[f] > limit}
    return {**body, **high} if high else body


# OpenAI's Responses API refuses max_output_tokens below 16 ("integer_below_min_value"),
# on OpenAI and on Azure; its reasoning models are given the same floor through chat
# completions, where a smaller cap is spent before the first visible token anyway.
OPENAI_REASONING_MIN_OUTPUT = 16
_OPENAI_REASONING = re.compile(r"(^|/)(o\d|gpt-5)")


def upstream_min_output_tokens(model: ModelInfo) -> int:
    """The smallest output cap every route of `model` accepts (1 when none has a
    floor): a `max_tokens: 1` probe is raised to it before it is sent."""
    floor = 1
    for route in model.routes:
        kind = route.provider.kind
        if kind in ("openai", "azure") and _OPENAI_REASONING.search(route.upstream_model):
            floor = max(floor, OPENAI_REASONING_MIN_OUTPUT)
    return floor


def output_cap_raised(model: ModelInfo, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with any output cap below the upstreams' minimum raised to it (a copy when
    something changes). The bound already counts the raised cap."""
    floor = upstream_min_output_tokens(model)
    low = {f: floor for f in OUTPUT_FIELDS if _is_count(body.get(f)) and body[f] < floor}
    return {**body, **low} if low else body


def output_cap_for_route(
    model: ModelInfo, route: RouteInfo, body: dict[str, Any]
) -> dict[str, Any]:
    """The chat body to send on `route`, with the output cap the bound assumed: a cap
    below the upstreams' floor raised to it, and a body without one given the model's
    max_output_tokens (else DEFAULT_MAX_OUTPUT), so the upstream cannot generate more
    than was reserved. OpenAI itself takes `max_completion_tokens` (its reasoning models
    refuse `max_tokens`); other upstreams `max_tokens`."""
    body = output_cap_raised(model, body)
    if any(_is_count(body.get(f)) for f in OUTPUT_FIELDS):
        return body
    kind = route.provider.kind
    official = kind == "azure" or (kind == "openai" and "api.openai.com" in route.provider.base_url)
    field_name = "max_completion_tokens" if official else "max_tokens"
    return {**body, field_name: model.max_output_tokens or DEFAULT_MAX_OUTPUT}


# =============================================================================
# What a small balance can run at once
# =============================================================================


def concurrent_capacity(
    balance: int,
    model: ModelInfo,
    *,
    output_tokens: int = DEFAULT_MAX_OUTPUT,
    prompt_bytes: int = 0,
) -> int:
    """How many requests of one short message (plus `prompt_bytes` of text) asking for
    `output_tokens` can be admitted at once on `balance` credits: each reserves its
    bound until it settles."""
    body = {
        "messages": [{"role": "user", "content": "x" * prompt_bytes}],
        "max_tokens": output_tokens,
    }
    per_request = reservation_bound(model, body).credits
    return max(balance, 0) // per_request
