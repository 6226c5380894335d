"""The usage writer: one ledger entry per wallet per batch equal to its records,
one charge per request id, partitions owned under leases that a dead writer loses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum

from accounts.models import ApiKey
from billing.models import LedgerEntry, Wallet
from gateway import spend, writer
from gateway.models import UsageRecord
from gateway.records import FIELDS, Record
from tests.factories import make_key, make_user

ROOT = Path(__file__).resolve().parents[2]


def _customers(n: int, *, credits: int = 10_000_000) -> list[tuple[int, int]]:
    """(user id, key id) of n funded customers."""
    out = []
    for _ in range(n):
        user = make_user(credits=credits)
        out.append((user.pk, make_key(user).key.pk))
    return out


def _queue(customers: list[tuple[int, int]], n: int, *, prefix: str = "req") -> dict[str, int]:
    """Settle n requests spread over the customers, as the gateway does; returns the
    charge of each request id."""
    charges = {}
    store = spend.store()
    for i in range(n):
        user_id, key_id = customers[i % len(customers)]
        record = Record(
            request_id=f"{prefix}_{i}", user_id=user_id, api_key_id=key_id,
            endpoint="chat.completions", model="gpt-4o", charge=1 + i % 97, status=200,
            input_tokens=10, output_tokens=i % 97,
        )  # fmt: skip
        store.settle_sync(record=record)
        charges[record.request_id] = record.charge
    return charges


def _assert_written_once(charges: dict[str, int], customers: list[tuple[int, int]]) -> None:
    records = UsageRecord.objects.filter(request_id__in=charges)
    assert dict(records.values_list("request_id", "charge")) == charges
    assert records.count() == len(charges)
    for entry in LedgerEntry.objects.filter(kind="usage").prefetch_related("usage_records"):
        assert entry.amount == -sum(r.charge for r in entry.usage_records.all())
    assert not records.filter(charge__gt=0, ledger_entry=None).exists()
    spent: dict[int, int] = {}
    for user_id, charge in records.values_list("user_id", "charge"):
        spent[user_id] = spent.get(user_id, 0) + charge
    for user_id, _ in customers:
        wallet = Wallet.objects.get(user_id=user_id)
        assert wallet.balance == 10_000_000 - spent.get(user_id, 0)
        assert (
            wallet.balance
            == LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
        )
        assert spend.store().snapshot(user_id=user_id).get("pend", 0) == 0


@pytest.mark.django_db(transaction=True)
def test_each_usage_entry_equals_the_sum_of_the_records_it_charged() -> None:
    customers = _customers(3)
    charges = _queue(customers, 30)
    assert writer.flush() == 30
    _assert_written_once(charges, customers)
    # One entry per wallet for the batch, referenced by the batch.
    entries = LedgerEntry.objects.filter(kind="usage")
    assert entries.count() == 3
    assert all(e.reference.startswith("usage:") for e in entries)


@pytest.mark.django_db(transaction=True)
def test_a_request_settled_twice_is_written_and_charged_once() -> None:
    """The sweep took a slow request for dead and settled its last heartbeat; then
    the request settled itself. One charge: the request's own."""
    [(user_id, key_id)] = _customers(1)
    base = Record(
        request_id="req_twice", user_id=user_id, api_key_id=key_id,
        endpoint="chat.completions", model="gpt-4o", status=499,
    )  # fmt: skip
    store = spend.store()
    store.settle_sync(record=base.with_values(charge=40, error_code="interrupted"))
    store.settle_sync(record=base.with_values(charge=100, status=200))
    writer.flush()
    store.settle_sync(record=base.with_values(charge=100, status=200))  # a late replay
    writer.flush()
    record = UsageRecord.objects.get(request_id="req_twice")
    assert (record.charge, record.status) == (100, 200)
    assert Wallet.objects.get(user_id=user_id).balance == 10_000_000 - 100
    assert store.snapshot(user_id=user_id).get("pend", 0) == 0


@pytest.mark.django_db(transaction=True)
def test_a_batch_sets_what_each_key_spent_and_when_it_was_last_used() -> None:
    customers = _customers(2)
    charges = _queue(customers, 12)
    writer.flush()
    for _, key_id in customers:
        mine = UsageRecord.objects.filter(api_key_id=key_id)
        key = ApiKey.objects.get(pk=key_id)
        assert key.spent == sum(charges[r] for r in mine.values_list("request_id", flat=True))
        assert key.spent > 0
        assert key.last_used_at == mine.latest("created_at").created_at


@pytest.mark.django_db(transaction=True)
def test_a_key_deleted_while_its_usage_waits_blocks_nothing() -> None:
    """Staff delete a key (and a customer who never had credits) with requests of
    theirs still queued: the key's usage lands without the key and is charged, the
    customer's goes with them, and everyone else's in the batch lands too."""
    customers = _customers(3)
    stranger = make_user()
    charges = _queue(customers, 30)
    stranger_charges = _queue([(stranger.pk, make_key(stranger).key.pk)], 2, prefix="gone")
    deleted_key = customers[0][1]
    ApiKey.objects.filter(pk=deleted_key).delete()
    stranger.delete()
    writer.flush()
    _assert_written_once(charges, customers)
    orphaned = UsageRecord.objects.filter(user_id=customers[0][0])
    assert orphaned.count() == 10 and not orphaned.exclude(api_key=None).exists()
    assert not UsageRecord.objects.filter(request_id__in=stranger_charges).exists()
    assert spend.store().queue_depth() == 0


