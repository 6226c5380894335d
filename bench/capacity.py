"""How many gateway hosts each shared component serves, from the CPU it spends per
request (bench/scale.py measures it). Plain arithmetic, no I/O: the tests check it.

A component saturates when its CPU is busy all the time: Redis and a usage writer are
one process each (one core at most: Redis runs commands on one thread, a writer is
one Python process), PostgreSQL and a gateway host use every core they have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def saturation(cpu_ms: float, cores: float = 1.0) -> float:
    """Requests/s at which `cores` of CPU are all busy, at `cpu_ms` of CPU a request
    (infinite when nothing was measured)."""
    return cores * 1000.0 / cpu_ms if cpu_ms > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Limit:
    key: str  # host, redis, writer, postgres; "... flat out" for the write path's own
    component: str
    cpu_ms: float | None  # per request; None where the figure is a measured rate
    rps: float  # where it saturates
    hosts: float  # gateway hosts it serves, each flat out


@dataclass(frozen=True, slots=True)
class FlatOut:
    writer_rate: float  # records/s one writer lands
    postgres_ms: float  # PostgreSQL's CPU per record meanwhile


def limits(
    *,
    gateway_ms: float,
    writer_ms: float,
    postgres_ms: float,
    redis_ms: float,
    host_cores: int,
    postgres_cores: int,
    flat_out: FlatOut | None = None,
) -> list[Limit]:
    """The saturation point of a gateway host and of each component behind it, and
    how many hosts of `host_cores` (each as busy as its CPU allows) that is. The CPU
    figures are per request at the load measured; `flat_out` adds the write path's
    own figures with the writer as busy as it can be (bench/writer.py)."""
    host = saturation(gateway_ms, host_cores)

    def limit(key: str, name: str, ms: float | None, rps: float) -> Limit:
        return Limit(key, name, ms, rps, rps / host if 0 < host < math.inf else math.nan)

    pg = f"PostgreSQL ({postgres_cores} cores)"
    rows = [
        limit("host", f"gateway host ({host_cores} cores)", gateway_ms, host),
        limit("redis", "Redis (one core)", redis_ms, saturation(redis_ms)),
        limit(
            "writer",
            "usage writer (one process), by its CPU at this load",
            writer_ms,
            saturation(writer_ms),
        ),
        limit(
            "postgres",
            f"{pg}, by its CPU at this load",
            postgres_ms,
            saturation(postgres_ms, postgres_cores),
        ),
    ]
    if flat_out is not None:
        rows += [
            limit("writer flat out", "usage writer, measured flat out", None, flat_out.writer_rate),
            limit(
                "postgres flat out",
                f"{pg}, by its CPU with the writer flat out",
                flat_out.postgres_ms,
                saturation(flat_out.postgres_ms, postgres_cores),
            ),
        ]
    return rows
