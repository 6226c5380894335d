"""Removing upstream secrets from anything on its way to a client.

Every upstream key the catalogue knows is removed wherever it appears: whole, as any
piece of FRAGMENT characters or more (an upstream that quotes part of a key, or a
secret cut by a chunk boundary), and as the masked renderings upstreams use to hint at
a key ("sk-pr********a1b2", "key ending in a1b2"). What is removed becomes
"[redacted]", with no hint of which key it was.

`redact_bytes` runs on every outgoing chunk, so its common case must cost almost
nothing. A chunk is cut into tokens in C (`bytes.translate` of every character a key
cannot hold to a space, then `split`), and only tokens never seen before are looked
at in Python: one that could hold a piece of a secret, or be the visible end of a
masked one, sends the chunk to the exact patterns; every other is remembered as
clean. Model output repeats its tokens (ids, field names, words), so a chunk costs
a few microseconds whatever its length (14 µs per 2.7 KB, where the exact look
costs 67). The patterns and the memory of clean tokens are rebuilt when the catalogue
snapshot changes its set of secrets.

`redact_error` is for upstream error messages only: besides the known secrets it
removes anything shaped like a credential (Bearer tokens, sk-... keys, key=...), which
would be too eager for model output.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from providers import catalogue

FRAGMENT = 10  # the shortest piece of a secret removed on its own
MIN_TAIL = 3  # the shortest end of a secret removed after a mask or "ending in"
REDACTED = "[redacted]"
MAX_ERROR_MESSAGE = 500

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_MASK = r"(?:\*{2,}|(?:•){2,}|(?:…)|\.{3}|x{4,})"
# The end may be quoted, and in JSON its quote is escaped (\").
_ENDS = r"(?i:\bend(?:s|ing|ed)?\s+(?:in|with)\b)[\s:\"'`\\]*"
_GENERIC = re.compile(
    r"(?:Bearer\s+[A-Za-z0-9._~+/\-]+=*"
    r"|\bsk-[A-Za-z0-9_\-]{8,}"
    r"|\b(?:api[_-]?key|key|token|secret)\s*[=:]\s*[\"']?[A-Za-z0-9_\-]{8,}"
    r"|[A-Za-z0-9_\-]*\*{3,}[A-Za-z0-9_\-]+)",
    re.IGNORECASE,
)


def _trie(words: Iterable[str]) -> str:
    """A regex matching any of `words`, as a trie: shared prefixes are tried once."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def walk(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + walk(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return walk(root)


@dataclass(frozen=True)
class _Patterns:
    secrets: frozenset[str]
    # Runs of the characters secrets are made of, at least FRAGMENT long.
    text_runs: re.Pattern[str] | None = None
    data_runs: re.Pattern[bytes] | None = None
    grams: frozenset[str | bytes] = frozenset()  # every _GRAM-long piece of every secret
    pieces: frozenset[str | bytes] = frozenset()  # every FRAGMENT-long piece
    text_hints: re.Pattern[str] | None = None  # masked renderings, "ending in ..."
    data_hints: re.Pattern[bytes] | None = None
    # The fast look at outgoing bytes (`_suspect`), when every secret is made of
    # _KEY_CHARS only (every real provider key is): key characters kept, others spaces.
    tokens: bytes | None = None
    tails: frozenset[bytes] = frozenset()  # every MIN_TAIL..FRAGMENT-1 end of a secret
    clean: set[bytes] = field(default_factory=set)  # tokens seen to hold nothing


# A run of FRAGMENT characters that holds a piece of a secret holds one of its _GRAM-long
# pieces starting at a multiple of _STRIDE in the run (_GRAM + _STRIDE - 1 == FRAGMENT):
# a cheap first look at each run, made exact only when it finds something.
_GRAM, _STRIDE = 6, 5


def _pieces(secrets: list[str], size: int) -> frozenset[str | bytes]:
    """Every `size`-long piece of every secret, as text and as UTF-8 bytes."""
    found: set[str | bytes] = set()
    for secret in secrets:
        for form in (secret, secret.encode()):
            found.update(form[i : i + size] for i in range(len(form) - size + 1))
    return frozenset(found)


def _compile(secrets: frozenset[str]) -> _Patterns:
    usable = [s for s in secrets if len(s) >= FRAGMENT]
    if not usable:
        return _Patterns(secrets)
    chars = set(_KEY_CHARS).union(*usable)
    run = f"[{''.join(re.escape(c) for c in sorted(chars))}]{{{FRAGMENT},}}"
    tails = {s[-n:] for s in usable for n in range(MIN_TAIL, FRAGMENT)}
    tail = _trie(tails)
    hints = f"{_MASK}\\s?(?:{tail})(?![A-Za-z0-9_\\-])|{_ENDS}(?:{tail})(?![A-Za-z0-9_\\-])"
    key_only = chars == set(_KEY_CHARS)
    return _Patterns(
        secrets,
        text_runs=re.compile(run),
        data_runs=re.compile(run.encode()),
        grams=_pieces(usable, _GRAM),
        pieces=_pieces(usable, FRAGMENT),
        text_hints=re.compile(hints),
        data_hints=re.compile(hints.encode()),
        tokens=_TOKENS if key_only else None,
        tails=frozenset(t.encode() for t in tails),
    )


_TOKENS = bytes(b if chr(b) in _KEY_CHARS else 32 for b in range(256))
_CLEAN_MAX = 20_000  # tokens remembered as clean (about 2 MB), then forgotten at once

