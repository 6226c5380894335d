from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.reconcile import payments_reconcile
from billing.services import wallets_verify
from gateway import journal, writer


class Command(BaseCommand):
    help = (
        "Run the periodic jobs once, as Celery beat would: settle reservations left by "
        "dead processes, recover charges Redis lost from the charge journal, write "
        "queued usage, reconcile payOS orders and SePay transfers, and verify every wallet "
        "against its ledger."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        settled = writer.settle_stale()
        recovered = journal.reconcile(write=writer.write_direct, batch=writer.BATCH)
        written = writer.flush()
        payments = payments_reconcile()
        drifts = wallets_verify()
        self.stdout.write(
            f"settled {settled} stale reservations; checked {recovered} journaled charges; "
            f"wrote {written} usage records"
        )
        if payments:
            self.stdout.write(
                "payments: " + ", ".join(f"{name} {count}" for name, count in payments.items())
            )
        for drift in drifts:
            self.stderr.write(
                f"wallet {drift.wallet_id} drifted: balance {drift.balance}, "
                f"ledger sum {drift.ledger_sum}"
            )
        if drifts:
            raise SystemExit(1)
        self.stdout.write("every wallet's balance equals the sum of its ledger entries")
