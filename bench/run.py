"""`make bench`: the gateway's capacity picture in one run, with everything on.

1. Servers. Starts the fake upstream (bench/upstream.py) and the gateway on PostgreSQL
   + Redis (auth, rate limits, metering, batched settlement, one usage writer beside
   the servers), then drives chat completions, streamed and not, at concurrency 1, 16
   and 64 with wrk: straight at the upstream, then through the gateway under each ASGI
   server. Each gateway cell also gets the CPU each component spent per request, from
   /proc, over the cell and the writer's drain after it. Then checks that every request
   served was metered and every wallet still equals its ledger.
2. Write path: bench/writer.py's benchmark (usage records/s one writer, then two, land
   in PostgreSQL), in a process of its own, as it sets Django up on its own database.
3. Scale-out: bench/scale.py's K hosts x M writers, and the capacity that follows.

Prints one Markdown report (also saved to bench/results/latest.md) that ends with a
summary. `--no-writer` and `--no-scale` skip sections. BENCH_PG, BENCH_REDIS,
BENCH_DB_PREFIX and BENCH_WRITER_REDIS: see bench/harness.py and bench/writer.py.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import capacity
import cpu
import harness
import scale
import writer

Row = tuple[str, str, int, dict[str, float]]
WORKERS = {"uvicorn": 2, "granian": 2, "daphne": 1}
# Issue 14's targets on the project's 2-core machine.
TARGET_RPS = {"json": 1300, "stream": 1100}
TARGET_ADDED_P50 = 1.5
TARGET_WRITER, TARGET_TWO_WRITERS = 20_000, 1.6


def measure_server(
    name: str, key: str, *, writer_pid: int, upstream: harness.Upstream, seconds: int
) -> list[Row]:
    [(server, port)] = harness.servers_start(name, 1, workers=WORKERS[name])
    parts = harness.components(
        gateways=[server.pid], writers=[writer_pid], upstream=upstream.process.pid
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows = []
    try:
        harness.measure([], [harness.Load(url, (key,), 16, 1, False)])  # warm caches and pools
        # Every concurrency for the multi-worker servers; daphne (one process, for
        # development) at c=16 for comparison.
        concurrencies = (16,) if name == "daphne" else (1, 16, 64)
        for stream in (False, True):
            for c in concurrencies:
                cell = harness.measure(parts, [harness.Load(url, (key,), c, seconds, stream)])
                ms = {f"ms {k}": v for k, v in cell.per_request().items()}
                extra = {"others": cell.others, "held": cell.drain.held}
                rows.append((name, mode(stream), c, cell.results[0] | ms | extra))
    finally:
        harness.stop([server])
    return rows


def mode(stream: bool) -> str:
    return "stream" if stream else "json"


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """Each cell's median over the repeats (in the order of the first run)."""
    cells: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    for run in runs:
        for name, kind, c, result in run:
            cells.setdefault((name, kind, c), []).append(result)
    return [
        (name, kind, c, {k: statistics.median(r[k] for r in results) for k in results[0]})
        for (name, kind, c), results in cells.items()
    ]


def servers(args: argparse.Namespace, upstream: harness.Upstream) -> tuple[list[Row], int]:
    """The servers' table: each cell's median over the repeats, and the requests
    served through the gateway (wrk's count, warm-ups excluded)."""
    [customer] = harness.prepare(customers=1, upstream_port=upstream.port)
    direct = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
    # The usage writer runs beside the servers, as in production (docs/operations.md).
    [usage_writer] = harness.writers_start(1, harness.env())
    runs: list[list[Row]] = []
    try:
        for _ in range(args.repeat):
            run: list[Row] = []
            for stream in (False, True):
                for c in (1, 16, 64):
                    result = harness.wrk(harness.Load(direct, (), c, args.seconds, stream))
                    run.append(("upstream", mode(stream), c, result))
            for name in args.servers.split(","):
                run += measure_server(
                    name, customer.secret, writer_pid=usage_writer.pid, upstream=upstream,
                    seconds=args.seconds,
                )  # fmt: skip
            runs.append(run)
    finally:
        harness.stop([usage_writer])
    served = sum(r[3]["total"] - r[3]["errors"] for run in runs for r in run if r[0] != "upstream")
    return median_rows(runs), served


