"""The benchmark's CPU accounting (bench/cpu.py): what it reads from /proc and how it
turns two samples into CPU per request, component by component."""

from __future__ import annotations

import os
import sys

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def stat_line(
    pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int, cstime: int
) -> str:
    # Fields 3 to 17 of proc(5): state, ppid, pgrp, session, tty, tpgid, flags, minflt,
    # cminflt, majflt, cmajflt, utime, stime, cutime, cstime; then the rest.
    middle = f"S {ppid} {pid} {pid} 0 -1 4194304 97 0 0 0 {utime} {stime} {cutime} {cstime}"
    return f"{pid} ({comm}) {middle} 20 0 1 0 543679 3133440 357\n"


def test_a_stat_line_gives_parent_and_cpu_seconds_even_with_parentheses_in_the_name():
    proc = cpu.parse_stat(stat_line(42, "we (ird) na)me", 7, 150, 50, 30, 20), ticks=100)
    assert proc == cpu.Proc(pid=42, ppid=7, comm="we (ird) na)me", own=2.0, reaped=0.5)


def test_this_process_is_read_from_proc_with_its_parent():
    procs = cpu.processes()
    me = procs[os.getpid()]
    assert me.ppid == os.getppid()
    assert me.own > 0
    assert cpu.process(os.getpid()).ppid == os.getppid()


def test_a_tree_is_a_process_and_everything_below_it():
    procs = {
        pid: cpu.Proc(pid, ppid, "p", 0.0, 0.0)
        for pid, ppid in [(1, 0), (10, 1), (11, 10), (12, 10), (13, 12), (20, 1)]
    }
    assert cpu.tree(procs, 10) == {10, 11, 12, 13}
    assert cpu.trees([10, 20, None])(procs) == {10, 11, 12, 13, 20}
    assert cpu.tree(procs, 99) == set()


@pytest.mark.parametrize(
    ("title", "database"),
    [
        ("postgres: 15/main: postgres nexai_bench 127.0.0.1(53172) idle", "nexai_bench"),
        ("postgres: app nexai_scale [local] SELECT", "nexai_scale"),
        ("postgres: 16/main: app shop db.internal(5000) idle in transaction", "shop"),
        ("postgres: 15/main: checkpointer", None),
        ("postgres: 15/main: background writer", None),
        ("postgres: logical replication launcher", None),
        ("postgres: 15/main: autovacuum worker nexai_bench", None),
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", None),
    ],
)
def test_a_backend_names_its_database_and_postgresqls_own_processes_name_none(title, database):
    assert cpu.backend_database(title) == database


def test_cpu_spent_counts_each_process_since_the_first_sample():
    before = {"gateway": {1: 10.0, 2: 5.0}, "redis": {9: 100.0}}
    after = {
        "gateway": {1: 12.5, 2: 5.5, 3: 0.25},  # 3 started in between: all of it counts
        "redis": {9: 100.75},
    }
    spent = cpu.spent(before, after)
    assert spent == pytest.approx({"gateway": 3.25, "redis": 0.75})


def test_cpu_per_request_is_in_milliseconds_and_the_system_leaves_out_the_load_generator():
    seconds = {cpu.GATEWAY: 1.2, cpu.WRITER: 0.3, cpu.POSTGRES: 0.2, cpu.REDIS: 0.1, cpu.LOAD: 0.5}
    ms = cpu.per_request(seconds, 1000)
    assert ms[cpu.GATEWAY] == pytest.approx(1.2)
    assert ms[cpu.LOAD] == pytest.approx(0.5)
    assert ms[cpu.SYSTEM] == pytest.approx(1.8)


def test_machine_busy_time_leaves_out_idle_and_iowait():
    assert cpu.parse_machine("cpu  100 10 50 900 40 5 3 2 0 0\ncpu0 ...", ticks=100) == 1.7
    assert cpu.machine() > 0
