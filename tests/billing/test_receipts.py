"""A printable receipt for every top-up and redemption, with the operator's details."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import LedgerEntry
from billing.services import ledger_post
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_OPERATOR_NAME = "Saigon AI Gateway Co., Ltd."
    settings.NEXAI_OPERATOR_ADDRESS = "12 Nguyen Hue, District 1, Ho Chi Minh City"
    settings.NEXAI_OPERATOR_EMAIL = "billing@nexai.example"
    settings.NEXAI_OPERATOR_TAX_ID = "0312345678"


def test_a_topup_has_a_receipt_with_the_operators_details(operator: None) -> None:
    customer = make_user()
    entry, _ = ledger_post(
        user=customer,
        kind="topup",
        amount=25_000_000,
        reference="stripe:cs_test_receipt",
        description="Stripe Checkout top-up $25.00",
    )
    client = Client()
    client.force_login(customer)
    billing = client.get(reverse("dashboard:billing")).content.decode()
    url = reverse("billing_pages:receipt", args=[entry.pk])
    assert url in billing
    page = client.get(url).content.decode()
    for text in (
        "Saigon AI Gateway Co., Ltd.",
        "12 Nguyen Hue, District 1, Ho Chi Minh City",
        "Tax ID 0312345678",
        customer.email,
        "$25.00",
        "25,000,000",
        "Card (Stripe Checkout)",
        f"R-{entry.created_at:%Y%m%d}-{entry.pk:06d}",
    ):
        assert text in page


def test_a_redemption_has_a_receipt_naming_the_code(operator: None) -> None:
    customer = make_user()
    entry, _ = ledger_post(
        user=customer, kind="redemption", amount=10_000_000, reference="NX-AAAA-BBBB-CCCC-DDDD"
    )
    client = Client()
    client.force_login(customer)
    page = client.get(reverse("billing_pages:receipt", args=[entry.pk])).content.decode()
    assert "Credits from code NX-AAAA-BBBB-CCCC-DDDD" in page and "$10.00" in page


def test_no_receipt_for_someone_elses_entry_or_for_usage() -> None:
    owner, other = make_user(credits=5_000_000), make_user()
    topup, _ = ledger_post(user=owner, kind="topup", amount=5_000_000, reference="stripe:cs_x")
    usage, _ = ledger_post(user=owner, kind="usage", amount=-10, reference="req_x")
    client = Client()
    client.force_login(other)
    assert client.get(reverse("billing_pages:receipt", args=[topup.pk])).status_code == 404
    client.force_login(owner)
    assert client.get(reverse("billing_pages:receipt", args=[usage.pk])).status_code == 404
    grant = LedgerEntry.objects.get(wallet__user=owner, kind="adjustment")
    assert client.get(reverse("billing_pages:receipt", args=[grant.pk])).status_code == 404
    assert Client().get(reverse("billing_pages:receipt", args=[topup.pk])).status_code == 302
