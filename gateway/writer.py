"""Writing settled charges and usage records to the database in batches.

Requests only queue their record (gateway.spend); writers drain the queue. The queue
is split in partitions by wallet (NEXAI_SPEND_PARTITIONS); a writer owns a partition
through a lock with its owner token and a short lease (LEASE_MS) that a thread of the
holder renews, so a writer killed with SIGKILL loses its partitions to the others
within a lease. Writers share the partitions fairly (each takes ceil(P / writers)),
so several work in parallel on disjoint wallets.

A batch is one transaction (`write_batch`): the usage records not yet in the database
(one per request id: the unique constraint on `UsageRecord.request_id` is the fence
that makes a batch replayed by a successor, or written twice by a writer whose lease
lapsed, harmless), one ledger entry per wallet equal to the sum of that wallet's new
records (billing.usage_post_batch), and every record pointing at its entry. Only then
is the batch dropped from the queue, atomically with refreshing the wallets' fast
copies, and only if the writer still owns the partition.

`run_usage_writer` runs `Writer.run` until a signal; the Celery tasks
(gateway.tasks), `run_periodic_jobs` and, on the embedded default, each serving
process's own loop (`ensure_running`) call `flush`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import secrets
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from operator import attrgetter

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from psycopg.types.json import set_json_dumps

from accounts.models import ApiKey, User
from billing import alerts, live
from billing.balances import WalletSnapshot
from billing.models import LedgerEntry
from billing.services import UsageCharges, usage_post_batch
from core import redis as nxredis
from core.db import in_thread
from gateway import journal, spend
from gateway.models import UsageRecord
from gateway.records import FIELDS, Record
from providers.translation.usage import MAX_COUNT

log = logging.getLogger(__name__)

BATCH = 2_000
LEASE_MS = 5_000  # a dead writer's partitions are taken over within this
WRITERS = "nx:writers"  # live writers (owner -> expiry ms), to share the partitions


# -- one batch --------------------------------------------------------------------------


def _one_per_request(records: list[Record]) -> list[Record]:
    """A request settled twice (by the stale sweep and then by its own process, which
    was only slow) is charged once: its own settlement wins over the sweep's."""
    chosen: dict[str, Record] = {}
    for record in records:
        held = chosen.get(record.request_id)
        swept = held is not None and held.error_code == "interrupted"
        if held is None or (swept and record.error_code != "interrupted"):
            chosen[record.request_id] = record
    return list(chosen.values())


Row = Callable[[Record, dict[int, int]], tuple[object, ...]]


@functools.cache
def _columns() -> tuple[list[str], Row]:
    """UsageRecord's columns, and how to make a row of them from a Record and the
    batch's ledger entry ids by customer. The columns come in an order of their own,
    which the statements name: first the fields they share with Record, read in one C
    call (attrgetter), then the few that need converting."""
    known = set(FIELDS)
    plain: list[str] = []
    converted: list[str] = []
    converters: list[Callable[[Record, dict[int, int]], object]] = []
    for field in UsageRecord._meta.concrete_fields:
        name = field.attname
        if name == "id":
            continue
        if name == "created_at":
            converters.append(lambda r, e: datetime.fromtimestamp(r.created_at, tz=UTC))
        elif name == "ledger_entry_id":
            # The entry that charged it: none if nothing was (the model says so).
            converters.append(lambda r, e: e.get(r.user_id) if r.charge else None)
        elif name not in known:
            default = field.get_default()
            converters.append(lambda r, e, d=default: d)
        else:
            plain.append(name)
            continue
        converted.append(name)
    read = attrgetter(*plain)

    def row(record: Record, entry_ids: dict[int, int]) -> tuple[object, ...]:
        return (*read(record), *[convert(record, entry_ids) for convert in converters])

    return plain + converted, row


@functools.cache
def _copy_statement() -> tuple[str, list[str]]:
    """COPY of UsageRecord's columns in PostgreSQL's binary format, and the columns'
    types (what the migrations made of each field), which a binary COPY must be told.
    Binary rows cost the writer about 40 % of the CPU of text ones, and PostgreSQL
    reads the integers and timestamps as they are stored instead of parsing text."""
    names, _ = _columns()
    fields = {f.attname: f for f in UsageRecord._meta.concrete_fields}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(n) for n in names)
    sql = f"COPY {quote(UsageRecord._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)"
    # "varchar(64)" -> "varchar": the length is checked on the way in all the same.
    types = [fields[n].db_type(connection).split("(")[0] for n in names]
    return sql, types


