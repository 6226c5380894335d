"""The đồng rails in tests: the operator's rate, the settings that point the project at
a fake payOS and a fake SePay (fixtures in tests/conftest.py), and webhook posting."""

from __future__ import annotations

import json
from datetime import date

from django.test import Client

from tests.fakes.payos import FakePayOS
from tests.fakes.sepay import FakeSePay

RATE = 25_400  # đồng per US$
RATE_DATE = date(2026, 12, 1)
SEPAY_KEY = "sepay-webhook-key-for-tests"


def use_rate(settings) -> int:  # type: ignore[no-untyped-def]
    settings.NEXAI_VND_PER_USD = RATE
    settings.NEXAI_VND_PER_USD_DATE = RATE_DATE
    return RATE


def use_payos(settings, fake: FakePayOS) -> FakePayOS:  # type: ignore[no-untyped-def]
    use_rate(settings)
    settings.PAYOS_CLIENT_ID = fake.client_id
    settings.PAYOS_API_KEY = fake.expected_key
    settings.PAYOS_CHECKSUM_KEY = fake.checksum_key
    settings.PAYOS_BASE_URL = fake.base_url
    return fake


def use_sepay(settings, fake: FakeSePay) -> FakeSePay:  # type: ignore[no-untyped-def]
    use_rate(settings)
    settings.SEPAY_API_KEY = SEPAY_KEY
    settings.SEPAY_BANK_BIN = "970422"
    settings.SEPAY_ACCOUNT_NUMBER = fake.account_number
    settings.SEPAY_ACCOUNT_NAME = "CONG TY TNHH NEXAI"
    settings.SEPAY_API_TOKEN = fake.expected_key
    settings.SEPAY_API_BASE = fake.base_url
    return fake


def post_payos(body: dict | bytes, client: Client | None = None):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (client or Client()).post("/payos/webhook/", data=data, content_type="application/json")


def post_sepay(body: dict, *, key: str = SEPAY_KEY):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Apikey {key}"} if key else {}
    return Client().post(
        "/sepay/webhook/", data=json.dumps(body), content_type="application/json", **headers
    )
