"""The periodic reconciliation of the đồng rails against payOS and SePay, run by
Celery beat (`reconcile-payments`) and by `manage.py run_periodic_jobs`."""

from __future__ import annotations

import logging

import httpx
from payos import PayOSError

from billing import bank_transfers, payos_topups

log = logging.getLogger(__name__)


def payments_reconcile() -> dict[str, int]:
    """Each rail on its own: one that cannot be reached leaves the other to run."""
    counts: dict[str, int] = {}
    if payos_topups.is_configured():
        try:
            counts.update(
                {f"payos_{k}": v for k, v in payos_topups.payos_orders_reconcile().items()}
            )
        except PayOSError:
            log.warning("payOS reconciliation failed", exc_info=True)
    try:
        synced = bank_transfers.sepay_transactions_sync()
        counts.update({f"sepay_{k}": v for k, v in synced.items()})
    except (httpx.HTTPError, ValueError):
        log.warning("SePay reconciliation failed", exc_info=True)
    return counts
