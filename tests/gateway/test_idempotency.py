"""`Idempotency-Key` on /v1 POSTs, with Stripe's semantics: the same key and body
replay the first answer and are charged once; a different body is a 422; a retry
while the first is running is a 409; keys belong to one customer."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, customer_for, settled
from tests.servers import AsgiServer

HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}


def _post(gateway: AsgiServer, customer: Customer, body: dict, key: str) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {customer.key.secret}", "idempotency-key": key},
        timeout=10,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_a_retry_with_the_same_key_and_body_replays_the_answer_and_is_charged_once(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer, stream: bool
) -> None:
    fake_openai.set_reply(text="one two three", prompt_tokens=30, completion_tokens=3)
    body = {**HELLO, "stream": stream}
    first = _post(gateway, customer, body, "retry-1")
    second = _post(gateway, customer, body, "retry-1")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content  # a stream's whole event sequence, byte for byte
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["x-request-id"] == first.headers["x-request-id"]
    assert len(fake_openai.requests_to("chat/completions")) == 1
    [record] = settled(customer)
    assert record.charge > 0


def test_the_same_key_with_another_body_is_a_422_and_costs_nothing(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer
) -> None:
    assert _post(gateway, customer, HELLO, "k").status_code == 200
    other = {**HELLO, "messages": [{"role": "user", "content": "Something else"}]}
    refused = _post(gateway, customer, other, "k")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(settled(customer)) == 1


def test_a_retry_while_the_first_is_running_is_a_409(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer
) -> None:
    fake_openai.set_reply(text="one two three four five six")
    fake_openai.pause_after_chunks = 2
    body = {**HELLO, "stream": True}
    first: list[httpx.Response] = []
    running = threading.Thread(target=lambda: first.append(_post(gateway, customer, body, "k")))
    running.start()
    fake_openai.wait_paused()
    duplicate = _post(gateway, customer, body, "k")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
    fake_openai.release()
    running.join(10)
    assert first[0].status_code == 200
    assert len(settled(customer)) == 1


def test_keys_are_scoped_per_customer(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer
) -> None:
    other = customer_for(gateway)
    assert _post(gateway, customer, HELLO, "shared").status_code == 200
    answer = _post(gateway, other, HELLO, "shared")
    assert answer.status_code == 200 and "idempotent-replayed" not in answer.headers
    assert len(fake_openai.requests_to("chat/completions")) == 2
    assert len(settled(other)) == 1


def test_a_failed_first_attempt_releases_the_key_so_a_retry_runs(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer
) -> None:
    fake_openai.fail_next(400)
    assert _post(gateway, customer, HELLO, "k").status_code == 400
    retried = _post(gateway, customer, HELLO, "k")
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
