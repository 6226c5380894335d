"""Staff work from Django admin: these are the pages they rely on."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import LedgerEntry
from billing.services import wallet_for
from providers.models import Provider, ProviderKey
from tests.factories import Personas

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(personas: Personas) -> Client:
    client = Client()
    client.force_login(personas.staff)
    return client


def test_the_home_page_and_admin_are_served(client: Client) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/admin/", follow=True).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "admin:accounts_user_changelist",
        "admin:accounts_apikey_changelist",
        "admin:billing_ledgerentry_changelist",
        "admin:billing_wallet_changelist",
        "admin:providers_provider_changelist",
        "admin:providers_aimodel_changelist",
        "admin:gateway_usagerecord_changelist",
    ],
)
def test_staff_lists_load(staff_client: Client, name: str) -> None:
    assert staff_client.get(reverse(name)).status_code == 200


def test_a_user_page_shows_the_wallet(staff_client: Client, personas: Personas) -> None:
    page = staff_client.get(reverse("admin:accounts_user_change", args=[personas.funded.pk]))
    assert page.status_code == 200
    assert b"100000000" in page.content.replace(b",", b"")


def test_ledger_entries_cannot_be_changed_or_deleted_in_admin(
    staff_client: Client, personas: Personas
) -> None:
    entry = LedgerEntry.objects.filter(wallet__user=personas.funded).first()
    change = reverse("admin:billing_ledgerentry_change", args=[entry.pk])
    page = staff_client.get(change)
    assert b'name="amount"' not in page.content  # shown read-only
    staff_client.post(change, {"amount": "1", "reference": "x", "kind": "topup"})
    delete = staff_client.post(
        reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    entry.refresh_from_db()
    assert entry.amount == 100_000_000


def test_staff_correct_credits_with_a_new_adjustment_entry(
    staff_client: Client, personas: Personas
) -> None:
    url = reverse("admin:accounts_user_adjust", args=[personas.funded.pk])
    form = {"amount_usd": "-0.00025", "reason": "double charge fix", "counts_as_paid": "no"}
    confirm = staff_client.post(url, form)
    assert b"Please confirm" in confirm.content
    reference = confirm.context["reference"]
    response = staff_client.post(url, {**form, "reference": reference, "confirm": "1"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(description="double charge fix")
    assert (entry.kind, entry.amount, entry.created_by) == ("adjustment", -250, personas.staff)
    assert wallet_for(user=personas.funded).balance == 100_000_000 - 250


def test_customers_cannot_reach_admin(personas: Personas) -> None:
    client = Client()
    client.force_login(personas.funded)
    response = client.get(reverse("admin:billing_ledgerentry_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_upstream_secrets_never_appear_in_admin(staff_client: Client) -> None:
    provider = Provider.objects.create(name="up", kind="openai", base_url="http://127.0.0.1:9")
    ProviderKey.objects.create(provider=provider, secret="sk-upstream-very-secret")
    pages = [
        staff_client.get(reverse("admin:providers_provider_changelist")),
        staff_client.get(reverse("admin:providers_provider_change", args=[provider.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert b"sk-upstream-very-secret" not in page.content


def test_staff_suspend_and_reactivate_keys_with_actions(
    staff_client: Client, personas: Personas
) -> None:
    key = personas.funded_key.key
    url = reverse("admin:accounts_apikey_changelist")
    staff_client.post(url, {"action": "suspend", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.status == "suspended"
    staff_client.post(url, {"action": "reactivate", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.status == "active"