@pytest.mark.django_db(transaction=True)
def test_charge_lines_land_exactly_as_metered() -> None:
    """Whatever a line's text holds (the COPY format's tab, newline and backslash,
    quotes, non-ASCII), the record keeps it."""
    [(user_id, key_id)] = _customers(1)
    lines = [["output", 'tab\there "quoted" back\\slash\nnext line, é 你好 🙂', 3, None]]
    record = Record(
        request_id="req_lines", user_id=user_id, api_key_id=key_id,
        endpoint="chat.completions", model="gpt-4o", charge=3, status=200, charge_lines=lines,
    )  # fmt: skip
    spend.store().settle_sync(record=record)
    writer.flush()
    assert UsageRecord.objects.get(request_id="req_lines").charge_lines == lines


@pytest.mark.django_db(transaction=True)
def test_every_field_of_a_record_lands_as_it_was_settled() -> None:
    """Each column gets its own field's value (PostgreSQL's binary COPY is told each
    column's type, and would take a value of the wrong one's size for another's)."""
    [(user_id, key_id)] = _customers(1)
    record = Record(
        request_id="req_every_field", user_id=user_id, api_key_id=key_id,
        endpoint="responses", model="gpt-5", stream=True, reserved=900, charge=811,
        status=207, error_code="upstream_timeout", client_disconnected=True,
        estimated=True, provider="openai-main", upstream_model="gpt-5-2025-08-07",
        upstream_key_id=2**40 + 3, input_tokens=1_001, output_tokens=2_002,
        cached_input_tokens=303, units=4, latency_ms=5_005, ttft_ms=606,
        created_at=1_765_000_000.123456, reasoning_tokens=707, cache_write_tokens=88,
        cache_write_1h_tokens=9, audio_input_tokens=10, audio_output_tokens=11,
        image_input_tokens=12, image_output_tokens=13,
        charge_lines=[["input", 1_001, 1_250_000]], cost=777,
    )  # fmt: skip
    # And one with every nullable value null and nothing charged.
    bare = Record(
        request_id="req_bare", user_id=user_id, api_key_id=None, endpoint="embeddings",
        model="m", status=502, created_at=1_765_000_001.5,
    )  # fmt: skip
    for settled in (record, bare):
        spend.store().settle_sync(record=settled)
    assert writer.flush() == 2
    for settled in (record, bare):
        row = UsageRecord.objects.get(request_id=settled.request_id)
        for name in FIELDS:
            if name not in ("reserved", "created_at"):  # not a column; a datetime
                assert getattr(row, name) == getattr(settled, name), name
        assert row.created_at.timestamp() == pytest.approx(settled.created_at, abs=1e-6)
    assert UsageRecord.objects.get(request_id="req_every_field").ledger_entry.amount == -811
    assert UsageRecord.objects.get(request_id="req_bare").ledger_entry is None


@pytest.mark.django_db(transaction=True)
def test_a_count_past_the_integer_columns_lands_at_their_largest_and_holds_up_nothing() -> None:
    """A count no integer column holds, queued by whatever bug: the record lands with
    the largest value (not wrapped round to a small one), charged what it was charged,
    and the rest of its batch lands with it instead of the batch failing for ever."""
    customers = _customers(2)
    charges = _queue(customers, 6)
    user_id, key_id = customers[0]
    huge = Record(
        request_id="req_huge", user_id=user_id, api_key_id=key_id,
        endpoint="chat.completions", model="gpt-4o", charge=50, status=200,
        input_tokens=10, output_tokens=2**32 + 5,
    )  # fmt: skip
    spend.store().settle_sync(record=huge)
    assert writer.flush() == 7
    row = UsageRecord.objects.get(request_id="req_huge")
    assert (row.input_tokens, row.output_tokens, row.charge) == (10, 2**31 - 1, 50)
    charges["req_huge"] = 50
    _assert_written_once(charges, customers)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_writer_whose_lease_lapsed_mid_batch_drops_nothing_and_writes_nothing_twice() -> None:
    customers = _customers(2)
    charges = _queue(customers, 20)
    store = spend.store()
    partition = spend.partition_of(customers[0][0])
    assert store.lease(partition=partition, owner="slow", ms=50)
    batch = store.queued(partition=partition, limit=writer.BATCH)
    while store.holder(partition=partition) == "slow":  # the lease lapses (50 ms)
        time.sleep(0.01)
    writer.flush()  # a successor takes the partition over and writes everything
    states = writer.write_batch(batch)  # the slow writer wakes up and writes its batch
    assert not store.drained(
        partition=partition, owner="slow", count=len(batch), states=states.values()
    )
    _assert_written_once(charges, customers)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_writer_writes_all_its_partitions_in_one_batch() -> None:
    """A second's traffic spread over 16 partitions is one transaction, not 16: the
    batch's fixed cost is paid once (one entry per wallet, all with one batch id)."""
    customers = _customers(6)
    assert len({spend.partition_of(user_id) for user_id, _ in customers}) > 1
    charges = _queue(customers, 60)
    assert writer.flush() == 60
    _assert_written_once(charges, customers)
    batches = {e.reference.split(":")[1] for e in LedgerEntry.objects.filter(kind="usage")}
    assert len(batches) == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_partition_lost_mid_batch_is_left_to_its_new_owner_and_the_others_are_dropped() -> None:
    customers = _customers(4)
    charges = _queue(customers, 40)
    store = spend.store()
    parts = sorted({spend.partition_of(user_id) for user_id, _ in customers})
    lost, kept = parts[0], parts[1:]
    original = store.drained

    def steal_first(*, partition: int, **kwargs: object) -> bool:
        # Another writer took `lost` over while this batch was being written.
        if partition == lost:
            store.release(partition=lost, owner=store.holder(partition=lost) or "")
            assert store.lease(partition=lost, owner="successor", ms=60_000)
        return original(partition=partition, **kwargs)  # type: ignore[arg-type]

    store.drained = steal_first  # type: ignore[method-assign]
    try:
        writer.drain_partitions(parts, owner="me")
    finally:
        del store.drained
    assert all(store.queued(partition=p, limit=10) == [] for p in kept)
    assert store.queued(partition=lost, limit=10)  # still queued: the successor's to drop
    writer.drain_partitions([lost], owner="successor")  # replays it: refused, dropped
    assert store.queued(partition=lost, limit=10) == []
    _assert_written_once(charges, customers)


