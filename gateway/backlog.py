"""What the spend store holds right now, for /readyz and /metrics: requests admitted
and not yet settled, and settled charges the usage writer has not written yet.

Read only, from the store the servers share (Redis, or this process's own on the
embedded default); three O(1) commands a partition in one round trip, so a scrape or a
probe costs nothing the hot path would notice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import redis as nxredis
from gateway import spend
from gateway.records import Record


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


def backlog() -> Backlog:
    """Read from the store the servers share: every partition's reservations and queue
    (one pipelined round trip on Redis), or this process's own store."""
    store = spend.store()
    if isinstance(store, spend.LocalSpendStore):
        with store.lock:
            head = store.queue[0] if store.queue else None
            oldest = head.created_at if head is not None else None
            return Backlog(len(store.reservations), len(store.queue), oldest)
    pipe = nxredis.sync_client().pipeline(transaction=False)
    for partition in range(spend.partitions()):
        pipe.hlen(spend.reservations_key(partition))
        pipe.llen(spend.queue_key(partition))
        pipe.lindex(spend.queue_key(partition), 0)  # the writer drains from the head
    answers = pipe.execute()
    heads = [Record.loads(head).created_at for head in answers[2::3] if head]
    return Backlog(sum(answers[0::3]), sum(answers[1::3]), min(heads, default=None))
