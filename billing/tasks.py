from __future__ import annotations

import logging

from celery import shared_task

from billing.autotopup import auto_topup_charge
from billing.reconcile import payments_reconcile
from billing.services import wallets_verify

log = logging.getLogger(__name__)


@shared_task
def verify_wallets() -> int:
    """Report every wallet whose balance differs from the sum of its ledger entries."""
    drifts = wallets_verify()
    for drift in drifts:
        log.error(
            "wallet %s drifted: balance %s, ledger sum %s",
            drift.wallet_id,
            drift.balance,
            drift.ledger_sum,
        )
    return len(drifts)


@shared_task
def auto_topup_run(user_id: int, crossing: int) -> str:
    """Charge a customer's saved card once for one low-balance crossing."""
    return auto_topup_charge(user_id=user_id, crossing=crossing)


@shared_task
def reconcile_payments() -> dict[str, int]:
    """Close expired payOS links, flag paid ones whose webhook never came, and read
    SePay's transactions for any webhook that never arrived."""
    return payments_reconcile()
