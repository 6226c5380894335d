"""The write path: usage records per second that `run_usage_writer` lands in
PostgreSQL, with one writer and with two working in parallel.

Creates a database `PREFIX_writer` (dropped and made again; every migration, so every
index the dashboard reads through) and W customers with a key each. A cell queues N
settled requests in Redis exactly as the gateway does (the settlement script) while
this script holds the queue's partitions, so the writers that start wait; then a
CHECKPOINT, so that no cell pays for the WAL of the one before; the clock starts when
the script lets go of the partitions and stops when the queue is empty and every
record is in PostgreSQL.

A round is four cells: one writer, two, two, one; each figure is the median of its
cells over the rounds, and the order puts the machine's drift (and the table's growth)
on both figures alike. A cell holds 200,000 records, a few seconds' work: the figure
is the rate the writers keep up, not how they start and stop. With 50,000 records two
writers emptied the queue in under a second, of which their start (each finds the
backlog at its next poll) and their last batches were 5 to 10 %, and cells of the
same setting were up to 10 % apart; at 200,000, mostly 2 to 4 %. The default 256 customers
put 16 in each of the 16 partitions, so the backlog is spread evenly, as many
customers' traffic is; two writers then finish together, and the figure is their
rate rather than how unevenly a few customers fell into partitions. (One customer's
wallet is written by one writer at a time, however many there are.) At the end every
record has landed once and every wallet equals its ledger.

    .venv/bin/python bench/writer.py [--records 200000] [--rounds 1] [--customers 256]

BENCH_PG (default postgres://postgres@127.0.0.1:5432) says where; BENCH_WRITER_REDIS,
else BENCH_REDIS (default redis://127.0.0.1:6379/15), is a Redis database this script
empties; BENCH_DB_PREFIX (default nexai_bench) names the database. `bench/run.py`
runs `benchmark` as its write-path section.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import cpu
import harness

REDIS = os.environ.get("BENCH_WRITER_REDIS") or os.environ.get(
    "BENCH_REDIS", "redis://127.0.0.1:6379/15"
)
DB_NAME = f"{harness.DB_PREFIX}_writer"
HOLDER = "bench-holds-the-partitions"


def hold_partitions(*, hold: bool) -> None:
    from gateway import spend

    store = spend.store()
    for partition in spend.store_partitions():
        if hold:
            assert store.lease(partition=partition, owner=HOLDER, ms=600_000)
        else:
            store.release(partition=partition, owner=HOLDER)


def queue(customers: list[harness.Customer], n: int) -> None:
    """n settlements, through the gateway's own settlement script, pipelined, with
    request ids as the gateway makes them (random: each lands somewhere else in the
    unique index, as in production, not all at its right edge)."""
    from core import redis as nxredis
    from gateway import spend
    from gateway.records import Record
    from gateway.relay import new_request_id

    store = spend.store()
    pipe = nxredis.sync_client().pipeline(transaction=False)
    for i in range(n):
        customer = customers[i % len(customers)]
        record = Record(
            request_id=new_request_id(), user_id=customer.user_id,
            api_key_id=customer.key_id,
            endpoint="chat.completions", model="bench-model", stream=i % 2 == 0,
            reserved=200, charge=1 + i % 150, status=200, provider="bench-upstream",
            upstream_model="gpt-4o-mini", input_tokens=20, output_tokens=i % 64,
            latency_ms=12, ttft_ms=5,
        )  # fmt: skip
        script, numkeys, *args = store._settle_args(record, require_held=False)
        pipe.eval(script, numkeys, *args)
        if len(pipe) >= 2_000:
            pipe.execute()
    pipe.execute()


ROUND = (1, 2, 2, 1)  # writers in each cell of a round


@dataclass(frozen=True, slots=True)
class Landed:
    rate: float  # records/s (of several cells: the median cell's)
    cpu_ms: dict[str, float]  # CPU per record by component (bench/cpu.py), flat out
    slowest: float = 0.0  # of several cells: the slowest and fastest cell's rates
    fastest: float = 0.0


def combined(cells: list[Landed]) -> Landed:
    """The median cell's rate, the mean CPU per record, and the spread."""
    rates = [c.rate for c in cells]
    cpu_ms = {part: statistics.mean(c.cpu_ms[part] for c in cells) for part in cells[0].cpu_ms}
    return Landed(statistics.median(rates), cpu_ms, min(rates), max(rates))