@functools.cache
def _count_fields() -> tuple[str, ...]:
    """The Record's fields that go to integer (32-bit) columns, never null."""
    return tuple(
        f.attname
        for f in UsageRecord._meta.concrete_fields
        if f.get_internal_type() in {"IntegerField", "PositiveIntegerField"} and not f.null
    )


def _storable(records: Iterable[Record]) -> Iterator[Record]:
    """The records, any count past an integer column's range held at its largest value.
    Counts are bounded where they come in (providers.translation.usage), so this is a
    backstop: a binary COPY would store such a value wrapped (2**32 + 5 as 5), and a
    text one, or PostgreSQL's range check, would refuse the batch on every retry and
    hold up every wallet of its partition."""
    names = _count_fields()
    counts = attrgetter(*names)
    for record in records:
        if max(counts(record)) > MAX_COUNT:
            log.warning(
                "usage of %s past the integer columns' range, stored at their largest",
                record.request_id,
            )
            record = record.with_values(
                **{name: min(getattr(record, name), MAX_COUNT) for name in names}
            )
        yield record


def _json_bytes(value: object) -> bytes:
    """JSON for COPY: orjson, several times faster than the json module psycopg uses."""
    return orjson.dumps(value)


def _insert_records(records: list[Record], entries: dict[int, LedgerEntry]) -> None:
    """All rows in one statement: COPY on PostgreSQL, a multi-row INSERT elsewhere. A
    request id already present raises IntegrityError (the caller retries)."""
    names, row = _columns()
    entry_ids = {user_id: entry.pk for user_id, entry in entries.items()}
    if connection.vendor == "postgresql":
        sql, types = _copy_statement()
        with connection.cursor() as cursor, connection.wrap_database_errors:
            # This cursor's JSON only: Django's own JSON columns keep their dumps.
            set_json_dumps(_json_bytes, cursor.cursor)
            with cursor.cursor.copy(sql) as copy:
                copy.set_types(types)
                for record in _storable(records):
                    copy.write_row(row(record, entry_ids))
        return
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(**dict(zip(names, row(r, entry_ids), strict=True)))
            for r in _storable(records)
        ],
        batch_size=500,
    )


def _without_deleted(records: list[Record]) -> tuple[list[Record], set[int]]:
    """Staff may delete a key, or a customer who never had a ledger entry, while their
    requests wait in the queue. Their records then name no key (what SET_NULL did to
    those written before) or go with the customer (CASCADE), instead of failing the
    batch, and with it every wallet of its partition, on every retry. Returns the
    records to write and the customers who are gone."""
    keys = {r.api_key_id for r in records if r.api_key_id is not None}
    users = {r.user_id for r in records}
    gone_keys = keys - set(ApiKey.objects.filter(pk__in=keys).values_list("pk", flat=True))
    gone_users = users - set(User.objects.filter(pk__in=users).values_list("pk", flat=True))
    if not gone_keys and not gone_users:
        return records, gone_users
    log.warning(
        "usage of %s deleted keys and %s deleted customers: written without the key, "
        "dropped with the customer",
        len(gone_keys),
        len(gone_users),
    )
    kept = [
        r.with_values(api_key_id=None) if r.api_key_id in gone_keys else r
        for r in records
        if r.user_id not in gone_users
    ]
    return kept, gone_users


def write_batch(
    records: list[Record], *, pending: bool = True, look_first: bool = False
) -> dict[int, WalletSnapshot]:
    """Write what is not in the database yet, in one transaction; returns the wallets'
    committed states. `pending`: the records' charges are held as pending in the fast
    copy (queued ones), which the states then release; False for a settlement written
    straight to the database."""
    applied: dict[int, int] = {}
    if pending:
        for r in records:
            applied[r.user_id] = applied.get(r.user_id, 0) + r.charge
    unique = _one_per_request(records)
    # First without looking: a batch is new unless a writer died after committing it
    # or raced a successor, and its keys and customers exist unless staff deleted one
    # meanwhile. Then a constraint refuses it (the request id's, or a foreign key's),
    # and the retry skips what the database has and what it no longer knows.
    look = look_first
    for attempt in range(3):
        try:
            with transaction.atomic():
                new, gone = unique, set()
                if look:
                    written = set(
                        UsageRecord.objects.filter(
                            request_id__in=[r.request_id for r in unique]
                        ).values_list("request_id", flat=True)
                    )
                    new = [r for r in unique if r.request_id not in written]
                    new, gone = _without_deleted(new)
                charges = UsageCharges.of(
                    (r.user_id, r.api_key_id, r.charge, r.created_at) for r in new
                )
                batch = usage_post_batch(
                    batch_id=uuid.uuid4().hex,
                    charges=charges,
                    applied={u: c for u, c in applied.items() if u not in gone},
                )
                _insert_records(new, batch.entries)
            return batch.states
        except IntegrityError:
            if attempt == 2:
                raise
            if look:
                log.warning("usage batch raced another writer; retrying without its records")
            look = True
    raise AssertionError("unreachable")


