from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway import writer


class Command(BaseCommand):
    help = (
        "Write settled charges and usage records to the database continuously, and "
        "settle reservations of dead processes. Run one (or more: they take turns) "
        "beside the gateway's servers when REDIS_URL is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between batches")
        parser.add_argument(
            "--stale-every", type=float, default=30.0, help="seconds between stale sweeps"
        )

    def handle(self, *args: Any, interval: float, stale_every: float, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"usage writer: a batch every {interval}s")
        since_sweep = stale_every
        while not stop.is_set():
            if since_sweep >= stale_every:
                writer.settle_stale()
                since_sweep = 0.0
            writer.flush()
            stop.wait(interval)
            since_sweep += interval
        writer.flush()  # what was settled before the signal still gets written