def checkpoint() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def measure(customers: list[harness.Customer], *, writers: int, records: int) -> Landed:
    from gateway import spend

    hold_partitions(hold=True)
    processes = harness.writers_start(writers, harness.env(DB_NAME, REDIS), "--interval", "0.05")
    parts = harness.components(writers=[p.pid for p in processes], database=DB_NAME)
    try:
        queue(customers, records)
        checkpoint()
        before = cpu.sample(parts)
        started = time.monotonic()
        hold_partitions(hold=False)
        # An empty queue means written: a writer drops a batch from it only once the
        # batch has committed. (Counting the rows instead would put a count(*) every
        # few milliseconds on PostgreSQL's CPU; verify() counts them once at the end.)
        while spend.store().queue_depth():
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        seconds = cpu.spent(before, cpu.sample(parts))
        return Landed(records / elapsed, cpu.per_request(seconds, records))
    finally:
        harness.stop(processes)


def verify(total: int) -> None:
    from django.db.models import Sum

    from billing.models import LedgerEntry, Wallet
    from billing.services import wallets_verify
    from gateway.models import UsageRecord

    assert UsageRecord.objects.count() == total, "records lost or doubled"
    usage = LedgerEntry.objects.filter(kind="usage").aggregate(s=Sum("amount"))["s"]
    assert usage == -UsageRecord.objects.aggregate(s=Sum("charge"))["s"], "entries != records"
    assert not wallets_verify(), "a wallet differs from its ledger"
    assert Wallet.objects.exists()


@dataclass(frozen=True, slots=True)
class Rates:
    records: int  # per cell
    rounds: int
    customers: int
    one: Landed  # one writer (the median of its cells)
    two: Landed  # two writers together

    def table(self) -> list[str]:
        lines = [
            "| writers | usage records/s landed in PostgreSQL (slowest-fastest cell) | "
            "CPU ms/record: writers | PostgreSQL | Redis |",
            "|---|---|---|---|---|",
        ]
        for n, landed in ((1, self.one), (2, self.two)):
            ratio = f" = {self.two.rate / self.one.rate:.2f}x" if n == 2 else ""
            spread = f"{landed.slowest:,.0f}-{landed.fastest:,.0f}"
            used = " | ".join(
                f"{landed.cpu_ms[c]:.3f}" for c in (cpu.WRITER, cpu.POSTGRES, cpu.REDIS)
            )
            lines.append(f"| {n} | {landed.rate:,.0f}{ratio} ({spread}) | {used} |")
        cells = self.rounds * len(ROUND)
        return [
            *lines,
            "",
            f"{self.rounds} rounds of cells with {', '.join(map(str, ROUND))} writers, "
            f"{self.records:,} records a cell; the median cell of each. "
            f"{cells * self.records:,} records, {self.customers} customers: each landed "
            "once, every usage entry equals its records, every wallet equals its ledger. "
            "CPU: from /proc while the writers emptied the queue (Redis: the whole server).",
        ]


def benchmark(*, records: int, rounds: int, customers: int) -> Rates:
    """`rounds` rounds of cells (ROUND), each on `records` queued charges; then the
    checks. Sets Django up in this process on the writer's database."""
    harness.setup_django(harness.env(DB_NAME, REDIS))
    made = harness.prepare(customers=customers)
    cells: dict[int, list[Landed]] = {1: [], 2: []}
    for writers in ROUND * rounds:
        cells[writers].append(measure(made, writers=writers, records=records))
    verify(len(ROUND) * rounds * records)
    return Rates(records, rounds, customers, combined(cells[1]), combined(cells[2]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000, help="records a cell")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--customers", type=int, default=256)
    args = parser.parse_args()
    rates = benchmark(records=args.records, rounds=args.rounds, customers=args.customers)
    print("\n".join(rates.table()))


if __name__ == "__main__":
    main()