def _after_batch(states: Iterable[WalletSnapshot]) -> None:
    """What a committed batch tells others: the live dashboards, and the low-balance
    alerts and auto top-ups (once per crossing; never raises)."""
    states = list(states)
    live.balances_changed([(s.user_id, s.balance, s.total_spent) for s in states])
    alerts.balances_changed(
        [(s.user_id, s.balance + s.debited, s.balance) for s in states if s.debited]
    )


def write_direct(records: list[Record]) -> None:
    """Settlements that could not reach Redis, or that Redis lost (the journal): their
    charges and usage records go to the database now, idempotent by request id like
    every batch. Nothing of theirs is pending in the fast copy."""
    # Journaled records are mostly in the database already: look before writing.
    states = write_batch(records, pending=False, look_first=True)
    for state in states.values():
        spend.publish(state)
    _after_batch(states.values())


def drain_partitions(
    partitions: Iterable[int],
    *,
    owner: str,
    lease_ms: int = LEASE_MS,
    should_stop: Callable[[], bool] = bool,
    once: bool = False,
) -> int:
    """Write the queues of `partitions` while `owner` holds them; returns records
    written. Each round takes up to BATCH records from all of them together and writes
    them as one batch: a batch's cost is mostly fixed (a transaction, the wallet and
    key UPDATEs, the live updates), and spread over 16 partitions a second's traffic
    would otherwise make 16 small batches instead of one. With `once`, one batch at
    most (the long-running writer goes round its loop between batches, where it gives
    partitions to writers that joined)."""
    store = spend.store()
    held = list(partitions)
    written = 0
    while held and not should_stop():
        # Renewed before each batch too, so a long drain by `flush` (which has no
        # renewing thread) keeps its partitions; a lost lease ends that one's drain.
        held = [p for p in held if store.lease(partition=p, owner=owner, ms=lease_ms)]
        taken: dict[int, list[Record]] = {}
        room = BATCH
        for partition in held:
            if room <= 0:
                break
            if records := store.queued(partition=partition, limit=room):
                taken[partition] = records
                room -= len(records)
        if not taken:
            break
        states = write_batch([r for records in taken.values() for r in records])
        for partition, records in taken.items():
            # A partition holds whole wallets: its states are its records' wallets'.
            mine = [states[u] for u in {r.user_id for r in records} if u in states]
            if not store.drained(partition=partition, owner=owner, count=len(records), states=mine):
                log.warning("lost partition %s mid-batch; its new owner finishes it", partition)
                held.remove(partition)
        _after_batch(states.values())
        written += BATCH - room
        if room > 0 or once:
            # Everything queued when the round began is written. What came meanwhile
            # waits for the next round (the writer's interval): draining it now would
            # pay a batch's fixed cost for a handful of records, over and over.
            break
    return written


# -- one-off drains (tests, Celery, the embedded default) ------------------------------


def _owner_token(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def flush(*, wait: bool = True) -> int:
    """Drain every partition nobody else is draining; returns records written. With
    `wait`, a partition held by another writer is waited for (up to two leases), so
    that everything queued before the call is written when it returns."""
    store = spend.store()
    owner = _owner_token("flush")
    taken = []
    for partition in spend.store_partitions():
        deadline = time.monotonic() + 2 * LEASE_MS / 1000
        while not store.lease(partition=partition, owner=owner, ms=LEASE_MS):
            if not wait:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"another writer held usage partition {partition}")
            # Nothing announces a release across processes: poll the lock.
            time.sleep(0.01)
        else:
            taken.append(partition)
    try:
        return drain_partitions(taken, owner=owner)
    finally:
        for partition in taken:
            store.release(partition=partition, owner=owner)


