from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.rollup import recent_days, rollup_day


class Command(BaseCommand):
    help = (
        "Recompute the daily report rollups from the usage table: today and yesterday "
        "by default (what the Celery task does), or --days N, or --since YYYY-MM-DD."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=2)
        parser.add_argument("--since", type=date.fromisoformat)

    def handle(self, *args: Any, days: int, since: date | None, **options: Any) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1")
        targets = recent_days(count=days)
        if since is not None:
            today = targets[0]
            if since > today:
                raise CommandError("--since is in the future")
            targets = [since + timedelta(days=i) for i in range((today - since).days + 1)]
        total = 0
        for day in sorted(targets):
            total += rollup_day(day)
        self.stdout.write(f"rolled up {len(targets)} days, {total:,} usage records")
