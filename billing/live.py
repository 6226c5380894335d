"""Live balance updates for the dashboard: after a balance changes and the change is
committed, the owner's websocket group gets the new figures."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def wallet_group(user_id: int) -> str:
    return f"wallet-{user_id}"


def balance_changed(*, user_id: int, balance: int, total_spent: int) -> None:
    """Tell the user's open dashboards. Best effort: a missed update costs a reload,
    never money, so a channel-layer failure is logged and swallowed."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "wallet.update", "balance": balance, "total_spent": total_spent}
    try:
        async_to_sync(layer.group_send)(wallet_group(user_id), message)
    except Exception:
        log.warning("live balance update failed for user %s", user_id, exc_info=True)


def balances_changed(changes: list[tuple[int, int, int]]) -> None:
    """`balance_changed` for many wallets, (user id, balance, total spent) each, in one
    trip into the channel layer's event loop (the usage writer, once per batch)."""
    layer = get_channel_layer()
    if layer is None or not changes:
        return

    async def send_all() -> None:
        for user_id, balance, total_spent in changes:
            message = {"type": "wallet.update", "balance": balance, "total_spent": total_spent}
            await layer.group_send(wallet_group(user_id), message)

    try:
        async_to_sync(send_all)()
    except Exception:
        log.warning("live balance updates failed for %s wallets", len(changes), exc_info=True)
