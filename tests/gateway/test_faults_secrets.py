"""No upstream secret ever reaches a client: each upstream fault quotes the upstream
key in its message, in every client dialect, streamed and not, from an OpenAI-kind and
an Anthropic-kind upstream, and every byte the client got (status line, headers, body)
is scanned for the key, for any piece of it, and for its last characters."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.anthropic import FakeAnthropic, anthropic_error
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

OPENAI_SECRET = "sk-proj-" + secrets.token_urlsafe(36)
ANTHROPIC_SECRET = "sk-ant-api03-" + secrets.token_urlsafe(36)
HELLO = [{"role": "user", "content": "hi"}]

# What the client sends, per dialect.
DIALECTS = {
    "chat": ("/v1/chat/completions", lambda model: {"model": model, "messages": HELLO}),
    "messages": (
        "/v1/messages",
        lambda model: {"model": model, "messages": HELLO, "max_tokens": 50},
    ),
    "responses": ("/v1/responses", lambda model: {"model": model, "input": "hi"}),
}
UPSTREAMS = {"openai": "gpt-4o", "anthropic": "claude-sonnet"}


def messages_quoting(secret: str) -> list[str]:
    """The ways upstreams put a key in an error message."""
    return [
        f"Incorrect API key provided: {secret}.",
        f"Incorrect API key provided: {secret[:7]}{'*' * 20}{secret[-4:]}.",
        f"The key ending in {secret[-6:]} is not valid.",
        f"Bad credential '{secret[5:-5]}' (part of it).",
    ]


# fault name -> applies it to the fake (with the secret it serves under)
def _status(status: int, which: int = 0):  # type: ignore[no-untyped-def]
    def apply(fake: FakeOpenAI | FakeAnthropic, secret: str) -> None:
        message = messages_quoting(secret)[which]
        body = (
            anthropic_error(status, message)
            if isinstance(fake, FakeAnthropic)
            else openai_error(status, message)
        )
        fake.fail_next(status, body, times=5)

    return apply


def _mid_stream(fake: FakeOpenAI | FakeAnthropic, secret: str) -> None:
    fake.error_mid_stream_after = 1
    fake.stream_error_message = messages_quoting(secret)[0]


def _garbage(fake: FakeOpenAI | FakeAnthropic, secret: str) -> None:
    body = f"data: {{not json, key {secret}\n\n"
    fake.fail_next(200, body, times=5, content_type="text/event-stream")


FAULTS = {
    "400 quoting the key": _status(400),
    "400 with a masked key": _status(400, 1),
    "400 with the key's end": _status(400, 2),
    "400 with a piece of the key": _status(400, 3),
    "401 quoting the key": _status(401),
    "403 quoting the key": _status(403),
    "429 quoting the key": _status(429),
    "500 quoting the key": _status(500),
    "error event quoting the key": _mid_stream,
    "garbage 200 quoting the key": _garbage,
}


def leaks(data: bytes, secret: str) -> list[str]:
    """Every sign of `secret` in `data`: the whole, any 8 characters of it, its end."""
    text = data.decode("utf-8", "replace")
    found = [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in text]
    if secret[-4:] in text:
        found.append(f"ends in {secret[-4:]}")
    return found


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeAnthropic]]:
    with (
        FakeOpenAI(expected_key=OPENAI_SECRET) as oai,
        FakeAnthropic(expected_key=ANTHROPIC_SECRET) as claude,
    ):
        yield oai, claude


@pytest.fixture
def client(
    gateway: AsgiServer, fakes: tuple[FakeOpenAI, FakeAnthropic], transactional_db: None
) -> Customer:
    oai, claude = fakes
    oai.reset()
    claude.reset()
    openai = add_provider("openai", oai.base_url + "/v1", OPENAI_SECRET, timeout=5)
    anthropic = add_provider("anthropic", claude.base_url, ANTHROPIC_SECRET, kind="anthropic")
    add_model("gpt-4o", (openai, "gpt-4o"))
    add_model("claude-sonnet", (anthropic, "claude-sonnet-4-5"), max_output_tokens=1024)
    return customer_for(gateway)


def _cases() -> Iterator[object]:
    for fault in FAULTS:
        for stream in (False, True):
            if fault.startswith("error event") and not stream:
                continue
            for dialect in DIALECTS:
                for upstream in UPSTREAMS:
                    yield pytest.param(
                        fault, stream, dialect, upstream,
                        id=f"{fault}-{'stream' if stream else 'json'}-{dialect}-{upstream}",
                    )  # fmt: skip


@pytest.mark.parametrize(("fault", "stream", "dialect", "upstream"), list(_cases()))
def test_no_byte_the_client_gets_carries_an_upstream_secret(
    client: Customer, gateway: AsgiServer, fakes: tuple[FakeOpenAI, FakeAnthropic],
    fault: str, stream: bool, dialect: str, upstream: str,
) -> None:  # fmt: skip
    fake, secret = (fakes[0], OPENAI_SECRET) if upstream == "openai" else (
        fakes[1], ANTHROPIC_SECRET,
    )  # fmt: skip
    FAULTS[fault](fake, secret)
    path, body = DIALECTS[dialect]
    with httpx.stream(
        "POST",
        gateway.base_url + path,
        json={**body(UPSTREAMS[upstream]), "stream": stream},
        headers={"authorization": f"Bearer {client.key.secret}"},
        timeout=30,
    ) as response:
        received = b"".join(response.iter_raw())
        head = f"{response.status_code} {response.reason_phrase}\r\n".encode()
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in response.headers.items())
    assert fake.requests, "the fault never reached the upstream"
    assert leaks(head + received, secret) == [], received[:2000]


# A credential the gateway has never seen (OpenRouter's own key, say, quoted by an
# upstream that routes on): removed by its shape, as nothing knows its value.
FOREIGN = "sk-or-v1-" + secrets.token_hex(32)


def _stream_cases() -> Iterator[object]:
    for dialect in DIALECTS:
        for upstream in UPSTREAMS:
            yield pytest.param(dialect, upstream, id=f"{dialect}-{upstream}")


@pytest.mark.parametrize(("dialect", "upstream"), list(_stream_cases()))
def test_an_error_event_inside_a_200_stream_loses_a_credential_nobody_catalogued(
    client: Customer, gateway: AsgiServer, fakes: tuple[FakeOpenAI, FakeAnthropic],
    dialect: str, upstream: str,
) -> None:  # fmt: skip
    fake = fakes[0] if upstream == "openai" else fakes[1]
    fake.error_mid_stream_after = 1
    fake.stream_error_message = f"The upstream refused key {FOREIGN} for this project."
    path, body = DIALECTS[dialect]
    with httpx.stream(
        "POST",
        gateway.base_url + path,
        json={**body(UPSTREAMS[upstream]), "stream": True},
        headers={"authorization": f"Bearer {client.key.secret}"},
        timeout=30,
    ) as response:
        received = b"".join(response.iter_raw())
    assert response.status_code == 200
    # The stream ended with the upstream's error event, its words kept, the key not.
    assert b"The upstream refused key [redacted] for this project." in received, received
    assert leaks(received, FOREIGN) == []


def test_a_200_answer_that_reports_an_error_loses_the_credentials_it_quotes(
    client: Customer, gateway: AsgiServer, fakes: tuple[FakeOpenAI, FakeAnthropic]
) -> None:
    """OpenRouter answers 200 with an `error` object when generation fails; what the
    model had written is the customer's and stays as it came."""
    fake = fakes[0]
    body = {
        "id": "gen-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "error",
                     "message": {"role": "assistant", "content": "Partial answer"}}],
        "error": {"code": 502, "message": f"Provider refused key {FOREIGN}",
                  "metadata": {"raw": f"Authorization: Bearer {FOREIGN}"}},
    }  # fmt: skip
    fake.fail_next(200, body)
    response = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO},
        headers={"authorization": f"Bearer {client.key.secret}"},
        timeout=30,
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["choices"][0]["message"]["content"] == "Partial answer"
    assert answer["error"]["message"] == "Provider refused key [redacted]"
    assert leaks(response.content, FOREIGN) == []
