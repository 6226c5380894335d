"""A failing upstream model never takes down anything else: failures count against the
(upstream key, upstream model) pair that failed, or the key for a 401/403; open pairs
are skipped, tried again one request at a time, and a request whose every candidate is
open still gets a trial. Over real HTTP, with fault-injecting fake upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from django.core import mail

from gateway.upstream import DEFAULT_MAX_ATTEMPTS
from providers import health
from providers.models import Provider, ProviderKey
from tests.factories import make_personas
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]
KEY_A, KEY_B = "sk-fault-key-a-0123456789", "sk-fault-key-b-0123456789"


def ask(gateway: AsgiServer, customer: Customer, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json={"model": model, "messages": HELLO, "max_tokens": 20, **extra},
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=30,
    )


def keys_used(fake: FakeOpenAI, model: str) -> list[str]:
    return [
        r.headers["authorization"].removeprefix("Bearer ")
        for r in fake.requests
        if (r.json or {}).get("model") == model
    ]


def state_of(key: ProviderKey, upstream_model: str | None = None) -> health.Health:
    subject = (
        health.key_subject(key.pk)
        if upstream_model is None
        else health.pair_subject(key.pk, upstream_model)
    )
    return health.read([subject])[subject]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_key={KEY_A, KEY_B}) as server:
        yield server


def pool(fake: FakeOpenAI, *secrets: str, timeout: int = 10, **settings: object) -> Provider:
    """One provider with `secrets` as its keys, the first weighted so heavily that it is
    all but certain to be tried first; gpt-4o and gpt-4o-mini routed to it."""
    provider = add_provider("pool", fake.base_url + "/v1", *secrets, timeout=timeout)
    if settings:
        provider.settings = settings
        provider.save()
    provider.keys.filter(secret=secrets[0]).update(weight=1_000_000)
    add_model("gpt-4o", (provider, "gpt-4o"))
    add_model("gpt-4o-mini", (provider, "gpt-4o-mini"))
    return provider


def test_500s_timeouts_and_429s_on_one_model_leave_every_other_model_on_the_key_answering(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    pool(fake, KEY_A, timeout=1)
    customer = customer_for(gateway)
    broken, healthy = [], []
    for fault in (
        lambda: fake.fail_next(500, model="gpt-4o"),
        lambda: fake.hang_next(model="gpt-4o"),
        lambda: fake.fail_next(429, model="gpt-4o", headers={"retry-after": "60"}),
        lambda: fake.fail_next(503, model="gpt-4o"),
    ):
        fault()
        broken.append(ask(gateway, customer, "gpt-4o").status_code)
        healthy += [ask(gateway, customer, "gpt-4o-mini").status_code for _ in range(3)]
    fake.release()
    assert broken == [502, 504, 502, 502]
    assert healthy == [200] * 12
    assert keys_used(fake, "gpt-4o-mini") == [KEY_A] * 12  # the same key went on serving
    # The broken model was still tried once per request (a trial: no 503 for it either).
    assert keys_used(fake, "gpt-4o") == [KEY_A] * 4


def test_a_pair_found_dead_is_skipped_and_the_next_key_serves(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    fake.fail_next(500, model="gpt-4o", key=KEY_A, times=10)
    assert [ask(gateway, customer, "gpt-4o").status_code for _ in range(3)] == [200] * 3
    # One 500 on key A, then only key B for gpt-4o; key A still serves gpt-4o-mini.
    assert keys_used(fake, "gpt-4o") == [KEY_A, KEY_B, KEY_B, KEY_B]
    assert ask(gateway, customer, "gpt-4o-mini").status_code == 200
    assert keys_used(fake, "gpt-4o-mini") == [KEY_A]
    key_a = provider.keys.get(secret=KEY_A)
    assert state_of(key_a, "gpt-4o").state() == health.OPEN
    assert state_of(key_a).state() == health.CLOSED
    assert "upstream answered 500" in state_of(key_a, "gpt-4o").last_error


def test_when_every_candidate_is_open_the_request_still_gets_an_answer_from_a_trial(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    fake.fail_next(500, model="gpt-4o", times=2)  # both keys fail once
    assert ask(gateway, customer, "gpt-4o").status_code == 502
    key_a, key_b = provider.keys.get(secret=KEY_A), provider.keys.get(secret=KEY_B)
    assert {state_of(k, "gpt-4o").state() for k in (key_a, key_b)} == {health.OPEN}
    # Both pairs are open and the upstream has recovered: no 503, a trial answers,
    # and its success closes that pair.
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert len(fake.requests) == 3
    tried = keys_used(fake, "gpt-4o")[-1]
    assert state_of(key_a if tried == KEY_A else key_b, "gpt-4o").state() == health.CLOSED


def test_a_half_open_trial_closes_the_breaker_when_the_upstream_recovers(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None, settings: object
) -> None:
    settings.NEXAI_BREAKER_OPEN_SECONDS = 0.2  # type: ignore[attr-defined]
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    key_a = provider.keys.get(secret=KEY_A)
    fake.fail_next(500, model="gpt-4o", key=KEY_A)
    assert ask(gateway, customer, "gpt-4o").status_code == 200  # key B served
    assert keys_used(fake, "gpt-4o") == [KEY_A, KEY_B]
    # Nothing announces the end of the open time: watch the record until it says so.
    deadline = time.monotonic() + 5
    while state_of(key_a, "gpt-4o").state() != health.HALF_OPEN:
        assert time.monotonic() < deadline, "the pair never became half-open"
        time.sleep(0.05)
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert keys_used(fake, "gpt-4o")[-1] == KEY_A  # the trial went to the recovered pair
    assert state_of(key_a, "gpt-4o").state() == health.CLOSED
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert keys_used(fake, "gpt-4o")[-1] == KEY_A


def test_a_half_open_subject_admits_exactly_one_trial_at_a_time(transactional_db: None) -> None:
    async def scenario() -> list[bool]:
        subject = health.pair_subject(999, "gpt-4o")
        await health.record_failure(subject, error="test", threshold=1, base_s=0, max_s=0)
        claims = await asyncio.gather(*[health.claim_trial(subject, lease_s=30) for _ in range(10)])
        forced = await health.claim_trial(subject, lease_s=30, force=True)
        return [*claims, forced]

    results = asyncio.run(scenario())
    assert results[:10].count(True) == 1  # one trial; the others skip the pair
    assert results[10] is False  # even a forced trial waits for the one under way


def test_a_429_opens_the_pair_for_its_retry_after_within_bounds(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    key_a = provider.keys.get(secret=KEY_A)
    fake.fail_next(429, model="gpt-4o", key=KEY_A, headers={"retry-after": "120"})
    fake.fail_next(429, model="gpt-4o-mini", key=KEY_A, headers={"retry-after": "999999"})
    before = health.now_ms()
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert ask(gateway, customer, "gpt-4o-mini").status_code == 200
    after = health.now_ms()
    assert before + 120_000 <= state_of(key_a, "gpt-4o").open_until <= after + 120_000
    assert state_of(key_a, "gpt-4o-mini").open_until <= after + 300_000  # bounded
    assert state_of(key_a).state() == health.CLOSED  # the key itself is fine


def test_a_refused_key_is_skipped_on_every_model(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    fake.fail_next(401, key=KEY_A)
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert ask(gateway, customer, "gpt-4o-mini").status_code == 200
    assert [r.headers["authorization"][7:] for r in fake.requests] == [KEY_A, KEY_B, KEY_B]
    assert state_of(provider.keys.get(secret=KEY_A)).state() == health.OPEN


def test_a_key_refused_for_an_hour_is_disabled_and_staff_are_told(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None, settings: object
) -> None:
    settings.NEXAI_KEY_AUTH_DISABLE_SECONDS = 0  # type: ignore[attr-defined]  # "an hour" now
    personas = make_personas()
    provider = pool(fake, KEY_A, KEY_B)
    customer = customer_for(gateway)
    fake.fail_next(401, key=KEY_A, body=openai_error(401, f"Incorrect API key: {KEY_A}"))
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    key_a = provider.keys.get(secret=KEY_A)
    assert not key_a.enabled and "refused this key" in key_a.disabled_reason
    [message] = mail.outbox
    assert message.to == [personas.staff.email]
    assert key_a.fingerprint in message.subject and KEY_A not in message.body
    assert ask(gateway, customer, "gpt-4o").status_code == 200
    assert keys_used(fake, "gpt-4o")[-1] == KEY_B


def test_a_request_makes_at_most_max_attempts_attempts(
    gateway: AsgiServer, transactional_db: None
) -> None:
    secrets = [f"sk-fault-many-{i}-0123456789" for i in range(4)]
    with FakeOpenAI(expected_key=set(secrets)) as many:
        provider = add_provider("many", many.base_url + "/v1", *secrets)
        provider.settings = {"max_attempts": 2}
        provider.save()
        add_model("gpt-4o", (provider, "gpt-4o"))
        many.fail_next(500, times=10)
        assert ask(gateway, customer_for(gateway), "gpt-4o").status_code == 502
        assert len(many.requests) == 2
    assert DEFAULT_MAX_ATTEMPTS == 3


def test_a_slow_upstream_cannot_make_a_request_wait_longer_than_its_timeout(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    pool(fake, KEY_A, KEY_B, timeout=1)
    fake.hang_next(times=2)
    response = ask(gateway, customer_for(gateway), "gpt-4o")
    fake.release()
    assert response.status_code == 504
    # The first key's timeout used the request's whole time: the second was not tried.
    assert keys_used(fake, "gpt-4o") == [KEY_A]


def test_a_garbage_200_answer_is_a_502_and_costs_nothing(
    gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None
) -> None:
    pool(fake, KEY_A)
    customer = customer_for(gateway)
    fake.fail_next(200, body=b"<html>not json</html>", content_type="text/html")
    response = ask(gateway, customer, "gpt-4o")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


def test_an_answer_the_request_path_cannot_read_counts_against_the_pair(
    fake: FakeOpenAI, transactional_db: None
) -> None:
    """Attempt.failed() is how the request path reports a 2xx it could not use."""
    from gateway import upstream
    from providers import catalogue, http

    key_a = pool(fake, KEY_A).keys.get(secret=KEY_A)
    model = catalogue.get_catalogue().get("gpt-4o")
    assert model is not None
    body = {"model": "gpt-4o", "messages": HELLO}

    async def scenario() -> None:
        try:
            attempt = await upstream.open_call(
                model, lambda adapter, route, key: adapter.chat_request(
                    body, route=route, key=key, stream=False
                ),
            )  # fmt: skip
            await attempt.response.aclose()
            await attempt.failed("no JSON in the body")
        finally:
            await http.aclose()

    asyncio.run(scenario())
    record = state_of(key_a, "gpt-4o")
    assert record.state() == health.OPEN
    assert record.last_error == "malformed answer: no JSON in the body"
    assert state_of(key_a, "gpt-4o-mini").state() == health.CLOSED


def test_the_providers_file_sets_max_attempts_per_provider(transactional_db: None) -> None:
    from providers.loader import catalogue_apply, catalogue_parse

    text = """
providers:
  - {name: careful, kind: openai, base_url: "http://127.0.0.1:9/v1", keys: [k1], max_attempts: 5}
  - {name: plain, kind: openai, base_url: "http://127.0.0.1:9/v1", keys: [k2]}
models: []
"""
    catalogue_apply(catalogue_parse(text))
    assert Provider.objects.get(name="careful").settings == {"max_attempts": 5}
    assert Provider.objects.get(name="plain").settings == {}
