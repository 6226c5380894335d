from __future__ import annotations

import logging

from celery import shared_task

from gateway import writer

log = logging.getLogger(__name__)


@shared_task
def settle_stale() -> int:
    """Settle reservations left by processes that died, then write what is queued."""
    settled = writer.settle_stale()
    writer.flush()
    return settled


@shared_task
def flush_usage() -> int:
    return writer.flush()
