"""The management API under /api/: keys, usage, ledger, balance and stored responses
for scripts, authenticated by session or by an API key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import keycache
from accounts.models import ApiKey
from accounts.scopes import api_key_scope_set
from providers.models import AiModel
from tests.dashboard.conftest import make_stored_response, make_usage
from tests.factories import Personas, make_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(personas: Personas) -> Client:
    """A script holding the funded customer's management key."""
    personas.funded.email_verified = True
    personas.funded.save()
    api_key_scope_set(key=personas.funded_key.key, scope=ApiKey.Scope.MANAGEMENT)
    return Client(HTTP_AUTHORIZATION=f"Bearer {personas.funded_key.secret}")


@pytest.fixture
def plain(personas: Personas) -> Client:
    """A tool holding an ordinary (inference) key of the same customer."""
    personas.funded.email_verified = True
    personas.funded.save()
    return Client(HTTP_AUTHORIZATION=f"Bearer {make_key(personas.funded, name='cursor').secret}")


def test_an_inference_key_reads_the_account_but_cannot_touch_keys(
    plain: Client, personas: Personas
) -> None:
    assert plain.get("/api/balance/").status_code == 200
    assert plain.get("/api/usage/").status_code == 200
    before = ApiKey.objects.count()
    create = plain.post("/api/keys/", {"name": "backdoor"}, content_type="application/json")
    assert create.status_code == 403 and "management scope" in create.json()["detail"]
    assert plain.get("/api/keys/").status_code == 403
    victim = personas.funded_key.key
    assert (
        plain.patch(
            f"/api/keys/{victim.pk}/", {"rpm": 1}, content_type="application/json"
        ).status_code
        == 403
    )
    assert plain.post(f"/api/keys/{victim.pk}/revoke/").status_code == 403
    assert plain.delete(f"/api/keys/{victim.pk}/").status_code == 403
    assert ApiKey.objects.count() == before
    victim.refresh_from_db()
    assert victim.status == "active" and victim.rpm is None


