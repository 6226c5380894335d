"""Writing settled charges and usage records to the database in batches.

Requests only queue their record (gateway.spend); this writer drains the queue:
one transaction per batch writes the ledger entries (billing.usage_post_batch), the
usage records and the keys' last use, then drops the batch from the queue and
refreshes the wallets' fast copies. A batch replayed after a crash is harmless: the
ledger's unique references and the records' unique request ids skip what is there.

Each serving process runs `ensure_running()`'s loop; the Celery task
`gateway.tasks.flush_usage` (and `run_periodic_jobs`) drain it too when no server is
up. A lock makes sure only one writer works at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from accounts.models import ApiKey
from billing import alerts, live
from billing.services import UsageCharge, usage_post_batch
from gateway.models import UsageRecord
from gateway.spend import store
from nexai.db import in_thread

log = logging.getLogger(__name__)

BATCH = 500
_RECORD_FIELDS = {f.attname for f in UsageRecord._meta.concrete_fields} - {"id"}


def _usage_record(record: dict) -> UsageRecord:
    values = {k: v for k, v in record.items() if k in _RECORD_FIELDS}
    values["created_at"] = datetime.fromtimestamp(record["created_at"], tz=UTC)
    values["charge"] = record["charge"]
    return UsageRecord(**values)


def _write(records: list[dict]) -> dict:
    charges = [
        UsageCharge(
            reference=r["request_id"],
            user_id=r["user_id"],
            api_key_id=r["api_key_id"],
            amount=r["charge"],
            description=f"{r['endpoint']} {r['model']}",
        )
        for r in records
    ]
    with transaction.atomic():
        states = usage_post_batch(charges)
        UsageRecord.objects.bulk_create([_usage_record(r) for r in records], ignore_conflicts=True)
        last_used: dict[int, float] = {}
        for r in records:
            last_used[r["api_key_id"]] = max(last_used.get(r["api_key_id"], 0), r["created_at"])
        for key_id, ts in last_used.items():
            ApiKey.objects.filter(pk=key_id).update(last_used_at=datetime.fromtimestamp(ts, tz=UTC))
    return states


def flush(*, wait: bool = True) -> int:
    """Drain the queue into the database; returns how many records were written."""
    spend = store()
    if not spend.writer_lock(seconds=60):
        if not wait:
            return 0
        deadline = time.monotonic() + 10
        while not spend.writer_lock(seconds=60):
            if time.monotonic() > deadline:
                raise TimeoutError("another writer held the usage queue for 10 seconds")
            time.sleep(0.01)
    written = 0
    try:
        while records := spend.queued(limit=BATCH):
            states = _write(records)
            spend.drained(count=len(records), states=states)
            # Low-balance alerts and auto top-ups, once per crossing (never raises).
            alerts.balances_changed(
                [(user_id, s.balance + s.applied, s.balance) for user_id, s in states.items()]
            )
            for user_id, state in states.items():
                live.balance_changed(
                    user_id=user_id, balance=state.balance, total_spent=state.total_spent
                )
            written += len(records)
    finally:
        spend.writer_unlock()
    return written


def settle_stale(*, now_ms: int | None = None) -> int:
    """Settle reservations whose process died: charge what they had delivered (their
    last heartbeat), release the rest. Returns how many were settled."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    spend = store()
    settled = 0
    for record in spend.stale(now_ms=now_ms):
        final = {**record, "status": 499, "error_code": "interrupted"}
        if spend.settle_sync(record=final):
            settled += 1
            log.warning(
                "settled stale request %s for %s credits", record["request_id"], record["charge"]
            )
    return settled


_tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


def ensure_running() -> None:
    """Start this event loop's background writer, once."""
    interval = settings.NEXAI_USAGE_FLUSH_INTERVAL
    if interval <= 0:
        return
    loop = asyncio.get_running_loop()
    if loop in _tasks:
        return
    _tasks[loop] = loop.create_task(_run(interval))


async def _run(interval: float) -> None:
    drain = in_thread(flush)
    while True:
        await asyncio.sleep(interval)
        try:
            await drain(wait=False)
        except Exception:
            log.exception("usage writer failed; the batch stays queued and is retried")
