"""Telling the wallet's fast copy that the ledger changed.

The gateway admits requests against a copy of each wallet kept off the database
(`gateway.spend` owns it: the Redis hash, or the in-process dict, and every script that
writes them). Billing must not import the gateway, so after a committed change it
publishes a `WalletSnapshot` here and the owner, registered at start-up
(`GatewayConfig.ready`), applies it. `Wallet.version` (bumped by each entry) orders
snapshots, so a late, older one is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WalletSnapshot:
    user_id: int
    balance: int  # credits, as committed
    version: int
    paid: bool
    total_spent: int  # credits
    applied: int = 0  # pending usage (credits) that this change wrote to the ledger
    debited: int = 0  # credits this change took from the balance (a usage batch)


_sinks: list[Callable[[WalletSnapshot], None]] = []


def register(sink: Callable[[WalletSnapshot], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def publish(snapshot: WalletSnapshot) -> None:
    for sink in _sinks:
        sink(snapshot)
