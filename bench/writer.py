"""The write path: usage records per second that `run_usage_writer` lands in
PostgreSQL, with one writer and with two working in parallel.

Creates a database `nexai_bench_writer` (dropped and made again; every migration, so
every index the dashboard reads through), W customers with a key each, and queues N
settled requests in Redis exactly as the gateway does (the settlement script). The
partitions are held by this script meanwhile, so the writers that start wait; the
clock starts when it lets go of them and stops when the queue is empty and every
record is in PostgreSQL. Then it checks that every record landed once and every
wallet equals its ledger.

    .venv/bin/python bench/writer.py [--records 100000] [--customers 200]

BENCH_PG (default postgres://postgres@127.0.0.1:5432) and BENCH_REDIS (default
redis://127.0.0.1:6379/15, a database this script empties) say where.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DB_NAME = "nexai_bench_writer"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
HOLDER = "bench-holds-the-partitions"


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nexai.settings",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-only-secret",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


def setup_django() -> None:
    os.environ.update(env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(customers: int) -> list[tuple[int, int]]:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env(), check=True,
        capture_output=True,
    )  # fmt: skip
    from accounts.services import api_key_create, user_get_or_create
    from billing.services import credits_grant
    from nexai import redis as nxredis

    nxredis.sync_client().flushdb()
    out = []
    for i in range(customers):
        user, _ = user_get_or_create(email=f"bench{i}@example.com")
        credits_grant(user=user, amount=10**12, reference=f"bench-grant-{i}")
        out.append((user.pk, api_key_create(user=user, name="bench").key.pk))
    return out


def hold_partitions(*, hold: bool) -> None:
    from gateway import spend

    store = spend.store()
    for partition in spend.store_partitions():
        if hold:
            assert store.lease(partition=partition, owner=HOLDER, ms=600_000)
        else:
            store.release(partition=partition, owner=HOLDER)


def queue(customers: list[tuple[int, int]], n: int, *, run: int) -> None:
    """n settlements, through the gateway's own settlement script, pipelined."""
    from gateway import spend
    from gateway.records import Record
    from nexai import redis as nxredis

    store = spend.store()
    pipe = nxredis.sync_client().pipeline(transaction=False)
    for i in range(n):
        user_id, key_id = customers[i % len(customers)]
        record = Record(
            request_id=f"req_bench_{run}_{i}", user_id=user_id, api_key_id=key_id,
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


def measure(customers: list[tuple[int, int]], *, writers: int, records: int, run: int) -> float:
    from gateway import spend
    from gateway.models import UsageRecord

    hold_partitions(hold=True)
    command = [PY, "manage.py", "run_usage_writer", "--interval", "0.05"]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env(), stdout=subprocess.PIPE, text=True)
        for _ in range(writers)
    ]
    try:
        for process in processes:
            process.stdout.readline()  # up
        queue(customers, records, run=run)
        before = UsageRecord.objects.count()
        started = time.monotonic()
        hold_partitions(hold=False)
        while spend.store().queue_depth() or UsageRecord.objects.count() < before + records:
            time.sleep(0.02)
        return records / (time.monotonic() - started)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=200)
    args = parser.parse_args()
    setup_django()
    customers = prepare(args.customers)
    one = measure(customers, writers=1, records=args.records, run=1)
    two = measure(customers, writers=2, records=args.records, run=2)
    verify(2 * args.records)
    print("| writers | usage records/s landed in PostgreSQL |")
    print("|---|---|")
    print(f"| 1 | {one:,.0f} |")
    print(f"| 2 | {two:,.0f} ({two / one:.2f}x) |")
    print(f"{2 * args.records:,} records, {args.customers} customers: each landed once, "
          "every usage entry equals its records, every wallet equals its ledger")  # fmt: skip


if __name__ == "__main__":
    main()
