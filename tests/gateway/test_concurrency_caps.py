"""Concurrency caps: an account (across its keys) and a key may have only so many
requests in flight at once. The (N+1)th is a 429 `concurrency_limit_exceeded` that
says which cap and its number; a place is freed when a request ends, however it ends
(completion, a client that leaves, a process that died and was swept). The count rides
the admission round trip, and the embedded and Redis stores keep it alike."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from accounts.models import ApiKey
from billing.balances import WalletSnapshot
from billing.services import signup_grant
from gateway import writer
from gateway.records import Record
from gateway.spend import Limits, LocalSpendStore, RedisSpendStore, store
from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import customer_for
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]


def _post(gateway: AsgiServer, secret: str) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO},
        headers={"authorization": f"Bearer {secret}"},
        timeout=20,
    )


@contextlib.contextmanager
def held_streams(gateway: AsgiServer, *secrets: str) -> Iterator[list[httpx.Response]]:
    """One stream per secret, each admitted and answering (its headers are in: the
    gateway answers once the upstream's first event came), left open."""
    with contextlib.ExitStack() as stack:
        opened = []
        for secret in secrets:
            # A client each: closing one stream closes its own connection only.
            client = stack.enter_context(httpx.Client(timeout=20))
            response = stack.enter_context(
                client.stream(
                    "POST",
                    gateway.base_url + "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": HELLO, "stream": True},
                    headers={"authorization": f"Bearer {secret}"},
                )
            )
            assert response.status_code == 200, response.read()
            opened.append(response)
        yield opened


def _concurrency_refusal(response: httpx.Response) -> str:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "concurrency_limit_exceeded")
    assert response.headers["retry-after"] == "1"
    return error["message"]


@pytest.fixture
def paused(fake_openai: FakeOpenAI) -> FakeOpenAI:
    """Every stream stops after its first chunk until released."""
    fake_openai.set_reply(text="one two three four")
    fake_openai.pause_after_chunks = 1
    return fake_openai


def test_a_keys_own_cap_refuses_its_next_request_and_frees_places_as_streams_end(
    gateway: AsgiServer, openai_catalogue: AiModel, paused: FakeOpenAI
) -> None:
    capped = customer_for(gateway, concurrency=2)
    sibling = make_key(capped.user, name="sibling")  # same account, no cap of its own
    secret = capped.key.secret
    with held_streams(gateway, secret, secret) as streams:
        message = _concurrency_refusal(_post(gateway, secret))
        assert message.startswith("Concurrency limit reached: this API key may have 2 requests")
        assert "in flight at once (a limit set on the key), and 2 are running" in message
        # The cap is the key's: another key of the account is admitted.
        with held_streams(gateway, sibling.secret):
            paused.release()
        for response in streams:
            assert b"data: [DONE]" in response.read()
    # Both ended: the key has its two places back.
    with held_streams(gateway, secret, secret):
        paused.release()