SERVER_CPU = (cpu.GATEWAY, cpu.WRITER, cpu.POSTGRES, cpu.REDIS, cpu.SYSTEM, cpu.LOAD)


def servers_report(rows: list[Row], served: int, *, repeats: int, seconds: int) -> list[str]:
    base = {(kind, c): r for name, kind, c, r in rows if name == "upstream"}
    lines = [
        f"## Servers (wrk, {seconds} s a cell, the median of {repeats} run(s))",
        "",
        f"| path | mode | c | req/s | p50 ms | p99 ms | added p50 ms | errors | {scale.CPU_HEAD} | others (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, kind, c, r in rows:
        path = name if name == "upstream" else f"{name} x{WORKERS[name]}"
        added = "" if name == "upstream" else f"{r['p50'] - base[(kind, c)]['p50']:.2f}"
        used = [f"{r[f'ms {k}']:.2f}" if f"ms {k}" in r else "" for k in SERVER_CPU]
        others = f"{r['others']:.2f}" if "others" in r else ""
        lines.append(
            f"| {path} | {kind} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{added} | {int(r['errors'])} | {' | '.join(used)} | {others} |"
        )
    lines += ["", metering_check(served)]
    held = int(sum(r.get("held", 0) for *_, r in rows))
    if held:
        lines.append(
            f"{held} reservation(s) of requests wrk cut off at the end of a cell stayed held "
            "after it (the stale sweep releases them): "
            + ", ".join(f"{n} {k} c={c}: {int(r['held'])}" for n, k, c, r in rows if r.get("held"))
            + "."
        )
    return [*lines, "", CPU_NOTE]


CPU_NOTE = (
    "CPU columns: milliseconds of CPU per request, from /proc, over the cell and the "
    "writer's drain after it: gateway (the server's processes), writer (run_usage_writer), "
    "PostgreSQL (its own processes and our database's backends), Redis (the whole server); "
    "system is their sum; load gen is wrk and the fake upstream, not counted in it. Others: "
    "cores that other work on the machine used meanwhile (0 on a quiet machine)."
)


def metering_check(served: int) -> str:
    """Everything served must have been metered: drain the queue, count the records,
    and verify every wallet against its ledger (run_periodic_jobs exits on a drift)."""
    from django.core.management import call_command

    from gateway.models import UsageRecord

    call_command("run_periodic_jobs", stdout=io.StringIO())
    return (
        f"Requests served through the gateway (wrk's count, warm-ups excluded): {served}; "
        f"usage records written: {UsageRecord.objects.count()} (warm-ups included); "
        "every wallet equals its ledger (run_periodic_jobs)."
    )


def flat_out(rates: writer.Rates | None) -> capacity.FlatOut | None:
    if rates is None:
        return None
    return capacity.FlatOut(rates.one.rate, rates.one.cpu_ms[cpu.POSTGRES])


def write_path(records: int, rounds: int) -> writer.Rates:
    """bench/writer.py's benchmark in a process of its own: Django is set up once a
    process, and it needs its own database."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        job = pool.submit(writer.benchmark, records=records, rounds=rounds, customers=256)
        return job.result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="seconds a server cell")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is shown")
    parser.add_argument("--servers", default="granian,uvicorn,daphne")
    parser.add_argument("--no-writer", action="store_true", help="skip the write path")
    parser.add_argument("--writer-records", type=int, default=200_000, help="records a cell")
    parser.add_argument("--writer-rounds", type=int, default=1, help="rounds of 1, 2, 2, 1")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale-out")
    scale.add_arguments(parser)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs Debian's wrk)")
    harness.setup_django(harness.env())
    started = datetime.now(UTC)
    upstream = harness.upstream_start()
    rates, cells = None, []
    try:
        rows, served = servers(args, upstream)
        lines = servers_report(rows, served, repeats=args.repeat, seconds=args.seconds)
        if not args.no_writer:
            rates = write_path(args.writer_records, args.writer_rounds)
            lines += ["", "## Write path (bench/writer.py)", ""]
            lines += rates.table()
        if not args.no_scale:
            cells = scale.simulate(args, upstream)
            lines += ["", *scale.report(cells, args, flat_out(rates))]
    finally:
        harness.stop([upstream.process])
    minutes = (datetime.now(UTC) - started).total_seconds() / 60
    head = [f"# make bench, {started:%Y-%m-%d %H:%M} UTC ({minutes:.1f} min)", "", machine(), ""]
    text = "\n".join(head + lines + [""] + summary(rows, rates, cells, args))
    print(text)
    (harness.ROOT / "bench" / "results" / "latest.md").write_text(text + "\n")


def machine() -> str:
    return (
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.platform()}; wrk, the fake upstream, "
        "PostgreSQL, Redis and the usage writers on the same cores."
    )


def summary(
    rows: list[Row], rates: writer.Rates | None, cells: list[scale.Cell], args: argparse.Namespace
) -> list[str]:
    names = [name for name, *_ in rows if name != "upstream"]
    name = "uvicorn" if "uvicorn" in names else names[0]
    cell = {(kind, c): r for n, kind, c, r in rows if n == name}
    base = {(kind, c): r for n, kind, c, r in rows if n == "upstream"}
    lines = ["## Summary", ""]
    if (("json", 16) in cell) and (("stream", 16) in cell):
        json16, stream16 = cell["json", 16], cell["stream", 16]
        lines.append(
            f"- c=16 req/s, {name} x{WORKERS[name]}: {json16['rps']:,.0f} non-streaming, "
            f"{stream16['rps']:,.0f} streaming (targets {TARGET_RPS['json']:,} / "
            f"{TARGET_RPS['stream']:,})"
        )
        lines.append(
            f"- whole-system CPU per request at c=16: {json16[f'ms {cpu.SYSTEM}']:.2f} ms "
            f"non-streaming, {stream16[f'ms {cpu.SYSTEM}']:.2f} ms streaming (gateway "
            f"{json16[f'ms {cpu.GATEWAY}']:.2f} / {stream16[f'ms {cpu.GATEWAY}']:.2f}, the rest "
            "writer + PostgreSQL + Redis)"
        )
    if (("json", 1) in cell) and (("stream", 1) in cell):
        added = [cell[kind, 1]["p50"] - base[kind, 1]["p50"] for kind in ("json", "stream")]
        lines.append(
            f"- c=1 added p50, {name}: {added[0]:.2f} ms non-streaming, {added[1]:.2f} ms "
            f"streaming (target at most {TARGET_ADDED_P50} ms)"
        )
    if rates:
        lines.append(
            f"- usage writer: {rates.one.rate:,.0f} records/s alone, {rates.two.rate:,.0f} with "
            f"two ({rates.two.rate / rates.one.rate:.2f}x) (targets {TARGET_WRITER:,} and "
            f"{TARGET_TWO_WRITERS}x)"
        )
    others = [r["others"] for *_, r in rows if "others" in r]
    others += [c.measured.others for c in cells]
    if others:
        lines.append(
            f"- other work on the machine used {statistics.mean(others):.2f} cores on average "
            "during the measured cells (0 on a quiet machine)"
        )
    if cells:
        lines += [
            "",
            *scale.matrix(cells),
            "",
            *scale.hosts_line(cells, args, flat_out(rates)),
        ]
    return lines


if __name__ == "__main__":
    main()
