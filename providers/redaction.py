"""Removing upstream secrets where they can enter what the gateway sends out.

An upstream secret reaches an answer only through what an upstream says about a
failure, or about itself: the message of a non-2xx answer, an error event inside a
200 stream (or an error a chunk carries), the `error` object of a 2xx body (OpenRouter
answers 200 with an error when generation fails), and its headers (only the content
type is passed on). Those texts are cleaned here, at the point they enter, and nothing
else is looked at: what the customer wrote and what the model said go out untouched.

The cleaning goes by the *shape* of a credential, never by the values of the
operator's keys: prefixed keys (sk-..., sk-ant-..., AIza..., gsk_...), Authorization
values (Bearer ...), `key=...` / `api key: ...`, masked renderings ("sk-pr****a1b2",
"sk-...a1b2", "••••a1b2"), the end after "ending in", and long random-looking tokens
(an Azure key is 32 hex digits). A cleaning that looked for the keys' values would
answer, through what comes back, whether a customer's guess is a piece of one: an
oracle that gives a key away a character at a time (issue 21).

Staff-only text (the health page's last error, the key test, logs) may also have the
known secrets replaced by value (`for_staff`): staff do not choose what it says.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson

REDACTED = "[redacted]"
MAX_ERROR_MESSAGE = 500
# What the client is told when the upstream refused the operator's key, in place of
# the upstream's words (which may quote it, or describe the operator's account).
KEY_REFUSED = "The upstream refused the request; retry in a few seconds."

_KEY = r"[A-Za-z0-9_\-]"
_SHAPES = re.compile(
    "|".join(
        (
            # An Authorization header's value.
            r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/\-]+=*",
            # Keys whose prefix says what they are: OpenAI and every compatible upstream
            # (sk-, sk-proj-, sk-or-v1-...), Anthropic (sk-ant-), Google (AIza), Groq,
            # xAI, Fireworks, NVIDIA, Perplexity, Hugging Face, GitHub, Stripe.
            rf"\b(?:sk|pk|rk|sess)[-_]{_KEY}{{6,}}",
            rf"\bAIza{_KEY}{{8,}}",
            rf"\b(?:gsk|xai|fw|nvapi|pplx|hf|ghp|gho|github_pat|whsec|sk_live|sk_test|rk_live)"
            rf"[-_]{_KEY}{{6,}}",
            # key=..., api_key: "...", x-api-key: ..., "api key: ****a1b2".
            r"\b(?:x-goog-api-key|x-api-key|api[-_ ]?key|access[-_ ]?token|auth[-_ ]?token"
            r"|subscription[-_ ]?key|key|token|secret|password|credential)s?[\"']?\s*[=:]\s*"
            r"[\"'`]?[^\s\"'`,;&)}\]]{8,}",
            # Masked renderings: a mask with whatever it shows of the key on either side.
            rf"{_KEY}*(?:\*{{2,}}|(?:\u2022){{2,}}|x{{4,}}|X{{4,}}){_KEY}*",
            rf"{_KEY}+(?:\.{{3}}|\u2026){_KEY}+",
            rf"(?<![\w.])(?:\.{{3}}|\u2026|\u2022){_KEY}{{3,}}",
        )
    ),
    re.IGNORECASE,
)
# "The key ending in a1b2", "ends with: \"a1b2\"", "last 4 characters: a1b2".
_END = re.compile(
    r"(?P<lead>\b(?:end(?:s|ing|ed)?\s+(?:in|with)|last\s+\d+\s+(?:characters?|chars|digits))"
    r"[\s:\"'`\\]*)"
    rf"{_KEY}{{2,}}",
    re.IGNORECASE,
)
_TOKEN = re.compile(rf"{_KEY}{{20,}}")
_HEX = re.compile(r"[0-9a-fA-F\-]+")
# Object ids an upstream may name in an error (the caller's own response, message or
# call ids): long and random, but not credentials.
_ID_PREFIXES = (
    "resp_", "msg_", "rs_", "fc_", "ctc_", "call_", "toolu_", "srvtoolu_", "chatcmpl-",
    "file-", "batch_", "cmp_", "req_",
)  # fmt: skip


def _key_like(token: str) -> bool:
    """A long token that looks random rather than like a name: both cases and digits,
    hex digits only (Azure's keys), or mixed over a length no name has. Model names
    ("gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022") are none of these."""
    if token.startswith(_ID_PREFIXES):
        return False
    digit = any(c.isdigit() for c in token)
    upper = any(c.isupper() for c in token)
    lower = any(c.islower() for c in token)
    if upper and lower and digit:
        return True
    if len(token) >= 24 and digit and _HEX.fullmatch(token) and (upper or lower):
        return True
    return len(token) >= 32 and ((digit and (upper or lower)) or (upper and lower))


def _long_token(match: re.Match[str]) -> str:
    return REDACTED if _key_like(match.group()) else match.group()


def scrub(text: str) -> str:
    """`text` (an upstream's words) without anything shaped like a credential. The
    same text always gives the same result, whatever keys the catalogue holds."""
    text = _SHAPES.sub(REDACTED, text)
    text = _END.sub(lambda m: m.group("lead") + REDACTED, text)
    return _TOKEN.sub(_long_token, text)


def client_message(text: str) -> str:
    """An upstream's error message fit for a client: scrubbed and cut to a sane length."""
    return scrub(text)[:MAX_ERROR_MESSAGE]


def scrub_json(value: Any) -> Any:
    """Every string in a JSON value scrubbed (keys too: an upstream may put anything
    anywhere in an error object)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_json(v) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k)): scrub_json(v) for k, v in value.items()}
    return value


def scrub_event(frame: bytes) -> bytes:
    """An upstream's server-sent event that reports an error, scrubbed line by line:
    JSON data keeps its structure (a client parses it), anything else is text."""
    out = []
    for line in frame.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            try:
                cleaned = orjson.dumps(scrub_json(orjson.loads(payload)))
            except orjson.JSONDecodeError:
                cleaned = scrub(payload.decode("utf-8", "replace")).encode()
            out.append(b"data: " + cleaned)
        else:
            out.append(scrub(line.decode("utf-8", "replace")).encode())
    return b"\n".join(out)


# A top-level "error" whose value is not null: the only part of a 2xx body an upstream
# writes about itself. (Inside a JSON string its quotes would be escaped.)
_ERROR_MEMBER = re.compile(rb'"error"\s*:\s*[^n\s]')


def client_body(content: bytes, content_type: str) -> bytes:
    """A 2xx body on its way to the client: untouched, unless it is JSON with an
    `error` object, which is scrubbed (the rest of the body is the model's)."""
    if "json" not in content_type or not _ERROR_MEMBER.search(content):
        return content
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content
    if not isinstance(data, dict) or not data.get("error"):
        return content
    return orjson.dumps({**data, "error": scrub_json(data["error"])})


_MEDIA_TYPE = re.compile(r"[\w.+\-]{1,64}/[\w.+\-]{1,64}")
_CHARSET = re.compile(r";\s*charset=[\w\-]{1,32}", re.IGNORECASE)


@functools.lru_cache(maxsize=64)  # a handful of values, on every whole answer
def media_type(value: str | None, default: str) -> str:
    """An upstream's Content-Type, reduced to its type and charset (the only header
    of an upstream's passed on to the client)."""
    if not value:
        return default
    kind, _, rest = value.partition(";")
    kind = kind.strip()
    if not _MEDIA_TYPE.fullmatch(kind):
        return default
    charset = _CHARSET.match(";" + rest.strip()) if rest else None
    return kind + (charset.group() if charset else "")


def for_staff(text: str, *secrets: str) -> str:
    """Text staff see (a key's last error, the key test's answer) or logs: the
    secrets given replaced wherever they appear, then scrubbed as for a client."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return client_message(text)
