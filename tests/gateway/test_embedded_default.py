"""The embedded default (no Redis) with commands run from another terminal: what they
change in the database reaches the running server, although its caches live in its
own memory. "Another process" is simulated by writing to the database without
touching this process's caches, and time passing by ageing this process's copies."""

from __future__ import annotations

import httpx
import pytest

from accounts import keycache
from accounts.models import ApiKey, User
from billing import balances
from billing.services import ledger_post
from core.clock import clock
from gateway import spend
from providers import catalogue
from providers.models import AiModel, Provider, Route
from tests.gateway.conftest import Customer, customer_for
from tests.servers import AsgiServer

pytestmark = pytest.mark.embedded

HELLO = [{"role": "user", "content": "hi"}]


def _post(customer: Customer, model: str = "gpt-4o") -> int:
    return httpx.post(
        f"{customer.client.base_url}chat/completions",
        json={"model": model, "messages": HELLO, "max_tokens": 10},
        headers={"authorization": f"Bearer {customer.key.secret}"},
    ).status_code


def test_a_key_revoked_by_another_process_stops_working(customer: Customer) -> None:
    assert _post(customer) == 200
    ApiKey.objects.filter(pk=customer.key.key.pk).update(status=ApiKey.Status.REVOKED)
    clock.advance(keycache.LOCAL_TTL + 0.001)  # this process's copies have expired
    assert _post(customer) == 403


def test_a_user_deactivated_by_another_process_has_their_keys_refused(
    customer: Customer,
) -> None:
    assert _post(customer) == 200
    User.objects.filter(pk=customer.user.pk).update(is_active=False)
    clock.advance(keycache.LOCAL_TTL + 0.001)  # this process's copies have expired
    assert _post(customer) == 403


def test_a_model_loaded_by_another_process_is_served(customer: Customer) -> None:
    assert _post(customer, "gpt-4o-mini") == 404
    model = AiModel.objects.create(public_id="gpt-4o-mini", input_per_mtok=1, output_per_mtok=1)
    provider = Provider.objects.get(name="openai")
    Route.objects.create(model=model, provider=provider, upstream_model="gpt-4o-mini")
    clock.advance(catalogue.REBUILD_EVERY_UNSHARED + 1)
    assert _post(customer, "gpt-4o-mini") == 200


def test_credits_granted_by_another_process_are_usable(
    gateway: AsgiServer, openai_catalogue: AiModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    broke = customer_for(gateway, credits=0)
    assert _post(broke) == 402
    # The other process refreshes only its own in-memory copy of the wallet.
    monkeypatch.setattr(balances, "publish", lambda snapshot: None)
    ledger_post(user=broke.user, kind="adjustment", amount=1_000_000, reference="cli-grant")
    spend._local_store.wallets[broke.user.pk].synced_at -= spend.LOCAL_WALLET_FRESH + 1
    assert _post(broke) == 200
