"""Staff see the health of every upstream key and route in the admin, can test one
with a tiny real request, and are told when the gateway disabled a key."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from gateway.health import provider_key_disable_for_auth
from providers.models import ProviderKey, Route
from tests.factories import make_personas
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.gateway.conftest import Customer, add_model, add_provider, customer_for
from tests.servers import AsgiServer

SECRET = "sk-proj-admin-health-Zq8vT3kLm2Xw9Rb4Nc7"


@pytest.fixture
def staff(transactional_db: None) -> Client:
    client = Client()
    client.force_login(make_personas().staff)
    return client


@pytest.fixture
def fake() -> FakeOpenAI:
    with FakeOpenAI(expected_key=SECRET) as server:
        yield server


@pytest.fixture
def customer(gateway: AsgiServer, fake: FakeOpenAI, transactional_db: None) -> Customer:
    provider = add_provider("openai", fake.base_url + "/v1", SECRET)
    add_model("gpt-4o", (provider, "gpt-4o"))
    add_model("gpt-4o-mini", (provider, "gpt-4o-mini"))
    return customer_for(gateway)


def ask(gateway: AsgiServer, customer: Customer, model: str) -> int:
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=30,
    ).status_code


def row(page: str, model: str) -> str:
    """The health table's row for a model (the page lists one row per route and key)."""
    start = page.index(f"<td>{model}</td>")
    return page[start : page.index("</tr>", start)]


def test_the_health_page_shows_state_error_rate_latency_and_the_last_error_without_secrets(
    staff: Client, gateway: AsgiServer, customer: Customer, fake: FakeOpenAI
) -> None:
    fake.fail_next(500, openai_error(500, f"boom for key {SECRET}"), model="gpt-4o")
    fake.fail_next(429, model="gpt-4o-mini", headers={"retry-after": "120"})
    assert [ask(gateway, customer, "gpt-4o") for _ in range(3)] == [502, 200, 200]
    assert ask(gateway, customer, "gpt-4o-mini") == 502
    page = staff.get(reverse("admin:providers_health")).content.decode()
    assert SECRET not in page and SECRET[-6:] not in page
    recovered = row(page, "gpt-4o")
    assert "closed" in recovered and "33%" in recovered and " ms" in recovered
    assert "upstream answered 500: boom for key [redacted]" in recovered
    limited = row(page, "gpt-4o-mini")
    assert "open</strong> until" in limited and "100%" in limited
    assert "upstream answered 429" in limited
    key_id = ProviderKey.objects.get().pk
    assert f'name="key" value="{key_id}"' in page  # each route can be tested


def test_the_test_action_sends_a_tiny_real_request_and_shows_the_answer(
    staff: Client, customer: Customer, fake: FakeOpenAI
) -> None:
    key = ProviderKey.objects.get()
    route = Route.objects.get(model__public_id="gpt-4o")
    url = reverse("admin:providers_health_test")
    page = staff.post(url, {"key": key.pk, "route": route.pk}, follow=True).content.decode()
    assert "Test of gpt-4o via openai" in page and "200 in" in page
    assert "Hello from the fake model." in page
    sent = fake.last_request.json
    assert sent["model"] == "gpt-4o" and sent["max_tokens"] <= 5
    fake.fail_next(401, openai_error(401, f"Incorrect API key provided: {SECRET}"))
    page = staff.post(url, {"key": key.pk, "route": route.pk}, follow=True).content.decode()
    assert "401 in" in page and "Incorrect API key provided: [redacted]" in page
    assert SECRET not in page


def test_a_key_the_gateway_disabled_is_announced_on_the_providers_pages(
    staff: Client, customer: Customer
) -> None:
    key = ProviderKey.objects.get()
    assert provider_key_disable_for_auth(key_id=key.pk, refused_for=3700)
    assert not provider_key_disable_for_auth(key_id=key.pk, refused_for=3800)  # once
    for name in ("admin:providers_health", "admin:providers_provider_changelist"):
        page = staff.get(reverse(name)).content.decode()
        assert f"openai key …{key.fingerprint}" in page and "Disabled automatically" in page
    assert SECRET not in page


def test_customers_cannot_see_the_health_page(customer: Customer) -> None:
    client = Client()
    client.force_login(customer.user)
    response = client.get(reverse("admin:providers_health"))
    assert response.status_code == 302 and "/admin/login/" in response["location"]
