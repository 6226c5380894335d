"""Live balance updates for the dashboard: after a balance changes and the change is
committed, the owner's websocket group gets the new figures."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from core import redis as nxredis

log = logging.getLogger(__name__)


WATCHERS = "nx:overview-pages"  # user id -> pages open on their overview (with Redis)


def wallet_group(user_id: int) -> str:
    return f"wallet-{user_id}"


async def watching(user_id: int, pages: int) -> None:
    """A page of the user's opened (+1) or closed (-1). With Redis, the usage writer
    sends only to wallets someone watches: most customers' traffic flows with no page
    open, and a group send costs a few Redis round trips even to an empty group. A
    server killed with pages open leaves its counts up, which costs only the sends."""
    if not nxredis.enabled():
        return
    try:
        await nxredis.async_client().hincrby(WATCHERS, str(user_id), pages)
    except redis.RedisError:
        log.warning("could not count a live page of user %s", user_id, exc_info=True)


def _watched(changes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    if not nxredis.enabled():
        return changes
    try:
        open_pages = nxredis.sync_client().hmget(WATCHERS, [str(c[0]) for c in changes])
    except redis.RedisError:
        return changes  # send them all, as without the count
    return [c for c, pages in zip(changes, open_pages, strict=True) if pages and int(pages) > 0]


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


def payment_changed(*, user_id: int, reference: str, status: str) -> None:
    """Tell the customer's open pages that a payment they are waiting for moved on
    (paid, credited, cancelled, expired): the payment page shows its outcome without a
    reload. Best effort, like `balance_changed`."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "payment.update", "reference": reference, "status": status}
    try:
        async_to_sync(layer.group_send)(wallet_group(user_id), message)
    except Exception:
        log.warning("live payment update failed for user %s", user_id, exc_info=True)


def balances_changed(changes: list[tuple[int, int, int]]) -> None:
    """`balance_changed` for many wallets, (user id, balance, total spent) each: the
    usage writer's, once per batch. With Redis they go out from a thread of their own,
    in order, while the writer goes on with its next batch (a batch changes hundreds
    of wallets, and a round trip each would hold the writer up); the in-process layer
    of the embedded default is only reachable from its own loop, so there they are
    sent before this returns."""
    layer = get_channel_layer()
    if layer is None or not changes:
        return
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(_send_all)(layer, changes)
        return
    if changes := _watched(changes):
        _sender().submit(layer, changes)


async def _send_all(layer: Any, changes: list[tuple[int, int, int]]) -> None:
    """Best effort, like `balance_changed`: a failure is logged and swallowed."""
    try:
        for user_id, balance, total_spent in changes:
            message = {"type": "wallet.update", "balance": balance, "total_spent": total_spent}
            await layer.group_send(wallet_group(user_id), message)
    except Exception:
        log.warning("live balance updates failed for %s wallets", len(changes), exc_info=True)


class _Sender:
    """One event loop in a daemon thread, sending batches of updates one after the
    other (so a dashboard never sees an older balance after a newer one), on
    connections it keeps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[Any, list[tuple[int, int, int]]]] = asyncio.Queue()
        threading.Thread(target=self._run, name="live-balance-updates", daemon=True).start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        while True:
            layer, changes = await self.queue.get()
            await _send_all(layer, changes)

    def submit(self, layer: Any, changes: list[tuple[int, int, int]]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (layer, changes))


_sender_lock = threading.Lock()
_the_sender: _Sender | None = None


def _sender() -> _Sender:
    global _the_sender
    with _sender_lock:
        if _the_sender is None:
            _the_sender = _Sender()
        return _the_sender
