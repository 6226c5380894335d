"""An upstream that reports more usage than the reservation bounded (a provider bug):
the request is charged in full, the wallet admits nothing until it is positive again,
and staff hear of it once per wallet per hour."""

from __future__ import annotations

import time

import httpx
import pytest
from django.core import mail

from billing.overdraw import overdraw_alert
from billing.services import credits_grant, wallet_for
from providers.models import AiModel
from tests.factories import Personas
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import customer_for, settled
from tests.servers import AsgiServer


def _post(gateway: AsgiServer, secret: str) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )


def test_usage_beyond_the_reservation_is_charged_and_stops_the_wallet_until_it_is_positive(
    gateway: AsgiServer,
    openai_catalogue: AiModel,
    fake_openai: FakeOpenAI,
    personas: Personas,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # max_tokens 10 bounds the reservation; the upstream says it wrote 100,000 tokens.
    fake_openai.set_reply(text="ok", prompt_tokens=10, completion_tokens=100_000)
    customer = customer_for(gateway, credits=50_000)
    assert _post(gateway, customer.key.secret).status_code == 200
    # Refused before the charge is even written: it is pending in the wallet's copy.
    refused = _post(gateway, customer.key.secret)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_quota"
    [record] = settled(customer)
    assert record.charge == 1_000_025  # 10 input + 100,000 output tokens, in full
    assert wallet_for(user=customer.user).balance == 50_000 - 1_000_025
    assert _post(gateway, customer.key.secret).status_code == 402
    # Staff were told, once, in the background.
    deadline = time.monotonic() + 10
    while not mail.outbox:
        assert time.monotonic() < deadline, "no alert email"
        time.sleep(0.02)
    assert mail.outbox[0].to == [personas.staff.email]
    assert record.request_id in mail.outbox[0].body
    assert any(r.levelname == "ERROR" and record.request_id in r.message for r in caplog.records)
    # Credits that bring the wallet back above zero reopen it.
    credits_grant(user=customer.user, amount=2_000_000, reference="make-good")
    fake_openai.set_reply(text="ok", prompt_tokens=10, completion_tokens=5)
    assert _post(gateway, customer.key.secret).status_code == 200
    assert [r.status for r in settled(customer)] == [200, 200]


@pytest.mark.django_db
def test_staff_are_emailed_once_per_wallet_per_hour(personas: Personas) -> None:
    for request_id in ("req_a", "req_b"):
        overdraw_alert(user_id=personas.funded.pk, request_id=request_id, reserved=5, charge=9)
    overdraw_alert(user_id=personas.broke.pk, request_id="req_c", reserved=5, charge=9)
    assert [m.body.split()[1] for m in mail.outbox] == ["req_a", "req_c"]
