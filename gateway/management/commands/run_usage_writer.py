from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway import writer


class Command(BaseCommand):
    help = (
        "Write settled charges and usage records to the database continuously, settle "
        "reservations of dead processes and recover charges Redis lost. Run one or "
        "more beside the gateway's servers when REDIS_URL is set: they share the "
        "queue's partitions and take over those of a writer that died. Exits only on "
        "SIGTERM or SIGINT; Redis and database errors are retried with backoff."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.2, help="seconds between batches")
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=2.0,
            help="seconds between sweeps of stale reservations and the charge journal",
        )

    def handle(self, *args: Any, interval: float, sweep_every: float, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        worker = writer.Writer()
        self.stdout.write(f"usage writer {worker.owner}: a batch every {interval}s")
        self.stdout.flush()
        # What was settled before the signal is written by the next holder of each
        # partition, which takes it over at once: leases are released on the way out.
        worker.run(stop, interval=interval, sweep_every=sweep_every)
