"""Real concurrency needs real row locks: these run on PostgreSQL (CI's second pass)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum

from billing.models import LedgerEntry
from billing.services import ledger_post, wallet_for
from tests.factories import make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _debit(user, reference: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        _, created = ledger_post(user=user, kind="usage", amount=-10, reference=reference)
        return created
    finally:
        connection.close()


def test_fifty_concurrent_debits_keep_balance_equal_to_the_ledger_and_apply_once() -> None:
    user = make_user(credits=1_000)
    # 50 debits, but only 40 distinct references: each duplicate must apply once.
    references = [f"req_{i % 40}" for i in range(50)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        created = list(pool.map(lambda ref: _debit(user, ref), references))
    wallet = wallet_for(user=user)
    total = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    assert sum(created) == 40
    assert LedgerEntry.objects.filter(kind="usage").count() == 40
    assert wallet.balance == total == 1_000 - 40 * 10
    assert wallet.total_spent == 400
