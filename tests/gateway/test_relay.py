"""An endpoint is a spec of the one relay: declared here in a few lines, with no other
code, it gets authentication, rate limits, the reservation, fallback across routes,
exactly one settlement and errors in its dialect."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.http import HttpRequest
from django.test import override_settings

from accounts.keycache import KeySnapshot
from billing.services import wallet_for
from gateway import validation
from gateway.calls import PassthroughCall, metered_at
from gateway.errors import ANTHROPIC, OPENAI
from gateway.relay import Endpoint, Metered
from providers.catalogue import ModelInfo
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import UPSTREAM_KEY, Customer, add_model, add_provider, settled
from tests.servers import AsgiServer

ECHO_CHARGE = 7  # credits per call, whatever the upstream says


def _plan(model: ModelInfo) -> tuple[int, Any]:
    def meter(raw: bytes, content_type: str) -> Metered:
        return metered_at(ECHO_CHARGE, raw, content_type, units=1)

    return ECHO_CHARGE, meter


async def _parse(request: HttpRequest, key: KeySnapshot) -> PassthroughCall:
    body = await validation.json_body(request)
    if not isinstance(body.get("input"), str):
        raise validation.missing("input")
    return PassthroughCall(model_id=body.get("model"), path="embeddings", body=body, plan=_plan)


ECHO = Endpoint("test.echo", OPENAI, _parse, model_types=("embedding",))
ECHO_ANTHROPIC = Endpoint("test.echo", ANTHROPIC, _parse, model_types=("embedding",))

pytestmark = pytest.mark.usefixtures("relay_urls")


@pytest.fixture
def relay_urls() -> Any:
    with override_settings(ROOT_URLCONF="tests.gateway.relay_urls"):
        yield


@pytest.fixture
def echo_model(fake_openai: FakeOpenAI, transactional_db: None) -> None:
    """Two routes to two providers on the fake."""
    first = add_provider("first", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    second = add_provider("openai", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    add_model("echo-1", (first, "echo-a"), (second, "echo-b"), type="embedding")


def _post(gateway: AsgiServer, path: str, key: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(gateway.base_url + path, json=body, headers=headers, timeout=10)


def test_a_spec_alone_is_authenticated_falls_back_and_is_settled_once(
    gateway: AsgiServer, echo_model: None, fake_openai: FakeOpenAI
) -> None:
    user = make_user(credits=1_000)
    key = make_key(user)
    fake_openai.fail_next(500)
    answer = _post(gateway, "/v1/test/echo", key.secret, {"model": "echo-1", "input": "hi"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"].startswith("req_")
    # The first route failed before any output; the second route answered.
    assert [r.json["model"] for r in fake_openai.requests_to("embeddings")] == ["echo-a", "echo-b"]
    customer = Customer(key=key, client=None)  # type: ignore[arg-type]
    [record] = settled(customer)
    assert (record.charge, record.endpoint, record.provider) == (ECHO_CHARGE, "test.echo", "openai")
    assert record.ledger_entry.amount == -ECHO_CHARGE
    assert wallet_for(user=user).balance == 1_000 - ECHO_CHARGE


@pytest.mark.parametrize(
    ("path", "shape"), [("/v1/test/echo", "openai"), ("/v1/test/echo-anthropic", "anthropic")]
)
def test_a_spec_alone_answers_every_refusal_in_its_dialect(
    gateway: AsgiServer, echo_model: None, path: str, shape: str
) -> None:
    broke = make_key(make_user(credits=0))
    limited = make_key(make_user(credits=1_000), rpm=1)
    good = {"model": "echo-1", "input": "hi"}
    cases = [
        (None, good, 401),
        (limited.secret, {"model": "echo-1"}, 400),
        (limited.secret, {"model": "nope", "input": "hi"}, 404),
        (broke.secret, good, 402),
        (limited.secret, good, 200),
        (limited.secret, good, 429),
    ]
    for secret, body, status in cases:
        answer = _post(gateway, path, secret, body)
        assert answer.status_code == status, (status, answer.text)
        assert answer.headers["x-request-id"].startswith("req_")
        if status == 200:
            continue
        error = answer.json()
        if shape == "anthropic":
            assert error["type"] == "error" and error["error"]["message"]
        else:
            assert error["error"]["message"] and "type" in error["error"]
    assert "retry-after" in answer.headers