def settle_stale(*, now_ms: int | None = None, partitions: Iterable[int] | None = None) -> int:
    """Settle reservations whose process died (or that outlived their deadline):
    charge what they had delivered (their last heartbeat), release the rest. Returns
    how many were settled."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    store = spend.store()
    settled = 0
    for partition in spend.store_partitions() if partitions is None else partitions:
        for record in store.stale(partition=partition, now_ms=now_ms):
            final = record.with_values(status=499, error_code="interrupted")
            if store.settle_sync(record=final, require_held=True):
                settled += 1
                log.warning(
                    "settled abandoned request %s for %s credits", record.request_id, record.charge
                )
    return settled


# -- the long-running writer ------------------------------------------------------------

RETRYABLE = (redis.RedisError, DatabaseError)


class Writer:
    """One `run_usage_writer` process: owns a fair share of the partitions under
    leases, sweeps their stale reservations, drains their queues; survives Redis and
    database outages (retried with backoff) and exits only when `stop` is set."""

    def __init__(self, *, lease_ms: int = LEASE_MS) -> None:
        self.owner = _owner_token("writer")
        self.lease_ms = lease_ms
        self.held: set[int] = set()
        self._held_lock = threading.Lock()

    # Leases: renewed by a thread so that a long batch never lets them lapse.
    def _renew_forever(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ms / 3000):
            try:
                self.renew()
            except RETRYABLE:
                log.warning("usage writer could not renew its leases", exc_info=True)

    def renew(self) -> None:
        store = spend.store()
        with self._held_lock:
            held = sorted(self.held)
        for partition in held:
            if not store.lease(partition=partition, owner=self.owner, ms=self.lease_ms):
                log.warning("usage writer lost partition %s", partition)
                with self._held_lock:
                    self.held.discard(partition)

    def _writers(self) -> int:
        if not nxredis.enabled():
            return 1
        client = nxredis.sync_client()
        now = int(time.time() * 1000)
        pipe = client.pipeline(transaction=False)
        pipe.zadd(WRITERS, {self.owner: now + self.lease_ms})
        pipe.zremrangebyscore(WRITERS, "-inf", now)
        pipe.zcard(WRITERS)
        return max(int(pipe.execute()[-1]), 1)

    def claim(self) -> None:
        """Hold ceil(P / writers) partitions: give back extras (a writer joined), take
        free ones (a writer left or died and its leases lapsed)."""
        store = spend.store()
        total = list(spend.store_partitions())
        share = math.ceil(len(total) / self._writers())
        with self._held_lock:
            extra = sorted(self.held)[share:]
        for partition in extra:
            store.release(partition=partition, owner=self.owner)
            with self._held_lock:
                self.held.discard(partition)
        start = int.from_bytes(self.owner.encode()[-4:], "big") % len(total)
        for partition in total[start:] + total[:start]:
            with self._held_lock:
                if len(self.held) >= share:
                    return
                if partition in self.held:
                    continue
            if store.lease(partition=partition, owner=self.owner, ms=self.lease_ms):
                with self._held_lock:
                    self.held.add(partition)

    def step(self, *, sweep: bool, should_stop: Callable[[], bool] = bool) -> int:
        self.claim()
        with self._held_lock:
            held = sorted(self.held)
        if sweep:
            settle_stale(partitions=held)
            journal.reconcile(write=write_direct, batch=BATCH)
        return drain_partitions(
            held, owner=self.owner, lease_ms=self.lease_ms, should_stop=should_stop, once=True
        )

    def run(
        self, stop: threading.Event, *, interval: float = 0.2, sweep_every: float = 2.0
    ) -> None:
        # The renewer has its own signal: it must have stopped before the leases are
        # given back, or a renewal racing the release would take one again for a lease.
        renewing = threading.Event()
        renewer = threading.Thread(
            target=self._renew_forever, args=(renewing,), name="usage-writer-leases", daemon=True
        )
        renewer.start()
        backoff, last_sweep = 0.0, 0.0
        try:
            while not stop.is_set():
                try:
                    sweep = time.monotonic() - last_sweep >= sweep_every
                    written = self.step(sweep=sweep, should_stop=stop.is_set)
                    if sweep:
                        last_sweep = time.monotonic()
                    backoff = 0.0
                    if written >= BATCH:
                        continue  # a full batch: more is waiting, go again at once
                except RETRYABLE:
                    backoff = min(max(backoff * 2, 0.1), 5.0)
                    log.exception("usage writer failed; retrying in %.1fs", backoff)
                    _drop_connection()
                    stop.wait(backoff)
                    continue
                stop.wait(interval)
        finally:
            renewing.set()
            renewer.join()
            self.release_all()

    def release_all(self) -> None:
        store = spend.store()
        with self._held_lock:
            held, self.held = sorted(self.held), set()
        for partition in held:
            with contextlib.suppress(*RETRYABLE):  # the lease lapses by itself
                store.release(partition=partition, owner=self.owner)
        if nxredis.enabled():
            with contextlib.suppress(redis.RedisError):
                nxredis.sync_client().zrem(WRITERS, self.owner)


def _drop_connection() -> None:
    """After a database error the connection may be broken: the next batch opens a
    new one."""
    with contextlib.suppress(DatabaseError):
        connection.close()


# -- the embedded default's in-process writer ------------------------------------------

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
