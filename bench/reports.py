"""The staff report over 1 million usage records (docs/operations.md, "Reports").

Creates a scratch PostgreSQL database, loads 1,000,000 usage records spread over 30
days, 1,000 customers, 12 models and 5 providers (COPY), rolls them up as the Celery
task does, then times, median of 5 runs each:

- the report page as staff get it (admin view, through the test client: selectors,
  charts and template), for the last 30 days;
- the same totals straight from the usage table (what the page would cost without
  the rollups), for comparison;
- rolling up one day (what the periodic task does every 5 minutes, twice).

    BENCH_PG=postgres://postgres@127.0.0.1:5432 BENCH_DB=nexai_bench_reports \\
        .venv/bin/python bench/reports.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "nexai_bench_reports")
DAYS = 30


def _recreate_database() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load(records: int, today: datetime) -> None:
    from django.db import connection

    from accounts.models import User

    users = User.objects.bulk_create(
        [User(email=f"bench{i}@example.com", password="!") for i in range(1000)]
    )
    staff = User.objects.create_superuser(email="staff@example.com", password="x")
    del staff
    user_ids = [u.pk for u in users]
    models = [(f"model-{i}", f"provider-{i % 5}") for i in range(12)]
    rng = random.Random(1)
    start = today - timedelta(days=DAYS - 1)
    columns = (
        "request_id, user_id, endpoint, model, provider, upstream_model, stream, input_tokens, "
        "output_tokens, cached_input_tokens, units, charge, cost, estimated, status, error_code, "
        "client_disconnected, latency_ms, created_at"
    )
    t0 = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection.cursor()  # psycopg's own cursor, for COPY
    with raw.copy(f"COPY gateway_usagerecord ({columns}) FROM STDIN") as copy:
        for i in range(records):
            model, provider = models[i % len(models)]
            inp, out = rng.randint(10, 4000), rng.randint(0, 1500)
            charge = -(-(inp * 2_500_000 + out * 10_000_000) // 1_000_000)
            at = start + timedelta(seconds=rng.randrange(DAYS * 86_400))
            status = 200 if rng.random() > 0.03 else 502
            copy.write_row(
                    (
                        f"req_{i}", rng.choice(user_ids), "chat.completions", model, provider,
                        model, False, inp, out, 0, 0, charge if status == 200 else 0,
                        charge * 4 // 5 if status == 200 else 0, False, status, "", False,
                        rng.randint(50, 4000), at,
                    )
                )  # fmt: skip
    connection.cursor().execute("ANALYZE gateway_usagerecord")
    print(f"loaded {records:,} usage records in {time.perf_counter() - t0:.1f} s")


def _median(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    _recreate_database()
    _setup_django()
    from django.db.models import Count, Sum
    from django.test import Client

    from accounts.models import User
    from gateway.models import UsageRecord
    from reports.rollup import recent_days, rollup_day, rollup_days

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    _load(args.records, today)
    days = recent_days(count=DAYS)
    t0 = time.perf_counter()
    rollup_days(days)
    print(f"first rollup of {DAYS} days: {time.perf_counter() - t0:.1f} s")

    client = Client()
    client.force_login(User.objects.get(email="staff@example.com"))

    def page() -> None:
        response = client.get("/admin/reports/dailymodelstat/", {"days": str(DAYS)})
        assert response.status_code == 200 and b"By model" in response.content

    def direct() -> None:
        since = today - timedelta(days=DAYS - 1)
        rows = UsageRecord.objects.filter(created_at__gte=since)
        list(rows.values("model", "provider").annotate(n=Count("id"), c=Sum("charge")).order_by())
        list(rows.values("user_id").annotate(c=Sum("charge")).order_by("-c")[:20])

    page()  # warm up (templates, connections)
    results = {
        "report page, 30 days, from the rollups": _median(page),
        "same totals straight from the usage table": _median(direct, runs=3),
        "roll up one day (the periodic task does two)": _median(lambda: rollup_day(days[1]), 3),
    }
    print(f"\n{args.records:,} usage records, PostgreSQL, median:")
    for name, seconds in results.items():
        print(f"| {name} | {seconds * 1000:,.0f} ms |")


if __name__ == "__main__":
    main()
