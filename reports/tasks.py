from __future__ import annotations

from celery import shared_task

from reports.rollup import recent_days, rollup_days


@shared_task
def rollup_recent_usage() -> int:
    """Refresh today's and yesterday's rollups (yesterday catches records settled late)."""
    return rollup_days(recent_days())