# -- writer processes ------------------------------------------------------------------


def _env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }


@pytest.fixture
def writers(transactional_db: None) -> Iterator[Callable[[], subprocess.Popen]]:
    """Starts `run_usage_writer` processes on the test database and Redis."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_usage_writer", "--interval", "0.05"],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        assert "usage writer" in process.stdout.readline()  # it says so once it is up
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        process.wait(20)


def _await(predicate: Callable[[], bool], *, within: float, what: str) -> None:
    """Poll the stores for an event another process causes (nothing announces it)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _drained(charges: dict[str, int]) -> Callable[[], bool]:
    return lambda: (
        spend.store().queue_depth() == 0
        and UsageRecord.objects.filter(request_id__in=charges).count() == len(charges)
    )


def _holders() -> set[str | None]:
    return {spend.store().holder(partition=p) for p in spend.store_partitions()}


@pytest.mark.postgres
@pytest.mark.redis
def test_a_writer_killed_mid_batch_is_replaced_within_its_lease_and_everything_lands_once(
    writers: Callable[[], subprocess.Popen],
) -> None:
    customers = _customers(40)
    charges = _queue(customers, 4_000)
    # Hold one wallet's row so that the writer blocks inside its batch's transaction.
    locked, release = threading.Event(), threading.Event()

    def hold_wallet() -> None:
        try:
            with transaction.atomic():
                Wallet.objects.select_for_update().get(user_id=customers[0][0])
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_wallet)
    holder.start()
    locked.wait(10)
    first = writers()
    _await(_blocked_on_a_row_lock, within=30, what="the writer to block mid-batch")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    release.set()
    holder.join(10)
    assert spend.store().queue_depth() > 0  # the killed writer left work behind
    writers()
    # Its partitions are free once their leases (writer.LEASE_MS) lapse; the bound
    # leaves room for the new process to start on a busy machine.
    _await(_drained(charges), within=writer.LEASE_MS / 1000 + 30, what="the queue to drain")
    _assert_written_once(charges, customers)


def _blocked_on_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.redis
def test_two_writers_share_the_partitions_and_never_double_write(
    writers: Callable[[], subprocess.Popen],
) -> None:
    customers = _customers(40)
    writers(), writers()
    # Each takes half of the partitions once both have registered.
    _await(
        lambda: len(_holders() - {None}) == 2 and None not in _holders(),
        within=30,
        what="both writers to hold partitions",
    )
    charges = _queue(customers, 4_000)
    _await(_drained(charges), within=60, what="the queue to drain")
    _assert_written_once(charges, customers)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_writers_take_usage_ids_from_ranges_of_their_own() -> None:
    """Two writers' sessions do not take turns on the id sequence (one id each, then
    the next): that contention cost two writers a tenth of their throughput."""
    from django.db import connections

    table = UsageRecord._meta.db_table
    sql = f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
    other = connections.create_connection("default")
    try:
        with connection.cursor() as mine, other.cursor() as theirs:

            def take(cursor) -> int:  # type: ignore[no-untyped-def]
                cursor.execute(sql)
                return cursor.fetchone()[0]

            first, second, third = take(mine), take(theirs), take(mine)
    finally:
        other.close()
    assert third == first + 1  # a session's own ids follow each other
    assert abs(second - first) >= 1_000  # the other session's come from elsewhere
