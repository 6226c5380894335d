"""One customer can neither read nor change another's keys, usage, ledger or stored
responses: every page and /api/ endpoint is tried with the other customer's ids, both
with a session and with an API key."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import ApiKey
from accounts.scopes import api_key_scope_set
from billing.services import ledger_post
from gateway.models import StoredResponse, UsageRecord
from tests.dashboard.conftest import make_stored_response, make_usage
from tests.factories import Personas

pytestmark = pytest.mark.django_db


@dataclass
class Victim:
    key: ApiKey
    usage: UsageRecord
    response: StoredResponse


@pytest.fixture
def victim(personas: Personas) -> Victim:
    """The broke customer's things, which the funded customer goes after."""
    broke = personas.broke
    ledger_post(user=broke, kind="adjustment", amount=42, reference="victim-ledger-ref")
    return Victim(
        key=personas.broke_key.key,
        usage=make_usage(broke, personas.broke_key.key, model="victim-model"),
        response=make_stored_response(broke),
    )


def snapshot(victim: Victim) -> tuple:
    key = ApiKey.objects.get(pk=victim.key.pk)
    return (
        key.name,
        key.status,
        key.rpm,
        key.spend_limit,
        key.allowed_models,
        key.expires_at,
        UsageRecord.objects.filter(user=victim.usage.user).count(),
        StoredResponse.objects.filter(user=victim.response.user).count(),
    )


@pytest.fixture
def attacker(personas: Personas) -> Client:
    personas.funded.email_verified = True
    personas.funded.save()
    client = Client()
    client.force_login(personas.funded)
    return client


PAGE_ATTEMPTS = [
    ("get", "/dashboard/keys/{key}/", None),
    ("post", "/dashboard/keys/{key}/", {"name": "pwned", "rpm": "1"}),
    ("get", "/dashboard/keys/{key}/revoke/", None),
    ("post", "/dashboard/keys/{key}/revoke/", {}),
]

API_ATTEMPTS = [
    ("get", "/api/keys/{key}/", None),
    ("patch", "/api/keys/{key}/", {"name": "pwned", "rpm": 1}),
    ("delete", "/api/keys/{key}/", None),
    ("post", "/api/keys/{key}/revoke/", {}),
    ("get", "/api/usage/{usage}/", None),
    ("get", "/api/responses/{response}/", None),
]


def _call(client: Client, method: str, url: str, data: dict | None, **extra: str):  # type: ignore[no-untyped-def]
    if method in ("patch", "delete"):
        return getattr(client, method)(
            url, data=json.dumps(data or {}), content_type="application/json", **extra
        )
    if url.startswith("/api/") and method == "post":
        return client.post(
            url, data=json.dumps(data or {}), content_type="application/json", **extra
        )
    return getattr(client, method)(url, data or {}, **extra)


def _fill(url: str, victim: Victim) -> str:
    return url.format(
        key=victim.key.pk, usage=victim.usage.request_id, response=victim.response.response_id
    )


@pytest.mark.parametrize(("method", "url", "data"), PAGE_ATTEMPTS + API_ATTEMPTS)
def test_another_customers_ids_are_not_found_with_a_session(
    attacker: Client, victim: Victim, method: str, url: str, data: dict | None
) -> None:
    before = snapshot(victim)
    response = _call(attacker, method, _fill(url, victim), data)
    assert response.status_code == 404
    assert snapshot(victim) == before


@pytest.mark.parametrize(("method", "url", "data"), API_ATTEMPTS)
def test_another_customers_ids_are_not_found_with_an_api_key(
    personas: Personas, victim: Victim, method: str, url: str, data: dict | None
) -> None:
    before = snapshot(victim)
    # Even a management key (the kind that may manage keys) sees only its own.
    api_key_scope_set(key=personas.funded_key.key, scope=ApiKey.Scope.MANAGEMENT)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.funded_key.secret}"}
    response = _call(Client(), method, _fill(url, victim), data, **auth)
    assert response.status_code == 404
    assert snapshot(victim) == before


def test_lists_and_exports_hold_only_the_callers_rows(
    attacker: Client, personas: Personas, victim: Victim
) -> None:
    make_usage(personas.funded, personas.funded_key.key, model="my-model")
    make_stored_response(personas.funded)
    secrets_of_victim = [
        victim.key.prefix,
        victim.usage.request_id,
        "victim-model",
        victim.response.response_id,
        "victim-ledger-ref",
    ]
    for url in (
        "/dashboard/",
        "/dashboard/keys/",
        "/dashboard/usage/",
        "/dashboard/billing/",
        "/api/keys/",
        "/api/usage/",
        "/api/ledger/",
        "/api/responses/",
        "/api/balance/",
    ):
        body = attacker.get(url, HTTP_ACCEPT="application/json").content.decode()
        for secret in secrets_of_victim:
            assert secret not in body, (url, secret)
    csv_body = b"".join(attacker.get("/dashboard/usage.csv").streaming_content).decode()
    assert "my-model" in csv_body and "victim-model" not in csv_body


def test_filtering_by_another_customers_key_shows_nothing_of_theirs(
    attacker: Client, victim: Victim
) -> None:
    page = attacker.get(f"/dashboard/usage/?key={victim.key.pk}")
    assert page.status_code == 200 and victim.usage.request_id not in page.content.decode()
    assert "Select a valid choice" in page.content.decode()
    csv_body = b"".join(attacker.get(f"/dashboard/usage.csv?key={victim.key.pk}").streaming_content)
    assert victim.usage.request_id.encode() not in csv_body
    api = attacker.get(f"/api/usage/?key={victim.key.pk}")
    assert api.status_code == 400


def test_the_balance_endpoint_is_the_callers_own(attacker: Client, personas: Personas) -> None:
    data = attacker.get("/api/balance/").json()
    assert data["balance"] == 100_000_000
    other = Client()
    other.force_login(personas.broke)
    assert other.get("/api/balance/").json()["balance"] == 0
