"""The write path: usage records per second that `run_usage_writer` lands in
PostgreSQL, with one writer and with two working in parallel.

Creates a database `PREFIX_writer` (dropped and made again; every migration, so every
index the dashboard reads through), W customers with a key each, and queues N
settled requests in Redis exactly as the gateway does (the settlement script). The
partitions are held by this script meanwhile, so the writers that start wait; the
clock starts when it lets go of them and stops when the queue is empty and every
record is in PostgreSQL. Then it checks that every record landed once and every
wallet equals its ledger.

    .venv/bin/python bench/writer.py [--records 100000] [--customers 200]

BENCH_PG (default postgres://postgres@127.0.0.1:5432) says where; BENCH_WRITER_REDIS,
else BENCH_REDIS (default redis://127.0.0.1:6379/15), is a Redis database this script
empties; BENCH_DB_PREFIX (default nexai_bench) names the database. `bench/run.py`
runs `benchmark` as its write-path section.
"""

from __future__ import annotations

import argparse
import os
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


def queue(customers: list[harness.Customer], n: int, *, run: int) -> None:
    """n settlements, through the gateway's own settlement script, pipelined."""
    from gateway import spend
    from gateway.records import Record
    from nexai import redis as nxredis

    store = spend.store()
    pipe = nxredis.sync_client().pipeline(transaction=False)
    for i in range(n):
        customer = customers[i % len(customers)]
        record = Record(
            request_id=f"req_bench_{run}_{i}", user_id=customer.user_id,
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


@dataclass(frozen=True, slots=True)
class Landed:
    rate: float  # records/s
    cpu_ms: dict[str, float]  # CPU per record by component (bench/cpu.py), flat out


def measure(customers: list[harness.Customer], *, writers: int, records: int, run: int) -> Landed:
    from gateway import spend

    hold_partitions(hold=True)
    processes = harness.writers_start(writers, harness.env(DB_NAME, REDIS), "--interval", "0.05")
    parts = harness.components(writers=[p.pid for p in processes], database=DB_NAME)
    try:
        queue(customers, records, run=run)
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
    customers: int
    one: Landed  # one writer
    two: Landed  # two writers together

    def table(self) -> list[str]:
        lines = [
            "| writers | usage records/s landed in PostgreSQL | CPU ms/record: writers | "
            "PostgreSQL | Redis |",
            "|---|---|---|---|---|",
        ]
        for n, landed in ((1, self.one), (2, self.two)):
            ratio = f" ({self.two.rate / self.one.rate:.2f}x)" if n == 2 else ""
            used = " | ".join(
                f"{landed.cpu_ms[c]:.3f}" for c in (cpu.WRITER, cpu.POSTGRES, cpu.REDIS)
            )
            lines.append(f"| {n} | {landed.rate:,.0f}{ratio} | {used} |")
        return [
            *lines,
            "",
            f"{2 * self.records:,} records, {self.customers} customers: each landed once, "
            "every usage entry equals its records, every wallet equals its ledger. CPU: from "
            "/proc while the writers emptied the queue (Redis: the whole server).",
        ]


def benchmark(*, records: int, customers: int) -> Rates:
    """One writer, then two, each on `records` queued charges; then the checks. Sets
    Django up in this process on the writer's database."""
    harness.setup_django(harness.env(DB_NAME, REDIS))
    made = harness.prepare(customers=customers)
    one = measure(made, writers=1, records=records, run=1)
    two = measure(made, writers=2, records=records, run=2)
    verify(2 * records)
    return Rates(records, customers, one, two)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=200)
    args = parser.parse_args()
    print("\n".join(benchmark(records=args.records, customers=args.customers).table()))


if __name__ == "__main__":
    main()
