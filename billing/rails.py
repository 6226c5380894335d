"""Which ways to pay this server offers: each rail is on when its settings are
(README, "Configuration"); with none, the billing page says how to get credits."""

from __future__ import annotations

from billing import bank_transfers, payos_topups, stripe_topups

PAYOS, SEPAY, STRIPE = "payos", "sepay", "stripe"

# The order the billing page offers them in: the đồng rails first (the first market
# is Vietnam), then cards.
_RAILS = ((PAYOS, payos_topups.is_configured), (SEPAY, bank_transfers.is_configured),
          (STRIPE, stripe_topups.is_configured))  # fmt: skip


def rails_offered() -> list[str]:
    return [name for name, configured in _RAILS if configured()]


def any_rail() -> bool:
    return bool(rails_offered())
