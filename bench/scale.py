"""Scale-out simulation: K gateway hosts and M usage writers on one PostgreSQL and one
Redis, and the capacity that follows from what each component spends per request.

Each "host" is a uvicorn server of its own (one worker: on a 2-core machine that keeps
K = 1, 2, 3 meaningful), driven by a wrk of its own at concurrency / K, non-streaming;
32 customers, a key per request in turn, spread the charges over every partition of
the queue so that M writers share the work. For each K x M cell: requests/s, the CPU
each component spent per request, from /proc (gateway servers, writers, PostgreSQL,
Redis; wrk and the fake upstream apart, as the load generator), the charges still
queued when the load stopped and how long the writers took to write them. From the CPU
per request over all cells: the req/s at which each component saturates and how many
gateway hosts one Redis, one writer and one PostgreSQL serve (bench/capacity.py).

    .venv/bin/python bench/scale.py [--scale-seconds 5] [--hosts 1,2,3] [--writers 1,2]
                                    [--host-cores 2] [--postgres-cores 2]

bench/run.py runs it as its last section. BENCH_PG, BENCH_REDIS and BENCH_DB_PREFIX as
in bench/harness.py: it drops and makes again the database PREFIX.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass

import capacity
import cpu
import harness

CUSTOMERS = 32  # two a partition at the default NEXAI_SPEND_PARTITIONS (16)
COLUMNS = (cpu.GATEWAY, cpu.WRITER, cpu.POSTGRES, cpu.REDIS, cpu.SYSTEM, cpu.LOAD)
CPU_HEAD = "gateway | writer | PostgreSQL | Redis | system | load gen"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale-out simulation")
    group.add_argument("--scale-seconds", type=float, default=5, help="seconds a K x M cell")
    group.add_argument("--hosts", default="1,2,3", help="values of K, gateway hosts")
    group.add_argument("--writers", default="1,2", help="values of M, usage writers")
    group.add_argument("--concurrency", type=int, default=16, help="shared by the K hosts")
    group.add_argument("--host-cores", type=int, default=2, help="cores of a gateway host")
    group.add_argument("--postgres-cores", type=int, default=2, help="cores of PostgreSQL")


@dataclass(frozen=True, slots=True)
class Cell:
    hosts: int
    writers: int
    measured: harness.Measured

    @property
    def rps(self) -> float:
        return sum(r["rps"] for r in self.measured.results)


def simulate(args: argparse.Namespace, upstream: harness.Upstream) -> list[Cell]:
    """Every K x M cell, on a database made afresh."""
    made = harness.prepare(customers=CUSTOMERS, upstream_port=upstream.port)
    keys = tuple(c.secret for c in made)
    cells = []
    for k in (int(v) for v in args.hosts.split(",")):
        hosts = harness.servers_start("uvicorn", k, workers=1)
        try:
            for m in (int(v) for v in args.writers.split(",")):
                cells.append(cell(args, hosts, m, keys, upstream))
        finally:
            harness.stop(p for p, _ in hosts)
    return cells


def cell(
    args: argparse.Namespace,
    hosts: list[tuple[subprocess.Popen, int]],
    writers: int,
    keys: tuple[str, ...],
    upstream: harness.Upstream,
) -> Cell:
    started = harness.writers_start(writers, harness.env())
    try:
        per_host = max(1, round(args.concurrency / len(hosts)))

        def loads(seconds: float) -> list[harness.Load]:
            return [
                harness.Load(f"http://127.0.0.1:{port}/v1/chat/completions", keys,
                             concurrency=per_host, seconds=seconds, stream=False, threads=1)
                for _, port in hosts
            ]  # fmt: skip

        # Warm: every process's key and wallet copies, and the writers' share of the
        # partitions (they balance them on their first steps).
        harness.measure([], loads(1))
        parts = harness.components(
            gateways=[p.pid for p, _ in hosts],
            writers=[p.pid for p in started],
            upstream=upstream.process.pid,
        )
        return Cell(len(hosts), writers, harness.measure(parts, loads(args.scale_seconds)))
    finally:
        harness.stop(started)


def totals(cells: list[Cell]) -> dict[str, float]:
    """CPU ms per request by component over every cell: the most requests, the least
    noise."""
    seconds: dict[str, float] = {}
    for c in cells:
        for name, s in c.measured.seconds.items():
            seconds[name] = seconds.get(name, 0.0) + s
    return cpu.per_request(seconds, sum(c.measured.served for c in cells))


def limits(
    cells: list[Cell], args: argparse.Namespace, flat_out: capacity.FlatOut | None
) -> list[capacity.Limit]:
    ms = totals(cells)
    return capacity.limits(
        gateway_ms=ms[cpu.GATEWAY], writer_ms=ms[cpu.WRITER], postgres_ms=ms[cpu.POSTGRES],
        redis_ms=ms[cpu.REDIS], host_cores=args.host_cores, postgres_cores=args.postgres_cores,
        flat_out=flat_out,
    )  # fmt: skip


def report(
    cells: list[Cell], args: argparse.Namespace, flat_out: capacity.FlatOut | None = None
) -> list[str]:
    lines = [
        f"## Scale-out: K hosts x M writers (uvicorn x1 a host, c={args.concurrency} shared "
        f"between the hosts, non-streaming, {args.scale_seconds:g} s a cell)",
        "",
        f"| K hosts | M writers | req/s | req/s a host | {CPU_HEAD} | others (cores) | queued at end | drain s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        ms, m = c.measured.per_request(), c.measured
        cpu_cells = " | ".join(f"{ms.get(name, 0.0):.2f}" for name in COLUMNS)
        errors = int(sum(r["errors"] for r in m.results))
        lines.append(
            f"| {c.hosts} | {c.writers} | {c.rps:.0f} | {c.rps / c.hosts:.0f} | {cpu_cells} | "
            f"{m.others:.2f} | {m.drain.queued} | {m.drain.seconds:.2f} | {errors} |"
        )
    ms = totals(cells)
    lines += [
        "",
        "CPU columns: milliseconds of CPU per request, from /proc, over the cell and the drain "
        "after it (system = gateway + writer + PostgreSQL + Redis; load gen = wrk and the fake "
        "upstream). Others: cores that other work on the machine used meanwhile.",
        "",
        f"## Capacity (from the CPU per request over every K x M cell: gateway {ms[cpu.GATEWAY]:.2f}, "
        f"writer {ms[cpu.WRITER]:.2f}, PostgreSQL {ms[cpu.POSTGRES]:.2f}, Redis {ms[cpu.REDIS]:.2f} ms)",
        "",
        f"| component | CPU ms/request | saturates at req/s | gateway hosts ({args.host_cores} cores) it serves |",
        "|---|---|---|---|",
    ]
    for row in limits(cells, args, flat_out):
        used = "" if row.cpu_ms is None else f"{row.cpu_ms:.2f}"
        lines.append(f"| {row.component} | {used} | {number(row.rps)} | {number(row.hosts, 1)} |")
    return [*lines, "", CAPACITY_NOTE]


CAPACITY_NOTE = (
    "Saturates at: the req/s at which the component's CPU is all busy (Redis and a writer: "
    "one core each; PostgreSQL and a host: all of theirs). At this load a writer's batches "
    "are small (every 0.2 s, what each partition gathered), so its CPU and PostgreSQL's per "
    "request are at their highest and those rows are floors; flat out (bench/writer.py) a "
    "batch holds up to 2,000 records. Plan on about 70 % of a figure, not all of it."
)


def matrix(cells: list[Cell]) -> list[str]:
    """Total req/s, K hosts down, M writers across."""
    ks = sorted({c.hosts for c in cells})
    ms = sorted({c.writers for c in cells})
    rps = {(c.hosts, c.writers): c.rps for c in cells}
    writers = " | ".join(f"req/s, {m} writer{'s' if m > 1 else ''}" for m in ms)
    lines = [f"| K hosts | {writers} |", "|---" * (len(ms) + 1) + "|"]
    for k in ks:
        lines.append(
            f"| {k} | " + " | ".join(f"{rps.get((k, m), math.nan):.0f}" for m in ms) + " |"
        )
    return lines


def hosts_line(
    cells: list[Cell], args: argparse.Namespace, flat_out: capacity.FlatOut | None
) -> list[str]:
    """How many gateway hosts each shared component serves, in one sentence."""
    rows = {row.key: row for row in limits(cells, args, flat_out)}

    def hosts(key: str) -> str:
        return number(rows[key].hosts, 1)

    writer = f"{hosts('writer')} by its CPU at this load"
    postgres = f"{hosts('postgres')} by its CPU at this load"
    if flat_out:
        writer += f", {hosts('writer flat out')} measured flat out"
        postgres += f", {hosts('postgres flat out')} with the writer flat out"
    return [
        f"Capacity, in gateway hosts of {args.host_cores} cores each as busy as its CPU "
        f"allows: one Redis serves {hosts('redis')}; one usage writer {writer}; one "
        f"PostgreSQL of {args.postgres_cores} cores {postgres}."
    ]


def number(value: float, digits: int = 0) -> str:
    return "n/a" if math.isinf(value) or math.isnan(value) else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs Debian's wrk)")
    harness.setup_django(harness.env())
    upstream = harness.upstream_start()
    try:
        cells = simulate(args, upstream)
    finally:
        harness.stop([upstream.process])
    print("\n".join(report(cells, args)))


if __name__ == "__main__":
    main()
