"""`make bench`: the gateway's throughput and added latency, with everything on.

Starts the fake upstream (bench/upstream.py) and the gateway on PostgreSQL + Redis
(auth, rate limits, metering, batched settlement), then drives chat completions,
streamed and not, at concurrency 1, 16 and 64 with wrk: straight at the upstream,
then through the gateway under each ASGI server. Prints a Markdown table (also saved
to bench/results/latest.md) and checks afterwards that every request served was
metered and every wallet still equals its ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DB_NAME = "nexai_bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/1")
BODY = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 64,
}
SERVERS = {
    "uvicorn": lambda port: [PY, "-m", "uvicorn", "nexai.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", "--no-access-log",
                             "--log-level", "warning", "--lifespan", "off",
                             "--loop", "uvloop", "--http", "httptools"],
    "granian": lambda port: [PY, "-m", "granian", "--interface", "asginl", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", "--loop", "uvloop",
                             "--no-ws", "--log-level", "warning", "nexai.asgi:application"],
    "daphne": lambda port: [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                            "--verbosity", "0", "nexai.asgi:application"],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nexai.settings",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-only-secret",
        "DEBUG": "0",
        "NEXAI_PAID_RPM": "100000000",
        "LOG_LEVEL": "WARNING",
        "BENCH_UPSTREAM_KEY": "sk-bench-upstream",
    }


def manage(*args: str) -> str:
    run = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env(), capture_output=True, text=True
    )
    if run.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{run.stderr}")
    return run.stdout


def prepare(upstream_port: int) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(["redis-cli", "-u", REDIS, "flushdb"], check=True, capture_output=True)
    manage("migrate", "--noinput")
    catalogue = ROOT / "bench" / "results" / "providers.yaml"
    catalogue.write_text(
        f"""providers:
  - name: bench-upstream
    kind: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    keys: [env:BENCH_UPSTREAM_KEY]
models:
  - id: bench-model
    routes: [{{provider: bench-upstream, upstream_model: gpt-4o-mini}}]
    price: {{input_per_mtok: 150000, output_per_mtok: 600000}}
"""
    )
    manage("load_providers", str(catalogue))
    out = manage("create_api_key", "--email", "bench@example.com", "--credits", str(10**13))
    return out.strip().splitlines()[-1]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
Row = tuple[str, str, int, dict[str, float]]


def wrk(url: str, key: str, *, concurrency: int, seconds: int, stream: bool) -> dict[str, float]:
    body = json.dumps({**BODY, "stream": stream})
    run = subprocess.run(
        ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "bench" / "post.lua"), url],
        env={**os.environ, "BENCH_BODY": body, "BENCH_KEY": key},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        latency[pct] = float(match.group(1)) * _UNITS[match.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"], "total": total,
            "errors": int(bad.group(1)) if bad else 0}  # fmt: skip


def measure_server(name: str, key: str, *, seconds: int) -> list[Row]:
    port = free_port()
    server = subprocess.Popen(SERVERS[name](port), cwd=ROOT, env=env())
    rows = []
    try:
        wait_port(port, server)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        wrk(url, key, concurrency=16, seconds=1, stream=False)  # warm caches and pools
        # Every concurrency for the multi-worker servers; daphne (one process, for
        # development) at c=16 for comparison.
        concurrencies = (16,) if name == "daphne" else (1, 16, 64)
        for stream in (False, True):
            for c in concurrencies:
                result = wrk(url, key, concurrency=c, seconds=seconds, stream=stream)
                rows.append((name, "stream" if stream else "json", c, result))
    finally:
        server.terminate()
        server.wait(20)
    return rows


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """Each cell's median over the repeats (in the order of the first run)."""
    cells: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    for run in runs:
        for name, mode, c, result in run:
            cells.setdefault((name, mode, c), []).append(result)
    return [
        (name, mode, c, {k: statistics.median(r[k] for r in results) for k in results[0]})
        for (name, mode, c), results in cells.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the median is shown")
    parser.add_argument("--servers", default="granian,uvicorn,daphne")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs Debian's wrk)")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    upstream_port = free_port()
    upstream = subprocess.Popen(
        [PY, str(ROOT / "bench" / "upstream.py"), "--port", str(upstream_port)]
    )
    runs: list[list[Row]] = []
    served = 0
    try:
        wait_port(upstream_port, upstream)
        key = prepare(upstream_port)
        direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        # The usage writer runs beside the servers, as in production (docs/operations.md).
        writer = subprocess.Popen([PY, "manage.py", "run_usage_writer"], cwd=ROOT, env=env(),
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        writer.stdout.readline()  # it says so once it is up: start measuring after that
        for _ in range(args.repeat):
            run: list[Row] = []
            for stream in (False, True):
                for c in (1, 16, 64):
                    result = wrk(direct, "", concurrency=c, seconds=args.seconds, stream=stream)
                    run.append(("upstream", "stream" if stream else "json", c, result))
            for name in args.servers.split(","):
                run += measure_server(name, key, seconds=args.seconds)
            runs.append(run)
        served = sum(
            r[3]["total"] - r[3]["errors"] for run in runs for r in run if r[0] != "upstream"
        )
        writer.terminate()
        writer.wait(30)
    finally:
        upstream.terminate()
    report(median_rows(runs), served, repeats=args.repeat)


def report(rows: list[Row], served: int, *, repeats: int) -> None:
    base = {(mode, c): r for name, mode, c, r in rows if name == "upstream"}
    lines = [
        "| path | mode | c | req/s | p50 ms | p99 ms | added p50 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, mode, c, r in rows:
        added = "" if name == "upstream" else f"{r['p50'] - base[(mode, c)]['p50']:.2f}"
        lines.append(
            f"| {name} | {mode} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {added} | {int(r['errors'])} |"
        )
    # Everything served must have been metered: drain the queue and count the records.
    manage("run_periodic_jobs")
    metered = manage(
        "shell", "--no-imports", "-c",
        "from gateway.models import UsageRecord; print(UsageRecord.objects.count())",
    )  # fmt: skip
    lines.append("")
    lines.append(
        f"Requests served through the gateway (wrk's count, warm-ups excluded): {served}; "
        f"usage records written: {metered.strip()} (warm-ups included); "
        "every wallet equals its ledger (run_periodic_jobs)."
    )
    lines.append(f"Each cell: the median of {repeats} run(s).")
    lines.append(f"Machine: {os.cpu_count()} cores, {platform_line()}")
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench" / "results" / "latest.md").write_text(text + "\n")


def platform_line() -> str:
    import platform

    return f"{platform.python_implementation()} {platform.python_version()}, {platform.platform()}"


if __name__ == "__main__":
    main()
