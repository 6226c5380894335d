"""The redaction of upstream secrets from outgoing bytes: the fast look at a chunk
(`redact_bytes`) must find everything the exact patterns find, on any text."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable

import pytest

from providers import redaction
from tests.gateway.test_faults_secrets import messages_quoting

OPENAI = "sk-proj-" + secrets.token_urlsafe(36)
ANTHROPIC = "sk-ant-api03-" + secrets.token_urlsafe(36)
AZURE = secrets.token_hex(16)
DASHED = "sk-" + secrets.token_hex(16) + "-ab12c"  # an end that starts with a "-"
DOTTED = (
    "tok." + secrets.token_hex(8) + "." + secrets.token_hex(4)
)  # a character keys seldom hold: the exact path


@pytest.fixture
def redacting(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Redact as if the catalogue held `keys`."""

    def use(*keys: str) -> None:
        patterns = redaction._compile(frozenset(keys))
        monkeypatch.setattr(redaction, "_patterns", lambda: patterns)

    return use


def exact(data: bytes, *keys: str) -> bytes:
    """What the exact patterns make of `data`, chunk as a whole."""
    p = redaction._compile(frozenset(keys))
    return redaction._redact(data.decode("utf-8", "surrogateescape"), p).encode(
        "utf-8", "surrogateescape"
    )


def quoting(secret: str) -> list[str]:
    """The ways upstreams put a key in an error message, and other masks."""
    return [
        *messages_quoting(secret),
        f"Incorrect API key provided: {secret[:3]}xxxxxxxx{secret[-5:]}",
        f"key: {secret[:5]}...{secret[-4:]}",
        f"key \u2022\u2022\u2022\u2022{secret[-4:]} refused",
        f'The key ends with: "{secret[-3:]}"',
        f"cut at the chunk's end: {secret[:12]}",
    ]


@pytest.mark.parametrize(
    "keys",
    [(OPENAI, ANTHROPIC, AZURE), (DOTTED, OPENAI)],
    ids=["provider keys", "a key with a dot"],
)
def test_every_quoted_form_is_redacted_as_the_exact_patterns_do(
    redacting: Callable[..., None], keys: tuple[str, ...]
) -> None:
    redacting(*keys)
    for secret in keys:
        for message in quoting(secret):
            for data in (message.encode(), _sse(message)):
                out = redaction.redact_bytes(data)
                assert out == exact(data, *keys)
                assert b"[redacted]" in out


def test_an_end_that_starts_with_a_dash_is_redacted_right_after_ending_with(
    redacting: Callable[..., None],
) -> None:
    redacting(DASHED)
    for data in (
        f"key ends with{DASHED[-6:]}".encode(),
        _sse(f"The key ending with{DASHED[-6:]}."),
    ):
        out = redaction.redact_bytes(data)
        assert out == exact(data, DASHED)
        assert DASHED[-6:].encode() not in out


def test_a_chunk_of_clean_tokens_seen_before_still_gives_away_a_new_secret(
    redacting: Callable[..., None],
) -> None:
    redacting(OPENAI)
    clean = _sse("The answer is 42, and the id is chatcmpl-abc123def456.")
    for _ in range(3):
        assert redaction.redact_bytes(clean) is clean  # untouched, not even copied
    leaked = _sse(f"The answer is 42, and the id is chatcmpl-abc123def456 {OPENAI}.")
    assert OPENAI[8:20].encode() not in redaction.redact_bytes(leaked)


def test_ordinary_text_with_mask_like_characters_is_left_alone(
    redacting: Callable[..., None],
) -> None:
    redacting(OPENAI, ANTHROPIC)
    for text in ("**bold** and... xxxx", "The upstream ends in a river.", "\u2026 \u2022\u2022"):
        data = _sse(text)
        assert redaction.redact_bytes(data) is data


def test_random_text_around_secrets_is_redacted_as_the_exact_patterns_do(
    redacting: Callable[..., None],
) -> None:
    """Text made of words, masks, phrases and pieces and ends of the secrets, cut
    anywhere: whatever the fast look lets through, the exact patterns let through."""
    keys = (OPENAI, AZURE, DASHED)
    redacting(*keys)
    rng = random.Random(20261202)
    parts = ["the", "key", "ending in", "ends with", "***", "...", "\u2026", "xxxx", " ", '"', ":"]
    parts += ["-", "_", "\\"]
    parts += ["chatcmpl-9a8b7c", "Hello", "**", "\\n", "data: "]
    for secret in keys:
        parts += [secret, secret[-4:], secret[-6:], secret[:6], secret[10:22], secret[3:14]]
    for _ in range(5_000):
        text = "".join(rng.choice(parts) + rng.choice(("", " ", "")) for _ in range(8))
        data = text.encode()[: rng.randint(1, len(text.encode()))]
        assert redaction.redact_bytes(data) == exact(data, *keys), data


def _sse(text: str) -> bytes:
    content = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'data: {{"choices":[{{"delta":{{"content":"{content}"}}}}]}}\n\n'.encode()
