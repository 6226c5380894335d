"""On a model forwarded to an upstream that speaks the Responses API, the upstream
resolves a `previous_response_id` among every response made with the operator's key,
whichever customer made it. So the gateway keeps whose each relayed response is, and
an id it has not kept for the caller answers 404 without reaching the upstream
(issue 21, finding 5); the owner's own ids still chain natively."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.models import StoredResponse
from providers.models import Provider
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import UPSTREAM_KEY, Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

NATIVE = "gpt-5-codex"


@pytest.fixture
def native_model(customer: Customer) -> None:
    provider = Provider.objects.get(name="openai")
    provider.settings = {"responses_api": True}
    provider.save()
    add_model(NATIVE, (provider, "gpt-5-codex-upstream"))


@pytest.fixture
def other(gateway: AsgiServer, native_model: None) -> Customer:
    """Customer A, who tries customer B's ids (`customer` is B)."""
    return customer_for(gateway)


def _call(
    gateway: AsgiServer, customer: Customer, method: str, path: str, body: dict | None = None
) -> httpx.Response:
    return httpx.request(
        method,
        f"{gateway.base_url}/v1/{path}",
        json=body,
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=10,
    )


def _create(gateway: AsgiServer, customer: Customer, **body: object) -> str:
    """A response made natively for `customer`; its (upstream-made) id."""
    response = _call(
        gateway, customer, "POST", "responses", {"model": NATIVE, "input": "hi", **body}
    )
    assert response.status_code == 200, response.text
    if not body.get("stream"):
        return response.json()["id"]
    events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line[:6] == "data: "]
    [done] = [e for e in events if e["type"] == "response.completed"]
    return done["response"]["id"]


def _assert_not_found(response: httpx.Response, response_id: str, param: str | None) -> None:
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert response_id in error["message"]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_another_customers_response_id_is_a_404_that_never_reaches_the_upstream(
    gateway: AsgiServer, customer: Customer, other: Customer, fake_openai: FakeOpenAI,
    streamed: bool,
) -> None:  # fmt: skip
    theirs = _create(gateway, customer, stream=streamed)
    assert theirs in fake_openai.stored_responses  # the shared upstream would find it
    sent = len(fake_openai.requests)
    for stream in (False, True):
        chained = {
            "model": NATIVE,
            "previous_response_id": theirs,
            "input": "go on",
            "stream": stream,
        }
        _assert_not_found(
            _call(gateway, other, "POST", "responses", chained), theirs, "previous_response_id"
        )
    compact = {"model": NATIVE, "previous_response_id": theirs, "input": []}
    _assert_not_found(
        _call(gateway, other, "POST", "responses/compact", compact), theirs, "previous_response_id"
    )
    _assert_not_found(_call(gateway, other, "GET", f"responses/{theirs}"), theirs, None)
    _assert_not_found(_call(gateway, other, "DELETE", f"responses/{theirs}"), theirs, None)
    assert len(fake_openai.requests) == sent  # nothing of it went upstream
    assert StoredResponse.objects.filter(response_id=theirs, user=customer.user).exists()


def test_the_owner_continues_and_compacts_their_own_responses_natively(
    gateway: AsgiServer, customer: Customer, other: Customer, fake_openai: FakeOpenAI
) -> None:
    mine = _create(gateway, customer)
    chained = {"model": NATIVE, "previous_response_id": mine, "input": "go on"}
    answer = _call(gateway, customer, "POST", "responses", chained)
    assert answer.status_code == 200, answer.text
    assert fake_openai.last_request.json["previous_response_id"] == mine
    assert answer.json()["previous_response_id"] == mine
    # The chained response is the owner's too, for the next turn.
    assert StoredResponse.objects.filter(response_id=answer.json()["id"], user=customer.user)
    compact = {"model": NATIVE, "previous_response_id": mine, "input": []}
    compacted = _call(gateway, customer, "POST", "responses/compact", compact)
    assert compacted.status_code == 200, compacted.text
    assert fake_openai.last_request.path == "/v1/responses/compact"
    assert fake_openai.last_request.json["previous_response_id"] == mine


def test_a_forwarded_response_chat_cannot_express_is_still_its_owners_alone(
    gateway: AsgiServer, customer: Customer, other: Customer, fake_openai: FakeOpenAI
) -> None:
    # An item reference names upstream content no translation can carry: the gateway
    # keeps no conversation for it, but still keeps whose it is.
    opaque = [{"type": "item_reference", "id": "msg_" + "a" * 48}]
    mine = _create(gateway, customer, input=opaque)
    chained = {"model": NATIVE, "previous_response_id": mine, "input": "go on"}
    assert _call(gateway, customer, "POST", "responses", chained).status_code == 200
    _assert_not_found(
        _call(gateway, other, "POST", "responses", chained), mine, "previous_response_id"
    )
    # A translated model cannot continue it: said plainly, not silently without history.
    plain = add_provider("plain", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    add_model("gpt-4o-chat", (plain, "gpt-4o"))
    elsewhere = {**chained, "model": "gpt-4o-chat"}
    refused = _call(gateway, customer, "POST", "responses", elsewhere)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "previous_response_id"