def test_a_key_cannot_mint_a_management_key_but_a_session_can(
    api: Client, funded_client: Client
) -> None:
    refused = api.post(
        "/api/keys/", {"name": "root", "scope": "management"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert not ApiKey.objects.filter(name="root").exists()
    made = funded_client.post(
        "/api/keys/", {"name": "root", "scope": "management"}, content_type="application/json"
    )
    assert made.status_code == 201 and made.json()["scope"] == "management"
    # The new management key can manage keys itself.
    root = Client(HTTP_AUTHORIZATION=f"Bearer {made.json()['secret']}")
    assert root.get("/api/keys/").status_code == 200


def test_a_revoked_management_key_loses_the_scope(api: Client, personas: Personas) -> None:
    revoke = api.post(f"/api/keys/{personas.funded_key.key.pk}/revoke/")
    assert revoke.status_code == 200
    keycache.clear_local()
    assert api.get("/api/keys/").status_code == 401


def test_key_names_are_unique_per_customer(api: Client) -> None:
    assert (
        api.post("/api/keys/", {"name": "ci"}, content_type="application/json").status_code == 201
    )
    again = api.post("/api/keys/", {"name": "CI "}, content_type="application/json")
    assert again.status_code == 400 and "already have a key named" in str(again.json()["name"])


def test_the_index_lists_the_endpoints_for_anyone(client: Client) -> None:
    data = client.get("/api/", HTTP_ACCEPT="application/json").json()
    assert set(data) == {"balance", "keys", "usage", "ledger", "responses"}
    assert data["keys"] == "http://testserver/api/keys/"


def test_the_browsable_api_documents_itself(api: Client) -> None:
    page = api.get("/api/keys/", HTTP_ACCEPT="text/html").content.decode()
    assert "Your API keys" in page


def test_endpoints_need_authentication(client: Client) -> None:
    for url in ("/api/keys/", "/api/usage/", "/api/ledger/", "/api/balance/", "/api/responses/"):
        assert client.get(url).status_code in (401, 403)
    bad = Client(HTTP_AUTHORIZATION="Bearer sk-nx-not-a-real-key")
    assert bad.get("/api/keys/").status_code == 401


def test_a_revoked_key_no_longer_authenticates(api: Client, personas: Personas) -> None:
    assert api.get("/api/balance/").status_code == 200
    api.post(f"/api/keys/{personas.funded_key.key.pk}/revoke/")
    keycache.clear_local()
    assert api.get("/api/balance/").status_code == 401


def test_a_deactivated_user_is_refused_by_key_and_by_session(
    api: Client, funded_client: Client, personas: Personas
) -> None:
    assert api.get("/api/balance/").status_code == 200
    assert funded_client.get("/api/balance/").status_code == 200
    personas.funded.is_active = False
    personas.funded.save()
    refused = api.get("/api/balance/")
    assert refused.status_code == 401 and "account_disabled" in refused.json()["detail"]
    assert funded_client.get("/api/balance/").status_code == 401  # the session is void
    assert funded_client.get("/dashboard/").status_code == 302  # back to the login page
    personas.funded.is_active = True
    personas.funded.save()
    assert api.get("/api/balance/").status_code == 200


def test_balance(api: Client) -> None:
    data = api.get("/api/balance/").json()
    assert data["balance"] == 100_000_000 and data["currency"] == "credits"
    assert data["plan"] == "paid" and data["total_spent"] == 0


def test_create_a_key_with_limits_returns_the_secret_once(api: Client, personas: Personas) -> None:
    AiModel.objects.create(public_id="gpt-4o")
    response = api.post(
        "/api/keys/",
        {
            "name": "script",
            "rpm": 10,
            "concurrency": 4,
            "spend_limit": 5_000_000,
            "allowed_models": ["gpt-4o"],
            "expires_in_days": 7,
        },
        content_type="application/json",
    )
    assert response.status_code == 201
    data = response.json()
    assert data["secret"].startswith("sk-nx-") and data["prefix"] == data["secret"][:14]
    key = ApiKey.objects.get(pk=data["id"])
    assert key.user == personas.funded
    assert (key.rpm, key.spend_limit, key.allowed_models) == (10, 5_000_000, ["gpt-4o"])
    assert key.concurrency == data["concurrency"] == 4
    assert timezone.now() + timedelta(days=6) < key.expires_at < timezone.now() + timedelta(days=8)
    listed = api.get(f"/api/keys/{key.pk}/").json()
    assert "secret" not in listed and listed["status"] == "active"


def test_unknown_models_are_refused(api: Client) -> None:
    response = api.post("/api/keys/", {"allowed_models": ["nope"]}, content_type="application/json")
    assert response.status_code == 400 and "nope" in response.content.decode()


def test_update_renames_and_null_clears_a_limit(api: Client, personas: Personas) -> None:
    key = personas.funded_key.key
    api.patch(
        f"/api/keys/{key.pk}/",
        {"rpm": 7, "spend_limit": 100, "concurrency": 3},
        content_type="application/json",
    )
    key.refresh_from_db()
    assert (key.rpm, key.spend_limit, key.concurrency) == (7, 100, 3)
    response = api.patch(
        f"/api/keys/{key.pk}/",
        {"name": "renamed", "rpm": None, "concurrency": None},
        content_type="application/json",
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert (key.name, key.rpm, key.spend_limit, key.concurrency) == ("renamed", None, 100, None)
    refused = api.patch(f"/api/keys/{key.pk}/", {"concurrency": 0}, content_type="application/json")
    assert refused.status_code == 400 and "concurrency" in refused.json()


def test_delete_revokes_but_keeps_the_record(api: Client, personas: Personas) -> None:
    key = personas.funded_key.key
    other = api.post("/api/keys/", {"name": "spare"}, content_type="application/json").json()
    assert api.delete(f"/api/keys/{other['id']}/").status_code == 204
    spare = ApiKey.objects.get(pk=other["id"])
    assert spare.status == "revoked"
    response = api.patch(f"/api/keys/{spare.pk}/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 400
    assert ApiKey.objects.get(pk=key.pk).status == "active"


def test_usage_is_listed_paginated_and_filterable(api: Client, personas: Personas) -> None:
    for _ in range(3):
        make_usage(personas.funded, personas.funded_key.key, model="gpt-4o")
    failed = make_usage(personas.funded, personas.funded_key.key, model="gpt-4o", status=502)
    data = api.get("/api/usage/").json()
    assert data["count"] == 4 and len(data["results"]) == 4
    assert data["results"][0]["api_key"]["prefix"] == personas.funded_key.key.prefix
    errors = api.get("/api/usage/?status=error").json()
    assert [r["request_id"] for r in errors["results"]] == [failed.request_id]
    one = api.get(f"/api/usage/{failed.request_id}/").json()
    assert one["status"] == 502 and one["charge"] == failed.charge


def test_ledger_and_stored_responses(api: Client, personas: Personas) -> None:
    ledger = api.get("/api/ledger/").json()
    assert ledger["count"] == 1 and ledger["results"][0]["amount"] == 100_000_000
    assert ledger["results"][0]["kind"] == "adjustment"
    stored = make_stored_response(personas.funded)
    listed = api.get("/api/responses/").json()
    assert [r["response_id"] for r in listed["results"]] == [stored.response_id]
    assert api.get(f"/api/responses/{stored.response_id}/").json()["body"] == stored.body


def test_the_api_is_rate_limited(api: Client, settings) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.settings import api_settings
    from rest_framework.throttling import UserRateThrottle

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/min"},
    }
    # DRF reads its rates once; point the throttle at the new ones for this test.
    original = UserRateThrottle.THROTTLE_RATES
    UserRateThrottle.THROTTLE_RATES = api_settings.user_settings["DEFAULT_THROTTLE_RATES"]
    try:
        codes = [api.get("/api/balance/").status_code for _ in range(4)]
    finally:
        UserRateThrottle.THROTTLE_RATES = original
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize("depth", [300, 100_000])
def test_json_nested_too_deep_is_a_400_not_a_500(
    api: Client, personas: Personas, depth: int
) -> None:
    key = personas.funded_key.key
    body = '{"name": "x", "allowed_models": ' + "[" * depth + "]" * depth + "}"
    response = api.patch(f"/api/keys/{key.pk}/", body, content_type="application/json")
    assert response.status_code == 400
    # Nested past 128 levels; 100,000 levels are also past 100,000 arrays.
    assert response.json()["detail"].startswith("The JSON body ")
    key.refresh_from_db()
    assert key.name == "funded key"
