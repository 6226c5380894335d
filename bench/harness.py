"""What the benchmarks share: where PostgreSQL and Redis are, the database they
prepare, the processes they start (the fake upstream, gateway servers, usage
writers), wrk, and the CPU accounting of a measured cell.

BENCH_PG (default postgres://postgres@127.0.0.1:5432) and BENCH_REDIS (default
redis://127.0.0.1:6379/1, emptied) say where; BENCH_DB_PREFIX (default nexai_bench)
names the databases the scripts drop and create: PREFIX for the gateway (run.py,
scale.py), PREFIX_writer for bench/writer.py. PostgreSQL and Redis must run on this
machine for their CPU to be read from /proc.

The benchmark's own process sets Django up (`setup_django`) to prepare the database
and to read the queue's backlog as /readyz does; the servers and writers it starts
are processes of their own.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cpu
import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/1")
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "nexai_bench")
if not re.fullmatch(r"[a-z_][a-z0-9_]*", DB_PREFIX):
    sys.exit(f"BENCH_DB_PREFIX={DB_PREFIX!r}: lower-case letters, digits and _ only")
BODY = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 64,
}


def server_command(name: str, port: int, workers: int = 2) -> list[str]:
    """How each ASGI server is started (daphne has no worker option: one process)."""
    commands = {
        "uvicorn": [PY, "-m", "uvicorn", "nexai.asgi:application", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", str(workers), "--no-access-log",
                    "--log-level", "warning",
                    "--loop", "uvloop", "--http", "httptools"],
        "granian": [PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
                    "--no-ws", "--log-level", "warning", "nexai.asgi:application"],
        "daphne": [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                   "--verbosity", "0", "nexai.asgi:application"],
    }  # fmt: skip
    return commands[name]


# -- processes ------------------------------------------------------------------------


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


def env(database: str = DB_PREFIX, redis_url: str = REDIS) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nexai.settings",
        "DATABASE_URL": f"{PG}/{database}",
        "DB_CONN_MAX_AGE": "600",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-only-secret",
        "DEBUG": "0",
        "NEXAI_PAID_RPM": "100000000",
        "LOG_LEVEL": "WARNING",
        "BENCH_UPSTREAM_KEY": "sk-bench-upstream",
    }


def setup_django(environ: dict[str, str]) -> None:
    """Django in this process, once, on `environ`'s database and Redis."""
    os.environ.update(environ)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass(frozen=True, slots=True)
class Upstream:
    process: subprocess.Popen
    port: int


def upstream_start() -> Upstream:
    """The fake upstream (bench/upstream.py), listening."""
    port = free_port()
    process = subprocess.Popen([PY, str(ROOT / "bench" / "upstream.py"), "--port", str(port)])
    wait_port(port, process)
    return Upstream(process, port)


def servers_start(name: str, count: int, *, workers: int) -> list[tuple[subprocess.Popen, int]]:
    """`count` servers of their own (as separate hosts would be), each listening."""
    started = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(server_command(name, port, workers), cwd=ROOT, env=env())
            started.append((process, port))
        for process, port in started:
            wait_port(port, process)
    except BaseException:
        stop(p for p, _ in started)
        raise
    return started


def writers_start(count: int, environ: dict[str, str], *args: str) -> list[subprocess.Popen]:
    command = [PY, "manage.py", "run_usage_writer", *args]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    for process in processes:
        process.stdout.readline()  # it says so once it is up: start measuring after that
    return processes


def stop(processes: Iterable[subprocess.Popen]) -> None:
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(30)


# -- the database ---------------------------------------------------------------------


