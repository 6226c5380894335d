"""The monotonic clock the per-process caches read (API keys, the catalogue): one seam,
so a test moves time forward instead of reaching into a cache's state."""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0  # seconds added by tests

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


clock = Clock()
