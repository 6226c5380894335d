"""The billing page offers the rails the server is configured for, and only those."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(settings):  # type: ignore[no-untyped-def]
    settings.STRIPE_SECRET_KEY = ""
    settings.NEXAI_SUPPORT_EMAIL = "help@nexai.example"
    client = Client()
    client.force_login(make_user())
    return lambda: client.get("/dashboard/billing/").content.decode()


def test_with_no_rail_the_page_says_how_to_get_credits(page) -> None:  # type: ignore[no-untyped-def]
    text = page()
    assert 'data-testid="stripe-off"' in text and "help@nexai.example" in text
    for rail in ("rail-vietqr", "rail-transfer", "rail-card"):
        assert rail not in text


def test_payos_alone_offers_vietqr_in_dong_and_no_card(page, fake_payos) -> None:  # type: ignore[no-untyped-def]
    text = page()
    assert 'data-testid="rail-vietqr"' in text and "100,000 ₫" in text
    assert "rail-card" not in text and "rail-transfer" not in text and "stripe-off" not in text
    assert "Rate 25,400 ₫ = US$1" in text


def test_sepay_alone_offers_a_bank_transfer_with_the_customers_memo(page, fake_sepay) -> None:  # type: ignore[no-untyped-def]
    text = page()
    assert 'data-testid="rail-transfer"' in text and "NX" in text
    assert "rail-vietqr" not in text and "rail-card" not in text


def test_all_three_rails_are_offered_together(page, fake_payos, fake_sepay, settings) -> None:  # type: ignore[no-untyped-def]
    settings.STRIPE_SECRET_KEY = "sk_test_rails"
    text = page()
    positions = [
        text.index(f'data-testid="{rail}"')
        for rail in ("rail-vietqr", "rail-transfer", "rail-card")
    ]
    assert positions == sorted(positions)  # đồng first: the first market is Vietnam


def test_a_payos_key_without_a_rate_offers_nothing_in_dong(page, fake_payos, settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEXAI_VND_PER_USD = 0
    assert "rail-vietqr" not in page()
