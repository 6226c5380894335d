from __future__ import annotations

import logging

from celery import shared_task

from gateway import journal, writer

log = logging.getLogger(__name__)


@shared_task
def settle_stale() -> int:
    """Settle reservations left by processes that died, recover charges Redis lost
    (the journal), then write what is queued and no writer is draining."""
    settled = writer.settle_stale()
    journal.reconcile(write=writer.write_direct, batch=writer.BATCH)
    writer.flush(wait=False)
    return settled


@shared_task
def flush_usage() -> int:
    return writer.flush(wait=False)
