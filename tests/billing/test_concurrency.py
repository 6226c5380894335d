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


def test_a_payos_and_a_bank_payment_racing_for_one_wallet_both_land_once(
    fake_payos, fake_sepay
) -> None:  # type: ignore[no-untyped-def]
    """A VietQR payment and a bank transfer reach one wallet at the same moment, each
    delivered four times at once (payOS and SePay retry), while usage is charged: both
    are credited, each once, and the balance is the sum of the entries."""
    import json
    import threading

    from billing import memos
    from billing.bank_transfers import sepay_webhook_receive
    from billing.payos_topups import payos_order_create, payos_webhook_receive
    from tests.rails import RATE, SEPAY_KEY

    user = make_user(credits=1_000_000)
    order = payos_order_create(
        user=user, amount_vnd=100_000, return_url="http://x/", cancel_url="http://x/"
    )
    payos_body = json.dumps(fake_payos.webhook(order.order_code)).encode()
    transfer = fake_sepay.transfer(memos.memo_for(user=user), 200_000, deliver=False)
    sepay_body = json.dumps(transfer).encode()
    jobs = [lambda: payos_webhook_receive(payload=payos_body)] * 4
    jobs += [
        lambda: sepay_webhook_receive(payload=sepay_body, authorization=f"Apikey {SEPAY_KEY}")
    ] * 4
    jobs += [lambda i=i: _debit(user, f"req_race_{i}") for i in range(4)]
    start = threading.Barrier(len(jobs))

    def run(job):  # type: ignore[no-untyped-def]
        start.wait()
        try:
            return job()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        list(pool.map(run, jobs))
    wallet = wallet_for(user=user)
    topups = LedgerEntry.objects.filter(wallet=wallet, kind="topup")
    assert sorted(topups.values_list("reference", flat=True)) == sorted(
        [f"payos:{order.order_code}", f"sepay:{transfer['id']}"]
    )
    credited = 100_000 * 1_000_000 // RATE + 200_000 * 1_000_000 // RATE
    total = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    assert wallet.balance == total == 1_000_000 + credited - 4 * 10
