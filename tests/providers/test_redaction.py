"""The cleaning of what upstreams say about a failure: credentials go by their shape,
whatever keys the catalogue holds, in the texts real providers write; ordinary words
and ids stay."""

from __future__ import annotations

import secrets

import orjson
import pytest

from providers import redaction
from providers.redaction import REDACTED, client_body, for_staff, media_type, scrub, scrub_event

OPENAI = "sk-proj-" + secrets.token_urlsafe(36)
ANTHROPIC = "sk-ant-api03-" + secrets.token_urlsafe(36)
GOOGLE = "AIzaSy" + secrets.token_urlsafe(25)[:33]
AZURE = secrets.token_hex(16)
GROQ = "gsk_" + secrets.token_urlsafe(39)


# (what an upstream said, the part of it that must not survive)
PROVIDER_TEXTS = [
    # OpenAI's 401 masks the middle and shows both ends.
    (
        f"Incorrect API key provided: {OPENAI[:8]}{'*' * 40}{OPENAI[-4:]}. You can find your "
        "API key at https://platform.openai.com/account/api-keys.",
        OPENAI[-4:],
    ),
    (f"Incorrect API key provided: {OPENAI}.", OPENAI[8:20]),
    # xAI shows two characters at each end.
    (
        f"Incorrect API key provided: {GROQ[:2]}***{GROQ[-2:]}. You can obtain an API key "
        "from https://console.x.ai.",
        f"***{GROQ[-2:]}",
    ),
    # DeepSeek and other compatible upstreams.
    ("Authentication Fails, Your api key: ****a1b2 is invalid", "a1b2"),
    (f"The key ending in {AZURE[-6:]} is not valid.", AZURE[-6:]),
    (f'The key ends with: "{ANTHROPIC[-3:]}"', ANTHROPIC[-3:]),
    (f"key \u2022\u2022\u2022\u2022{GOOGLE[-4:]} refused", GOOGLE[-4:]),
    (f"key: {OPENAI[:5]}...{OPENAI[-4:]}", OPENAI[-4:]),
    # Google quotes the key when a consumer is suspended.
    (f"Permission denied: Consumer 'api_key:{GOOGLE}' has been suspended.", GOOGLE[6:18]),
    (f"see https://generativelanguage.googleapis.com/v1beta/models?key={GOOGLE}", GOOGLE[6:18]),
    (f"Invalid header: Authorization: Bearer {ANTHROPIC}", ANTHROPIC[13:25]),
    (f"Invalid header: x-api-key: {AZURE}", AZURE[:12]),
    (f"Bad credential '{OPENAI[5:-5]}' (part of it).", OPENAI[10:22]),
    (f"subscription {AZURE} has no quota", AZURE[:12]),
    (f"Rate limit reached in organization org-{secrets.token_hex(4)}AbCdEfGhIj.", "AbCdEfGhIj"),
]


@pytest.mark.parametrize(("text", "secret_part"), PROVIDER_TEXTS)
def test_what_providers_write_about_a_key_loses_every_part_of_it(
    text: str, secret_part: str
) -> None:
    cleaned = scrub(text)
    assert secret_part not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Invalid 'max_tokens': integer above maximum value. Expected a value <= 16384, "
        "but got 100000 instead.",
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130000 tokens.",
        "The model `gpt-4o-mini-2024-07-18` does not support 'audio'.",
        "claude-3-5-sonnet-20241022: prompt is too long: 205351 tokens > 200000 maximum",
        "Previous response with id 'resp_68af1234567890abcdef1234567890abcdef12345678' not found.",
        "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
        "Invalid value for 'unsupported_country_region_territory'. Wait... then retry.",
        "The upstream ends in a river.",
    ],
)
def test_ordinary_error_texts_are_left_as_they_are(text: str) -> None:
    assert scrub(text) == text


def test_the_cleaning_reads_no_secret_and_no_catalogue() -> None:
    """What makes it no oracle: the result is a function of the text alone."""
    assert not hasattr(redaction, "catalogue")
    right, wrong = OPENAI[10:20], "".join(secrets.choice("abcdefgh") for _ in range(10))
    for template in ("echo {}", "key ending in {}", "****{}", "sk-{}"):
        assert scrub(template.format(right)).replace(right, "?") == scrub(
            template.format(wrong)
        ).replace(wrong, "?")


def test_an_error_event_keeps_its_shape_and_loses_the_key() -> None:
    frame = (
        b"event: error\ndata: "
        + orjson.dumps(
            {"type": "error", "error": {"type": "api_error", "message": f"bad key {ANTHROPIC}"}}
        )
        + b"\n\n"
    )
    cleaned = scrub_event(frame)
    assert cleaned.startswith(b"event: error\ndata: ") and cleaned.endswith(b"\n\n")
    event = orjson.loads(cleaned.split(b"data: ", 1)[1])
    assert event == {
        "type": "error",
        "error": {"type": "api_error", "message": "bad key [redacted]"},
    }


def test_a_2xx_body_loses_only_what_its_error_object_says() -> None:
    text = f"the model wrote {OPENAI}"  # the model's words: untouched
    body = orjson.dumps(
        {
            "id": "gen-1",
            "choices": [{"message": {"content": text}, "finish_reason": "error"}],
            "error": {"code": 502, "message": f"provider said: key {OPENAI} invalid"},
        }
    )
    cleaned = orjson.loads(client_body(body, "application/json"))
    assert cleaned["choices"][0]["message"]["content"] == text
    assert cleaned["error"] == {"code": 502, "message": "provider said: key [redacted] invalid"}
    ordinary = orjson.dumps({"id": "resp_1", "error": None, "output_text": OPENAI})
    assert client_body(ordinary, "application/json") is ordinary
    assert client_body(body, "audio/mpeg") is body


def test_only_an_upstreams_media_type_and_charset_are_passed_on() -> None:
    assert media_type("audio/mpeg", "application/octet-stream") == "audio/mpeg"
    assert media_type("application/json; charset=utf-8", "x") == "application/json;charset=utf-8"
    assert media_type(f"text/plain; key={OPENAI}", "x") == "text/plain"
    assert media_type(OPENAI, "application/octet-stream") == "application/octet-stream"
    assert media_type(None, "application/json") == "application/json"


def test_staff_text_also_loses_the_key_it_is_about_whatever_its_shape() -> None:
    odd = "tok." + secrets.token_hex(4)  # too short and too odd for any shape
    assert for_staff(f"upstream said {odd} is wrong", odd) == "upstream said [redacted] is wrong"
