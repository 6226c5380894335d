"""An extraction run against the echo learns nothing about the upstream keys.

A customer controls bytes that come back: `/v1/responses` echoes `instructions`, and a
model repeats what it is told. If anything on their way out changed depending on the
operator's keys (a "redaction" of pieces of them), sending guesses and seeing which
come back changed would give a key away a character at a time (issue 21, finding 1).
Here, for every upstream key in the catalogue, every guess an attacker would make (any
10 characters of it, its last 3 to 9 characters after a mask or "ending in", the whole
key) comes back byte for byte as sent, exactly like a wrong guess of the same shape:
there is nothing to tell them apart."""

from __future__ import annotations

import random
import secrets
import string
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

# Upstream keys shaped as each provider makes them.
OPENAI_KEY = "sk-proj-" + secrets.token_urlsafe(60)
NATIVE_KEY = "sk-svcacct-" + secrets.token_urlsafe(48)
ANTHROPIC_KEY = "sk-ant-api03-" + secrets.token_urlsafe(70)
GEMINI_KEY = "AIzaSy" + "".join(
    secrets.choice(string.ascii_letters + string.digits) for _ in range(33)
)
AZURE_KEY = secrets.token_hex(16)
KEYS = [OPENAI_KEY, NATIVE_KEY, ANTHROPIC_KEY, GEMINI_KEY, AZURE_KEY]

PIECE = 10  # the pieces the old redaction looked for
TAILS = range(3, 10)  # the ends it looked for after a mask or "ending in"
HINTS = ("****{}", "{head}****{}", "{head}...{}", "\u2022\u2022\u2022\u2022{}", "xxxx{}",
         "ending in {}", "ends with {}", 'key ends with: "{}"')  # fmt: skip


def guesses(key: str) -> list[str]:
    """What an attacker sends to test whether a string is part of `key`."""
    found = [key[i : i + PIECE] for i in range(len(key) - PIECE + 1)]
    for n in TAILS:
        found += [hint.format(key[-n:], head=key[:5]) for hint in HINTS]
    return [*found, key]


def same_shape(text: str, rng: random.Random) -> str:
    """A wrong guess of the same shape: each letter or digit swapped for another of
    its class, everything else kept."""
    out = []
    for c in text:
        for alphabet in (string.digits, string.ascii_lowercase, string.ascii_uppercase):
            if c in alphabet:
                c = rng.choice(alphabet.replace(c, ""))
                break
        out.append(c)
    return "".join(out)


def wrong_guesses(key: str, rng: random.Random) -> list[str]:
    wrong = []
    for guess in guesses(key):
        while True:
            candidate = same_shape(guess, rng)
            if not any(candidate[-3:] in k for k in KEYS):  # wrong for every key
                break
        wrong.append(candidate)
    return wrong


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_key=[OPENAI_KEY, NATIVE_KEY]) as server:
        server.echo_prompt = True
        yield server


@pytest.fixture
def attacker(gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None) -> Customer:
    """An ordinary customer of a catalogue holding every kind of upstream key (only
    the OpenAI ones are called; the others are in the catalogue all the same)."""
    openai = add_provider("openai", fake.base_url + "/v1", OPENAI_KEY)
    native = add_provider("native", fake.base_url + "/v1", NATIVE_KEY, responses_api=True)
    elsewhere = "http://127.0.0.1:9"
    anthropic = add_provider("anthropic", elsewhere, ANTHROPIC_KEY, kind="anthropic")
    gemini = add_provider("gemini", elsewhere, GEMINI_KEY, kind="gemini")
    azure = add_provider("azure", elsewhere, AZURE_KEY, kind="azure")
    add_model("gpt-4o", (openai, "gpt-4o"))
    add_model("gpt-4.1", (native, "gpt-4.1"))
    add_model("claude-sonnet", (anthropic, "claude-sonnet-4-5"))
    add_model("gemini-flash", (gemini, "gemini-2.5-flash"))
    add_model("azure-4o", (azure, "gpt-4o"))
    return customer_for(gateway)


def _post(customer: Customer, path: str, body: dict) -> httpx.Response:
    response = httpx.post(
        f"{customer.client.base_url}{path}",
        json=body,
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _events(response: httpx.Response) -> list[dict]:
    return [
        orjson.loads(line[6:])
        for line in response.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def _instructions(events: list[dict]) -> list[str]:
    """Every `instructions` a Responses event stream carried (created, completed...)."""
    return [e["response"]["instructions"] for e in events if "response" in e]


def responses_echo(model: str, stream: bool) -> Callable[[Customer, str], list[str]]:
    def observe(customer: Customer, text: str) -> list[str]:
        body = {"model": model, "instructions": text, "input": "hi", "stream": stream}
        response = _post(customer, "responses", body)
        if not stream:
            return [response.json()["instructions"]]
        return _instructions(_events(response))

    return observe


def chat_echo(stream: bool) -> Callable[[Customer, str], list[str]]:
    def observe(customer: Customer, text: str) -> list[str]:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
        response = _post(customer, "chat/completions", {**body, "stream": stream})
        if not stream:
            return [response.json()["choices"][0]["message"]["content"]]
        deltas = [c["choices"][0]["delta"].get("content") or "" for c in _events(response)]
        return ["".join(deltas)]

    return observe


ECHOES = {
    "responses instructions, translated": responses_echo("gpt-4o", stream=False),
    "responses instructions, translated, streamed": responses_echo("gpt-4o", stream=True),
    "responses instructions, native": responses_echo("gpt-4.1", stream=False),
    "responses instructions, native, streamed": responses_echo("gpt-4.1", stream=True),
    "a chat model repeating the prompt": chat_echo(stream=False),
    "a chat model repeating the prompt, streamed": chat_echo(stream=True),
}


@pytest.mark.parametrize("echo", ECHOES)
def test_every_guess_at_every_upstream_key_comes_back_as_a_wrong_guess_does(
    attacker: Customer, echo: str
) -> None:
    observe = ECHOES[echo]
    rng = random.Random(21)
    for key in KEYS:
        right = "\n".join(guesses(key))
        wrong = "\n".join(wrong_guesses(key, rng))
        seen_right, seen_wrong = observe(attacker, right), observe(attacker, wrong)
        # Byte for byte what was sent, for the right guesses as for the wrong ones:
        # the attacker learns nothing from comparing them.
        assert seen_right and all(seen == right for seen in seen_right), key[:12]
        assert seen_wrong and all(seen == wrong for seen in seen_wrong), key[:12]
