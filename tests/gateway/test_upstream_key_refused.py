"""An upstream that refuses the operator's key (its 401 or 403, and each kind's own way
of saying so: Google's 400 API_KEY_INVALID, Anthropic's 400 for an account without
credit) is the operator's problem: the next key serves, the refused key pays for it in
its health, and a customer who gets no answer reads a generic 502, never the upstream's
words, which may quote the key."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from providers import health
from providers.models import ProviderKey
from tests.fakes.anthropic import FakeAnthropic, anthropic_error
from tests.fakes.base import FakeServer
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

GENERIC = "Every upstream route failed before producing output."


@dataclass(frozen=True)
class Kind:
    fake: Callable[..., FakeServer]
    kind: str
    bad: str  # the refused key
    good: str
    refuse: Callable[[FakeServer, str], str]  # scripts the refusal; returns its words
    # Whether the fake holds the refused key (its refusal is then scripted), or refuses
    # it as the provider refuses a key it does not know.
    scripted: bool = True


def _quoting(status: int, error: Callable[..., dict]) -> Callable[[FakeServer, str], str]:
    def refuse(fake: FakeServer, key: str) -> str:
        words = f"Incorrect API key provided: {key}. Check your key."
        fake.fail_next(status, error(status, words), key=key, times=5)
        return "Incorrect API key provided"

    return refuse


def _credit_too_low(fake: FakeServer, key: str) -> str:
    words = (
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits."
    )
    fake.fail_next(400, anthropic_error(400, words, "invalid_request_error"), key=key, times=5)
    return "credit balance"


def _not_in_its_keys(fake: FakeServer, key: str) -> str:
    return "API key not valid"  # the fake refuses any key it does not hold, Google's way


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(40)


KINDS = {
    "openai 401 quoting the key": Kind(
        FakeOpenAI, "openai", _token("sk-proj-"), _token("sk-proj-"), _quoting(401, openai_error)
    ),
    "openai 403 quoting the key": Kind(
        FakeOpenAI, "openai", _token("sk-proj-"), _token("sk-proj-"), _quoting(403, openai_error)
    ),
    "anthropic 401 quoting the key": Kind(
        FakeAnthropic,
        "anthropic",
        _token("sk-ant-api03-"),
        _token("sk-ant-api03-"),
        _quoting(401, anthropic_error),
    ),
    "anthropic 400 credit balance too low": Kind(
        FakeAnthropic,
        "anthropic",
        _token("sk-ant-api03-"),
        _token("sk-ant-api03-"),
        _credit_too_low,
    ),
    "gemini 400 API_KEY_INVALID": Kind(
        FakeGemini, "gemini", _token("AIzaSy"), _token("AIzaSy"), _not_in_its_keys, False
    ),
}


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)] + [secret[-4:]]


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Iterator[tuple[Kind, FakeServer, str]]:
    spec = KINDS[request.param]
    held = {spec.good, spec.bad} if spec.scripted else {spec.good}
    with spec.fake(expected_key=held) as fake:
        yield spec, fake, spec.refuse(fake, spec.bad)


def _setup(spec: Kind, fake: FakeServer, *keys: str) -> ProviderKey:
    base = fake.base_url + ("/v1" if spec.kind == "openai" else "")
    provider = add_provider("up", base, *keys, kind=spec.kind)
    # Weighted so that the refused key is all but certain to be tried first.
    provider.keys.filter(secret=keys[0]).update(weight=1_000_000)
    add_model("m", (provider, "upstream-model"))
    return provider.keys.get(secret=keys[0])


def _ask(gateway: AsgiServer, customer: Customer) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=30,
    )


def _key_state(key: ProviderKey) -> str:
    subject = health.key_subject(key.pk)
    return health.read([subject])[subject].state()


def test_a_refused_key_reaches_the_customer_as_a_generic_upstream_error(
    gateway: AsgiServer, kind: tuple[Kind, FakeServer, str], transactional_db: None
) -> None:
    spec, fake, words = kind
    key = _setup(spec, fake, spec.bad)
    response = _ask(gateway, customer_for(gateway))
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("upstream_error", GENERIC)
    assert fake.requests, "the refusal never happened"
    everything = response.text + "".join(f"{k}: {v}" for k, v in response.headers.items())
    assert words not in everything
    assert [p for p in pieces(spec.bad) if p in everything] == []
    # The key pays for it: skipped on every model until it recovers.
    assert _key_state(key) == health.OPEN


def test_a_refused_key_fails_over_to_the_next_key(
    gateway: AsgiServer, kind: tuple[Kind, FakeServer, str], transactional_db: None
) -> None:
    spec, fake, _words = kind
    key = _setup(spec, fake, spec.bad, spec.good)
    response = _ask(gateway, customer_for(gateway))
    assert response.status_code == 200, response.text
    assert len(fake.requests) == 2
    assert _key_state(key) == health.OPEN
