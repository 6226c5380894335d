"""CPU time of the processes a benchmark cell involves, read from /proc.

A component (the gateway's servers, the usage writers, PostgreSQL, Redis, the load
generator) is a set of processes chosen afresh at each sample: the trees under the
processes the benchmark started, walked through each process's parent in
/proc/PID/stat. `sample` before and after a cell, `spent` gives each component's CPU
seconds in between, `per_request` divides them by the requests served.

Only the standard library: the tests import it without Django.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in clock ticks
PROC = Path("/proc")

GATEWAY = "gateway"
WRITER = "writer"
POSTGRES = "postgresql"
REDIS = "redis"
SYSTEM = "system"  # the four above together: what serving the requests cost
LOAD = "load generator"  # wrk and the fake upstream: not the system under test
SYSTEM_PARTS = (GATEWAY, WRITER, POSTGRES, REDIS)


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    own: float  # seconds: utime + stime
    reaped: float  # seconds: cutime + cstime, children that exited and were waited for


def parse_stat(text: str, ticks: int = TICKS) -> Proc:
    """One /proc/PID/stat line (proc(5)). The command name sits in parentheses and may
    itself hold spaces and parentheses, so the fields are counted from the last ')'."""
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = rest.split()  # fields[0] is field 3 (state); ppid is 4, utime..cstime 14..17
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Proc(int(pid), int(fields[1]), comm, (utime + stime) / ticks, (cutime + cstime) / ticks)


def processes() -> dict[int, Proc]:
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = parse_stat((entry / "stat").read_text())
            except (FileNotFoundError, ProcessLookupError):
                continue  # it exited while we looked
    return found


def process(pid: int) -> Proc | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def tree(procs: Mapping[int, Proc], root: int) -> set[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: set[int] = set()
    todo = [root] if root in procs else []
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


Selector = Callable[[Mapping[int, Proc]], set[int]]


def trees(roots: Iterable[int | None]) -> Selector:
    roots = [r for r in roots if r is not None]

    def select(procs: Mapping[int, Proc]) -> set[int]:
        return set().union(*(tree(procs, root) for root in roots))

    return select


# A backend's title: "postgres: [CLUSTER: ]USER DATABASE HOST(PORT)|[local] STATE".
_BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) (?:\[local\]|\S+\(\d+\))")


def backend_database(title: str) -> str | None:
    """The database a PostgreSQL backend serves, from the title it gives itself; None
    for the postmaster and its auxiliary processes (checkpointer, WAL writer...)."""
    match = _BACKEND.match(title)
    return match.group(1) if match else None


def postgres(postmaster: int | None, databases: Collection[str]) -> Selector:
    """The postmaster, its auxiliary processes and the backends of `databases`; not the
    backends of other databases, which on a shared server serve someone else's work."""
    below = trees([postmaster])

    def select(procs: Mapping[int, Proc]) -> set[int]:
        return {pid for pid in below(procs) if backend_database(cmdline(pid)) in (None, *databases)}

    return select


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    select: Selector
    # Count children that exited and were reaped inside the tree; not for a shared
    # server (the postmaster reaps every database's backends).
    reaped: bool = True


Sample = dict[str, dict[int, float]]  # component -> pid -> CPU seconds so far


def sample(components: Iterable[Component]) -> Sample:
    procs = processes()
    return {
        c.name: {
            pid: procs[pid].own + (procs[pid].reaped if c.reaped else 0.0)
            for pid in c.select(procs)
        }
        for c in components
    }


def spent(before: Sample, after: Sample) -> dict[str, float]:
    """CPU seconds each component spent between two samples: per process, what it has
    now less what it had. A process started in between counts whole; one that exited
    in between is lost, unless a process of the same tree reaped it."""
    return {
        name: sum(max(0.0, now - before.get(name, {}).get(pid, 0.0)) for pid, now in pids.items())
        for name, pids in after.items()
    }


def per_request(seconds: Mapping[str, float], requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request, by component, with the system's sum."""
    ms = {name: 1000.0 * s / max(requests, 1) for name, s in seconds.items()}
    ms[SYSTEM] = sum(ms.get(part, 0.0) for part in SYSTEM_PARTS)
    return ms


def parse_machine(text: str, ticks: int = TICKS) -> float:
    """Busy CPU seconds of the whole machine since boot, from /proc/stat's first line
    (user nice system idle iowait irq softirq steal ...; guest time is inside user)."""
    fields = [int(f) for f in text.split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / ticks


def machine() -> float:
    return parse_machine((PROC / "stat").read_text())
