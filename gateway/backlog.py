"""What the spend store holds right now, for /readyz and /metrics: requests admitted
and not yet settled, and settled charges the usage writer has not written yet.

Read only, from the store the servers share (Redis, or this process's own on the
embedded default); a few O(1) commands in one round trip, so a scrape or a probe
costs nothing the hot path would notice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway import spend
from nexai import redis as nxredis


@dataclass(frozen=True, slots=True)
class Backlog:
    reservations: int  # requests admitted and not settled yet
    queued: int  # settled charges waiting for the usage writer
    oldest_queued_at: float | None  # unix seconds the oldest of them was settled

    def lag(self, now: float | None = None) -> float:
        """Seconds the oldest queued charge has waited (0 with an empty queue)."""
        if self.oldest_queued_at is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.oldest_queued_at)


def _settled_at(record: Any) -> float | None:
    if record is None:
        return None
    if isinstance(record, bytes | str):
        record = json.loads(record)
    value = record.get("created_at") if isinstance(record, dict) else record.created_at
    return float(value) if value is not None else None


def backlog() -> Backlog:
    """The store's own answer when it gives one (`store().backlog()`, which a store
    whose layout differs from the one below should provide), else read from the
    layout spend.py has now: one reservations hash, one FIFO queue."""
    store = spend.store()
    own = getattr(store, "backlog", None)
    if own is not None:
        return own()
    if isinstance(store, spend.LocalSpendStore):
        with store.lock:
            head = store.queue[0] if store.queue else None
            return Backlog(len(store.reservations), len(store.queue), _settled_at(head))
    pipe = nxredis.sync_client().pipeline(transaction=False)
    pipe.hlen(spend.RESERVATIONS)
    pipe.llen(spend.QUEUE)
    pipe.lindex(spend.QUEUE, 0)  # the writer drains from the head: the oldest
    reservations, queued, head = pipe.execute()
    return Backlog(int(reservations), int(queued), _settled_at(head))
