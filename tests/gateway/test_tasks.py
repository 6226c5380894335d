"""The periodic jobs as Celery runs them (eagerly in tests)."""

from __future__ import annotations

import pytest

from billing.models import Wallet
from billing.services import ledger_post
from billing.tasks import verify_wallets
from gateway.models import UsageRecord
from gateway.tasks import flush_usage, settle_stale
from tests.factories import make_user
from tests.gateway.conftest import Customer

pytestmark = pytest.mark.django_db(transaction=True)


def test_verify_wallets_reports_drift_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    healthy, drifted = make_user(), make_user()
    ledger_post(user=healthy, kind="topup", amount=100, reference="a")
    ledger_post(user=drifted, kind="topup", amount=100, reference="b")
    assert verify_wallets.delay().get() == 0
    Wallet.objects.filter(user=drifted).update(balance=1)
    assert verify_wallets.delay().get() == 1
    assert "drifted: balance 1, ledger sum 100" in caplog.text


def test_the_flush_and_stale_tasks_write_what_requests_left(customer: Customer) -> None:
    customer.client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert settle_stale.delay().get() == 0
    assert UsageRecord.objects.count() == 1  # settle_stale also drains the queue
    customer.client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert flush_usage.delay().get() == 1
    assert UsageRecord.objects.count() == 2
