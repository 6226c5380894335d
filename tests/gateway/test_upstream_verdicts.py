"""What an upstream's error answer means is its kind's to say: Google refuses a bad
key with a 400 INVALID_ARGUMENT (reason API_KEY_INVALID), Anthropic an account out of
credit with a 400, OpenAI with a 429 insufficient_quota. Each is the key's fault, not
the caller's: the next key serves, the refused key is counted against (and skipped on
every model), and the customer never sees the upstream's words."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from providers import health
from providers.adapters import adapter_for
from providers.adapters.base import Verdict
from providers.models import ProviderKey
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini, gemini_error
from tests.fakes.openai import openai_error
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

GOOD, BAD = "AIza-good-key-0123456789", "AIza-revoked-key-0123456789"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def key_state(secret: str) -> health.Health:
    subject = health.key_subject(ProviderKey.objects.get(secret=secret).pk)
    return health.read([subject])[subject]


@pytest.fixture
def google() -> Iterator[FakeGemini]:
    with FakeGemini(expected_key=GOOD) as fake:  # BAD is a key Google no longer knows
        yield fake


def gemini_pool(fake: FakeGemini, *secrets: str) -> None:
    provider = add_provider("google", fake.base_url, *secrets, kind="gemini")
    provider.keys.filter(secret=secrets[0]).update(weight=1_000_000)  # tried first
    add_model("gemini-pro", (provider, "gemini-2.5-pro"))
    add_model("gemini-flash", (provider, "gemini-2.5-flash"))


def ask(
    gateway: AsgiServer, customer: Customer, model: str, path: str = "v1beta"
) -> httpx.Response:
    if path == "chat":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        url, headers = "/v1/chat/completions", {"authorization": f"Bearer {customer.key.secret}"}
    else:
        body, url = HELLO, f"/v1beta/models/{model}:generateContent"
        headers = {"x-goog-api-key": customer.key.secret}
    return httpx.post(gateway.base_url + url, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize("path", ["v1beta", "chat"])
def test_a_key_google_refuses_with_a_400_fails_over_to_the_next_key(
    gateway: AsgiServer, google: FakeGemini, transactional_db: None, path: str
) -> None:
    gemini_pool(google, BAD, GOOD)
    customer = customer_for(gateway)
    assert ask(gateway, customer, "gemini-pro", path).status_code == 200
    assert ask(gateway, customer, "gemini-flash", path).status_code == 200
    used = [r.headers["x-goog-api-key"] for r in google.requests]
    assert used == [BAD, GOOD, GOOD]  # refused once, then skipped on every model
    assert key_state(BAD).state() == health.OPEN
    assert "refused" in ProviderKey.objects.get(secret=BAD).last_error


def test_when_every_key_is_refused_the_customer_gets_a_generic_upstream_error(
    gateway: AsgiServer, google: FakeGemini, transactional_db: None
) -> None:
    gemini_pool(google, BAD)
    answer = ask(gateway, customer_for(gateway), "gemini-pro")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["status"] == "UNAVAILABLE"
    assert "API key" not in error["message"] and BAD not in answer.text


def test_a_400_about_the_request_is_still_the_callers(
    gateway: AsgiServer, google: FakeGemini, transactional_db: None
) -> None:
    gemini_pool(google, GOOD)
    google.fail_next(400, gemini_error(400, "Invalid value at 'contents[0].role'"))
    answer = ask(gateway, customer_for(gateway), "gemini-pro")
    assert answer.status_code == 400
    assert "contents[0].role" in answer.json()["error"]["message"]
    assert key_state(GOOD).state() == health.CLOSED
    assert len(google.requests) == 1  # not retried: another key would say the same


KEY_INVALID = gemini_error(
    400,
    "API key not valid. Please pass a valid API key.",
    [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
)
ANTHROPIC_NO_CREDIT = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API.",
    },
}


@pytest.mark.parametrize(
    ("kind", "status", "body", "verdict"),
    [
        ("gemini", 400, KEY_INVALID, Verdict.KEY_REFUSED),
        ("gemini", 400, gemini_error(400, "Bad contents"), Verdict.CALLER),
        ("gemini", 400, {"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "User location is not supported for the API use."}}, Verdict.KEY_REFUSED),
        ("gemini", 403, gemini_error(403), Verdict.KEY_REFUSED),
        ("gemini", 429, gemini_error(429), Verdict.RATE_LIMITED),
        ("gemini", 503, gemini_error(503), Verdict.FAILING),
        ("gemini", 404, gemini_error(404), Verdict.WRONG_ROUTE),
        ("anthropic", 400, ANTHROPIC_NO_CREDIT, Verdict.KEY_REFUSED),
        ("anthropic", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: roles must alternate"}}, Verdict.CALLER),
        ("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, Verdict.FAILING),
        ("openai", 429, openai_error(429, "You exceeded your current quota", code="insufficient_quota"), Verdict.KEY_REFUSED),
        ("openai", 429, openai_error(429, "Rate limit reached"), Verdict.RATE_LIMITED),
        ("openai", 413, openai_error(413, "too large"), Verdict.TOO_LARGE),
        ("openai", 401, openai_error(401, "Incorrect API key"), Verdict.KEY_REFUSED),
    ],
)  # fmt: skip
def test_each_kind_reads_its_own_errors(
    kind: str, status: int, body: dict, verdict: Verdict
) -> None:
    import orjson

    assert adapter_for(kind).classify(status, orjson.dumps(body)) is verdict


def test_an_anthropic_account_out_of_credit_fails_over_too(
    gateway: AsgiServer, transactional_db: None
) -> None:
    keys = ("sk-ant-empty-0123456789", "sk-ant-full-0123456789")
    with FakeAnthropic(expected_key=set(keys)) as fake:
        provider = add_provider("claude", fake.base_url, *keys, kind="anthropic")
        provider.keys.filter(secret=keys[0]).update(weight=1_000_000)
        add_model("claude", (provider, "claude-sonnet-4-5"))
        fake.fail_next(400, ANTHROPIC_NO_CREDIT, key=keys[0])
        answer = httpx.post(
            gateway.base_url + "/v1/messages",
            json={
                "model": "claude",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"x-api-key": customer_for(gateway).key.secret},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert [r.headers["x-api-key"] for r in fake.requests] == list(keys)