def database_recreate(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


@dataclass(frozen=True, slots=True)
class Customer:
    user_id: int
    key_id: int
    secret: str


def prepare(*, customers: int, upstream_port: int | None = None) -> list[Customer]:
    """Django's database made again (every migration, so every index), its Redis
    database emptied, the catalogue pointing at the fake upstream (if one is given),
    and `customers` funded customers with a key each, made through the services."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from core import redis as nxredis

    connections.close_all()  # the drop below would break them
    database_recreate(settings.DATABASES["default"]["NAME"])
    call_command("migrate", interactive=False, verbosity=0)
    nxredis.sync_client().flushdb()
    if upstream_port is not None:
        call_command("load_providers", str(catalogue(upstream_port)), stdout=io.StringIO())
    return customers_create(customers)


def catalogue(upstream_port: int) -> Path:
    path = ROOT / "bench" / "results" / "providers.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
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
    return path


def customers_create(count: int) -> list[Customer]:
    from accounts.services import api_key_create, user_get_or_create
    from billing.services import credits_grant

    made = []
    for i in range(count):
        user, _ = user_get_or_create(email=f"bench{i}@example.com")
        credits_grant(user=user, amount=10**12, reference=f"bench-grant-{i}")
        new = api_key_create(user=user, name="bench")
        made.append(Customer(user.pk, new.key.pk, new.secret))
    return made


# -- wrk ------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True, slots=True)
class Load:
    """One wrk: POSTing chat completions to `url`, a key per request in turn (no key:
    no Authorization header)."""

    url: str
    keys: tuple[str, ...]
    concurrency: int
    seconds: float
    stream: bool
    threads: int = 2

    def start(self) -> subprocess.Popen:
        body = json.dumps({**BODY, "stream": self.stream})
        return subprocess.Popen(
            ["wrk", f"-t{min(self.threads, self.concurrency)}", f"-c{self.concurrency}",
             f"-d{self.seconds:g}s", "--latency", "-s", str(ROOT / "bench" / "post.lua"),
             self.url],
            env={**os.environ, "BENCH_BODY": body, "BENCH_KEYS": ",".join(self.keys)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


def wrk_result(process: subprocess.Popen) -> dict[str, float]:
    """What wrk measured, and the CPU seconds it used itself (the load generator's)."""
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # wait4: the child's own rusage
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{out}")
    return wrk_parse(out) | {"cpu": usage.ru_utime + usage.ru_stime}


def wrk_parse(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        latency[pct] = float(match.group(1)) * _UNITS[match.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"], "total": total,
            "errors": int(bad.group(1)) if bad else 0}  # fmt: skip


def wrk(load: Load) -> dict[str, float]:
    return wrk_result(load.start())


# -- CPU accounting of a cell ----------------------------------------------------------


@functools.cache
def postmaster_pid() -> int | None:
    """PostgreSQL's postmaster: the parent of the backend that answers us."""
    with psycopg.connect(f"{PG}/postgres") as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        proc = cpu.process(backend)
    if proc is None:
        print("PostgreSQL does not run on this machine: its CPU is not counted", file=sys.stderr)
    return proc.ppid if proc else None


@functools.cache
def redis_pid() -> int | None:
    pid = int(redis.Redis.from_url(REDIS).info("server")["process_id"])
    if cpu.process(pid) is None:
        print("Redis does not run on this machine: its CPU is not counted", file=sys.stderr)
        return None
    return pid


def components(
    *,
    gateways: Iterable[int] = (),
    writers: Iterable[int],
    upstream: int | None = None,
    database: str = DB_PREFIX,
) -> list[cpu.Component]:
    """The processes whose CPU a cell counts: the servers and writers we started,
    PostgreSQL (its own processes and the backends of `database`), Redis (all of it:
    on a shared server that includes other clients' commands), and the fake upstream
    as part of the load generator."""
    return [
        cpu.Component(cpu.GATEWAY, cpu.trees(gateways)),
        cpu.Component(cpu.WRITER, cpu.trees(writers)),
        cpu.Component(cpu.POSTGRES, cpu.postgres(postmaster_pid(), [database]), reaped=False),
        cpu.Component(cpu.REDIS, cpu.trees([redis_pid()]), reaped=False),
        cpu.Component(cpu.LOAD, cpu.trees([upstream])),
    ]


@dataclass(frozen=True, slots=True)
class Drain:
    queued: int  # charges waiting for the writers when the load stopped
    seconds: float  # until every one was written and the requests in flight had settled
    held: int  # reservations of this cell still held after it (see `drain`)


STEADY = 0.5  # seconds reservations stay put before they count as left held


def drain(held_before: int, timeout: float = 120) -> Drain:
    """Wait until the writers have written every charge and the requests in flight
    when wrk stopped have settled: only then is the writers' (and PostgreSQL's) work
    for a cell all done. A request that wrk cut off may leave its reservation held
    until the stale sweep releases it (its provider's timeout and a minute later):
    reservations above `held_before` that stay put for STEADY seconds are counted as
    such, not waited for."""
    from gateway.backlog import backlog

    started = time.monotonic()
    first = state = backlog()
    steady = started
    while state.queued or (state.reservations > held_before and time.monotonic() - steady < STEADY):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not drained after {timeout}s: {state}")
        time.sleep(0.05)  # gently: every look is 48 Redis commands, counted as Redis's CPU
        previous, state = state, backlog()
        if state.reservations != previous.reservations or state.queued:
            steady = time.monotonic()
    held = max(0, state.reservations - held_before)
    # With reservations left held, the drain ended when they last moved, not when we
    # had watched them stay put long enough.
    ended = steady if held else time.monotonic()
    return Drain(first.queued, ended - started, held)


@dataclass(frozen=True, slots=True)
class Measured:
    results: list[dict[str, float]]  # wrk's, one per wrk
    seconds: dict[str, float]  # CPU seconds by component, the drain included
    others: float  # cores that other work on the machine used meanwhile
    drain: Drain

    @property
    def served(self) -> int:
        return int(sum(r["total"] for r in self.results))

    def per_request(self) -> dict[str, float]:
        return cpu.per_request(self.seconds, self.served)


def measure(components: list[cpu.Component], loads: list[Load]) -> Measured:
    """Run the loads together, wait for the drain, and count the CPU each component
    spent over both."""
    from gateway.backlog import backlog

    held = backlog().reservations
    machine, before, started = cpu.machine(), cpu.sample(components), time.monotonic()
    running = [load.start() for load in loads]
    results = [wrk_result(process) for process in running]
    drained = drain(held)
    seconds = cpu.spent(before, cpu.sample(components))
    busy, wall = cpu.machine() - machine, time.monotonic() - started
    seconds[cpu.LOAD] = seconds.get(cpu.LOAD, 0.0) + sum(r["cpu"] for r in results)
    others = max(0.0, busy - sum(seconds.values())) / wall
    return Measured(results, seconds, others, drained)