def test_the_plans_cap_holds_an_account_across_all_its_keys(
    gateway: AsgiServer, openai_catalogue: AiModel, paused: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_PAID_CONCURRENCY = 2
    customer = customer_for(gateway)  # granted credits: the paid plan
    second = make_key(customer.user, name="second")
    elsewhere = customer_for(gateway)
    with held_streams(gateway, customer.key.secret, second.secret) as streams:
        for secret in (customer.key.secret, second.secret):
            message = _concurrency_refusal(_post(gateway, secret))
            assert "your plan allows 2 requests in flight at once per account" in message
        # Another account has places of its own.
        with held_streams(gateway, elsewhere.key.secret):
            paused.release()
        for response in streams:
            assert b"data: [DONE]" in response.read()
    assert _post(gateway, second.secret).status_code == 200


def test_the_free_plans_cap_says_how_to_lift_it(
    gateway: AsgiServer, openai_catalogue: AiModel, paused: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_FREE_CONCURRENCY = 1
    user = make_user()
    signup_grant(user=user)  # the gift alone keeps the account on the free plan
    key = make_key(user)
    with held_streams(gateway, key.secret):
        message = _concurrency_refusal(_post(gateway, key.secret))
        paused.release()
    assert "the free plan allows 1 requests in flight at once per account" in message
    assert f"paid plan, which allows {settings.NEXAI_PAID_CONCURRENCY}" in message


def test_a_client_that_leaves_mid_stream_frees_its_place(
    gateway: AsgiServer, openai_catalogue: AiModel, paused: FakeOpenAI
) -> None:
    capped = customer_for(gateway, concurrency=1)
    with held_streams(gateway, capped.key.secret):
        _concurrency_refusal(_post(gateway, capped.key.secret))
    # The client closed its connection: the gateway settles the stream, then closes
    # the upstream (which the fake sees), so the place is free by then.
    paused.wait_disconnects(1)
    with held_streams(gateway, capped.key.secret):
        paused.release()


def test_the_cap_set_by_create_api_key_is_applied(
    gateway: AsgiServer, openai_catalogue: AiModel, paused: FakeOpenAI
) -> None:
    out = io.StringIO()
    call_command(
        "create_api_key", "--email", "capped@example.com", "--credits", "1000000",
        "--concurrency", "1", stdout=out,
    )  # fmt: skip
    secret = out.getvalue().strip().splitlines()[-1]
    assert ApiKey.objects.get(user__email="capped@example.com").concurrency == 1
    with held_streams(gateway, secret):
        message = _concurrency_refusal(_post(gateway, secret))
        paused.release()
    assert "this API key may have 1 requests in flight at once" in message


# -- the stores, side by side --------------------------------------------------------


def _scenario(spend: LocalSpendStore | RedisSpendStore, user_id: int) -> list[str]:
    """A key capped at 2 on a paid plan capped at 3: what each step answers."""
    admit = async_to_sync(spend.admit)
    async_to_sync(spend.init_wallet)(
        WalletSnapshot(user_id=user_id, balance=10_000, version=1, paid=True, total_spent=0)
    )
    capped = Limits(
        key_rpm=None, free_rpm=100, paid_rpm=100, key_spend_limit=None,
        key_concurrency=2, free_concurrency=1, paid_concurrency=3,
    )  # fmt: skip
    uncapped = Limits(
        key_rpm=None, free_rpm=100, paid_rpm=100, key_spend_limit=None,
        free_concurrency=1, paid_concurrency=3,
    )  # fmt: skip

    def record(n: int, key_id: int) -> Record:
        return Record(f"req_{user_id}_{n}", user_id, key_id, "chat.completions", "m", reserved=10)

    outcomes = []

    def step(n: int, key_id: int, limits: Limits, deadline_ms: int = 2**62) -> None:
        answer = admit(record=record(n, key_id), limits=limits, deadline_ms=deadline_ms)
        outcomes.append(f"{answer.outcome}:{answer.limit}:{answer.in_flight}")

    step(1, 1, capped)
    step(2, 1, capped)
    step(3, 1, capped)  # the key's cap
    step(4, 2, uncapped)  # another key: the account's third place
    step(5, 2, uncapped)  # the account's cap
    spend.settle_sync(record=record(1, 1).with_values(status=200, charge=5))
    step(6, 1, capped)  # the settled request's place is free again
    step(7, 2, uncapped)
    # A process that died: its reservations are swept, and their places freed.
    outcomes.append(f"swept:{writer.settle_stale(now_ms=2**63 - 1)}")
    step(8, 1, capped)
    step(9, 1, capped)
    step(10, 2, uncapped)
    step(11, 2, uncapped)
    outcomes.append(f"fly:{spend.snapshot(user_id=user_id)['fly']}")
    return outcomes


EXPECTED = [
    "ok:100:0", "ok:100:0", "conc_key:2:2", "ok:100:0", "conc_plan:3:3",
    "ok:100:0", "conc_plan:3:3",
    "swept:3", "ok:100:0", "ok:100:0", "ok:100:0", "conc_plan:3:3", "fly:3",
]  # fmt: skip


@pytest.mark.embedded
def test_the_embedded_store_counts_requests_in_flight(db: None) -> None:
    assert isinstance(store(), LocalSpendStore)
    assert _scenario(store(), make_user().pk) == EXPECTED


@pytest.mark.redis
def test_the_redis_store_counts_requests_in_flight_as_the_embedded_one_does(db: None) -> None:
    assert isinstance(store(), RedisSpendStore)
    assert _scenario(store(), make_user().pk) == EXPECTED
