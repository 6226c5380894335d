"""A durable record of the charges each serving process queued in Redis.

Redis runs with AOF and `appendfsync everysec` (docs/operations.md), so a crash of
Redis can lose up to a second of writes, queued charges among them. Each serving
process therefore also appends every record it settled through Redis to a local file
(NEXAI_CHARGE_JOURNAL_DIR, one segment per process every SEGMENT_SECONDS). The file
is written before the response's last bytes, so it outlives a crash of Redis or of
the process (not of the host's disk).

The writers (`Writer.step`, `run_periodic_jobs`) reconcile segments nobody has
written to for RECOVER_AFTER seconds: every record not yet in the database is written
straight to it (idempotent by request id: a record still queued in Redis is skipped
when the writer reaches it), then the segment is deleted. Off unless the directory is
set; the cost on the request path is one buffered write.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from gateway.records import Record

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 30.0
RECOVER_AFTER = 60.0  # seconds: by then the writer has written what Redis still holds
SUFFIX = ".charges"

_lock = threading.Lock()
_open: dict[str, object] = {"file": None, "path": None, "opened": 0.0, "pid": 0}


def _directory() -> Path | None:
    name = settings.NEXAI_CHARGE_JOURNAL_DIR
    return Path(name) if name else None


def _segment(directory: Path) -> BinaryIO:
    now = time.time()
    if (
        _open["file"] is None
        or _open["pid"] != os.getpid()
        or now - float(_open["opened"]) > SEGMENT_SECONDS  # type: ignore[arg-type]
    ):
        if _open["file"] is not None and _open["pid"] == os.getpid():
            _open["file"].close()  # type: ignore[union-attr]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{os.getpid()}-{int(now * 1000)}{SUFFIX}"
        _open.update(file=path.open("ab"), path=path, opened=now, pid=os.getpid())
    return _open["file"]  # type: ignore[return-value]


def append(record: Record) -> None:
    directory = _directory()
    if directory is None:
        return
    line = record.dumps() + b"\n"
    with _lock:
        segment = _segment(directory)
        segment.write(line)
        segment.flush()  # into the OS: survives this process dying


def close() -> None:
    """End this process's segment (at shutdown; tests): the next reconcile may take it."""
    with _lock:
        if _open["file"] is not None and _open["pid"] == os.getpid():
            _open["file"].close()  # type: ignore[union-attr]
        _open.update(file=None, path=None, opened=0.0, pid=0)


def _current() -> Path | None:
    return _open["path"] if _open["pid"] == os.getpid() else None  # type: ignore[return-value]


def _read(path: Path) -> list[Record]:
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(Record.loads(line))
        except ValueError:
            # A line cut by a crash mid-write: its request settled through Redis or
            # not at all (the sweep releases it).
            log.warning("skipped an unreadable line in %s", path)
    return records


def reconcile(
    *,
    write: Callable[[list[Record]], object],
    older_than: float = RECOVER_AFTER,
    batch: int = 2_000,
) -> int:
    """Hand what idle segments hold to `write` (which keeps one charge per request
    id), then delete them; returns records read."""
    directory = _directory()
    if directory is None or not directory.is_dir():
        return 0
    cutoff = time.time() - older_than
    seen = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            if path == _current() or path.stat().st_mtime > cutoff:
                continue
            records = _read(path)
        except FileNotFoundError:
            continue  # another writer reconciled it
        for start in range(0, len(records), batch):
            write(records[start : start + batch])
        seen += len(records)
        path.unlink(missing_ok=True)
    return seen
