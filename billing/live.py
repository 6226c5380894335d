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