_lock = threading.Lock()
_current = _Patterns(frozenset(), None, None)
_source: object = None  # the catalogue snapshot the patterns were built from
_extra: frozenset[str] = frozenset()


def _catalogue_secrets(snapshot: object) -> frozenset[str]:
    found: set[str] = set()
    for model in getattr(snapshot, "models", {}).values():
        for route in model.routes:
            found.update(key.secret for key in route.provider.keys)
    return frozenset(found)


def _patterns() -> _Patterns:
    """The patterns for the current catalogue snapshot (rebuilt when its secrets change)."""
    global _current, _source
    # Peeks at the snapshot without refreshing it: this runs on the event loop, and a
    # refresh may read the database. Any request that reached an upstream loaded it.
    snapshot = catalogue.current()
    if snapshot is _source:
        return _current
    with _lock:
        if snapshot is not _source:
            secrets = _catalogue_secrets(snapshot) | _extra
            if secrets != _current.secrets:
                _current = _compile(secrets)
            _source = snapshot
    return _current


def also_redact(secrets: Iterable[str]) -> None:
    """Add secrets the catalogue snapshot does not hold (a key being tested by staff)."""
    global _extra, _source
    with _lock:
        _extra = _extra | frozenset(s for s in secrets if s)
        _source = object()  # rebuild on next use


def _holds_piece(run: str | bytes, p: _Patterns) -> bool:
    grams = p.grams
    for i in range(0, len(run) - _GRAM + 1, _STRIDE):
        if run[i : i + _GRAM] in grams:
            pieces = p.pieces
            return any(run[j : j + FRAGMENT] in pieces for j in range(len(run) - FRAGMENT + 1))
    return False


def _hinted(text: Any) -> bool:
    """Whether a text (str or bytes) could hold a masked key or an "ending in" hint:
    plain `in` tests, much cheaper than any regex over the whole chunk."""
    if isinstance(text, bytes):
        return (
            b"**" in text or b"..." in text or b"\xe2\x80" in text or b"xxxx" in text
            or b"nding " in text or b"nds " in text or b"nded " in text
        )  # fmt: skip
    return (
        "**" in text or "..." in text or "\u2026" in text or "\u2022" in text
        or "xxxx" in text or "nding " in text or "nds " in text or "nded " in text
    )  # fmt: skip


def _redact(text: str, p: _Patterns) -> str:
    spans = []
    assert p.text_runs is not None and p.text_hints is not None
    for match in p.text_runs.finditer(text):
        if _holds_piece(match.group(), p):
            spans.append(match.span())
    if _hinted(text):
        for m in p.text_hints.finditer(text):
            start = m.start()
            # A mask's visible beginning ("sk-pr" of "sk-pr****a1b2") goes with it.
            while start > 0 and text[start - 1] in _KEY_CHARS:
                start -= 1
            spans.append((start, m.end()))
    if not spans:
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        if end <= last:
            continue
        out += [text[last : max(start, last)], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)


def redact_text(text: str) -> str:
    """`text` without any upstream secret the catalogue knows, whole or in part."""
    p = _patterns()
    if p.text_runs is None or not text:
        return text
    return _redact(text, p)


def _suspect(data: bytes, p: _Patterns) -> bool:
    """Whether `data` may hold a piece of a secret or a masked one's end: False is
    certain, True sends it to the exact patterns. A token (a maximal run of key
    characters) holds every piece of a secret it could, and the end a mask shows is a
    whole token or, in the two cases below, the end of one."""
    assert p.tokens is not None
    clean = p.clean
    new = set(data.translate(p.tokens).split())
    new.difference_update(clean)
    tails = p.tails
    for token in new:
        if token in tails:
            return True
        if len(token) >= FRAGMENT and _holds_piece(token, p):
            return True
        # Inside a token, a shown end follows an "xxxx" mask, or "in"/"with" when it
        # starts with a "-" ("ending with-a1b2" is a word boundary).
        if (b"xxxx" in token or b"-" in token) and any(
            token[-n:] in tails for n in range(MIN_TAIL, FRAGMENT)
        ):
            return True
    if len(clean) > _CLEAN_MAX:
        clean.clear()
    clean.update(new)
    return False


def redact_bytes(data: bytes) -> bytes:
    """`redact_text` for bytes on their way out (bodies, SSE events). Secrets are ASCII
    or UTF-8; a chunk is searched as it is, so a secret cut by a chunk boundary loses
    every piece of FRAGMENT characters or more, not necessarily a shorter end."""
    p = _patterns()
    if p.data_runs is None or not data:
        return data
    if p.tokens is not None:
        if not _suspect(data, p):
            return data
    elif not _found(data, p):
        return data
    # Rare: found something. Redact on text, where both patterns apply in one place.
    return _redact(data.decode("utf-8", "surrogateescape"), p).encode("utf-8", "surrogateescape")


def _found(data: bytes, p: _Patterns) -> bool:
    """The exact look, for secrets with characters keys seldom hold."""
    assert p.data_runs is not None and p.data_hints is not None
    if any(_holds_piece(m.group(), p) for m in p.data_runs.finditer(data)):
        return True
    return _hinted(data) and p.data_hints.search(data) is not None


def redact_error(text: str, *secrets: str) -> str:
    """An upstream's error message fit for a client: the known secrets and `secrets`
    removed, then anything else shaped like a credential, and cut to a sane length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _GENERIC.sub(REDACTED, redact_text(text))
    return text[:MAX_ERROR_MESSAGE]
