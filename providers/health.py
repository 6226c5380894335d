"""Upstream health: circuit-breaker state per upstream key and per (key, upstream model)
pair, shared by every process through Redis when REDIS_URL is set, in-process otherwise.

A subject is an upstream key (`k:<id>`, what a 401/403 counts against) or a pair
(`p:<id>:<upstream model>`, what 5xx, timeouts, connection errors, malformed answers and
429s count against). Its record says whether it is closed (usable), open (skipped until
`open_until`) or half-open (open time over: one trial request at a time, claimed with a
lease). The gateway's policy (gateway/health.py) decides what counts and for how long;
this module stores it, atomically, and lets staff read it.

The request path must not pay a Redis round trip per subject: `snapshot()` keeps what it
read for CACHE_TTL seconds per process and fetches every stale subject of a request in
one pipelined round trip; what this process records replaces its cached copy at once.
Request counts and latencies are accumulated in memory and written with that same round
trip, in one-minute buckets that staff see as error rates and latencies.

Times are wall-clock milliseconds, compared across processes: servers need synchronised
clocks (NTP), as they do for everything else with an expiry.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from core import redis as nredis
from providers.models import ProviderKey, Route

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
CACHE_TTL = 0.5  # seconds a process trusts what it read of another process's findings
RECORD_TTL = 7 * 24 * 3600  # seconds a record outlives its last change
STATS_MINUTES = 15  # how far back staff's error rate and latency look
_PREFIX = "nexai:health:"
_STATS_PREFIX = "nexai:health-stats:"


def key_subject(key_id: int) -> str:
    return f"k:{key_id}"


def pair_subject(key_id: int, upstream_model: str) -> str:
    return f"p:{key_id}:{upstream_model}"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Health:
    fails: int = 0  # consecutive failures
    open_until: int = 0  # ms; 0 when closed
    failed_at: int = 0  # ms of the last failure (kept after recovery, for staff)
    trial_until: int = 0  # ms: a half-open trial holds the subject until then
    opens: int = 0  # consecutive openings, for the backoff
    auth_since: int = 0  # ms: first of the current run of auth refusals (keys)
    last_error: str = ""  # secrets already removed

    def state(self, at_ms: int | None = None) -> str:
        if not self.open_until:
            return CLOSED
        return OPEN if (now_ms() if at_ms is None else at_ms) < self.open_until else HALF_OPEN

    @property
    def clean(self) -> bool:
        """Nothing to undo after a success."""
        return not (self.fails or self.open_until or self.trial_until or self.auth_since)

    @classmethod
    def decode(cls, raw: dict[Any, Any]) -> Health:
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = raw.get(f.name, raw.get(f.name.encode()))
            if value is None:
                continue
            if isinstance(value, bytes):
                value = value.decode()
            values[f.name] = value if f.name == "last_error" else int(value)
        return cls(**values)


CLEAN = Health()


def after_failure(
    h: Health,
    *,
    at_ms: int,
    error: str,
    threshold: int,
    base_ms: int,
    max_ms: int,
    fixed_ms: int = 0,
    auth: bool = False,
) -> Health:
    """The record after one more failure (the Lua script below does the same in Redis).

    A failed trial, or `threshold` consecutive failures, opens the subject for
    base * 2^opens (at most max); `fixed_ms` (a 429's Retry-After) opens it for exactly
    that long without growing the backoff."""
    fails = h.fails + 1
    open_until, opens = h.open_until, h.opens
    if fixed_ms > 0:
        open_until = at_ms + fixed_ms
    elif fails >= threshold or h.trial_until:
        open_until = at_ms + min(base_ms * 2**opens, max_ms)
        opens += 1
    return replace(
        h,
        fails=fails,
        open_until=open_until,
        opens=opens,
        failed_at=at_ms,
        trial_until=0,
        auth_since=(h.auth_since or at_ms) if auth else h.auth_since,
        last_error=error,
    )


def after_success(h: Health) -> Health:
    return replace(h, fails=0, open_until=0, trial_until=0, opens=0, auth_since=0)


_FAIL_SCRIPT = """
local h = KEYS[1]
local now = tonumber(ARGV[1])
local threshold, base, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local fixed = tonumber(ARGV[6])
local fails = redis.call('HINCRBY', h, 'fails', 1)
local opens = tonumber(redis.call('HGET', h, 'opens') or '0')
local trial = tonumber(redis.call('HGET', h, 'trial_until') or '0')
if fixed > 0 then
  redis.call('HSET', h, 'open_until', now + fixed)
elseif fails >= threshold or trial > 0 then
  redis.call('HSET', h, 'open_until', now + math.min(base * 2 ^ opens, max), 'opens', opens + 1)
end
if ARGV[7] == '1' and tonumber(redis.call('HGET', h, 'auth_since') or '0') == 0 then
  redis.call('HSET', h, 'auth_since', now)
end
redis.call('HSET', h, 'failed_at', now, 'trial_until', 0, 'last_error', ARGV[2])
redis.call('EXPIRE', h, tonumber(ARGV[8]))
return redis.call('HGETALL', h)
"""

_TRIAL_SCRIPT = """
local h = KEYS[1]
local now = tonumber(ARGV[1])
if tonumber(redis.call('HGET', h, 'trial_until') or '0') > now then return 0 end
if ARGV[3] ~= '1' and tonumber(redis.call('HGET', h, 'open_until') or '0') > now then
  return 0
end
redis.call('HSET', h, 'trial_until', now + tonumber(ARGV[2]))
redis.call('EXPIRE', h, tonumber(ARGV[4]))
return 1
"""


def _pairs(raw: list[Any]) -> dict[Any, Any]:
    return dict(zip(raw[::2], raw[1::2], strict=True))


class _Stats:
    """Request counts, errors and latency sums per subject and minute, not yet written."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, subject: str, *, ok: bool, latency_ms: int) -> None:
        with self.lock:
            bucket = self.pending[(subject, int(time.time() // 60))]
            bucket[0] += 1
            bucket[1] += 0 if ok else 1
            bucket[2] += max(latency_ms, 0)

    def take(self) -> dict[tuple[str, int], list[int]]:
        with self.lock:
            taken, self.pending = self.pending, defaultdict(lambda: [0, 0, 0])
        return taken


class _LocalStore:
    """Without Redis: this process's own records (the embedded default is one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, Health] = {}
        self.stats: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])

    def read(self, subjects: list[str], pending: dict[tuple[str, int], list[int]]) -> list[Health]:
        with self.lock:
            for slot, values in pending.items():
                bucket = self.stats[slot]
                for i, value in enumerate(values):
                    bucket[i] += value
            return [self.records.get(s, CLEAN) for s in subjects]

    def fail(self, subject: str, **kwargs: Any) -> Health:
        with self.lock:
            record = after_failure(self.records.get(subject, CLEAN), **kwargs)
            self.records[subject] = record
            return record

    def succeed(self, subject: str) -> Health:
        with self.lock:
            record = after_success(self.records.get(subject, CLEAN))
            self.records[subject] = record
            return record

    def claim(self, subject: str, *, at_ms: int, lease_ms: int, force: bool) -> bool:
        with self.lock:
            record = self.records.get(subject, CLEAN)
            if record.trial_until > at_ms or (not force and record.open_until > at_ms):
                return False
            self.records[subject] = replace(record, trial_until=at_ms + lease_ms)
            return True

    def window(self, subject: str, minutes: list[int]) -> list[int]:
        with self.lock:
            totals = [0, 0, 0]
            for minute in minutes:
                for i, value in enumerate(self.stats.get((subject, minute), (0, 0, 0))):
                    totals[i] += value
            return totals


_local = _LocalStore()
_stats = _Stats()
_cache: dict[str, tuple[float, Health]] = {}  # subject -> (monotonic time read, record)


def reset() -> None:
    """Forget every record this process holds (tests; Redis is emptied with the cache)."""
    global _local
    _local = _LocalStore()
    _cache.clear()
    _stats.take()


def _remember(subject: str, record: Health) -> Health:
    _cache[subject] = (time.monotonic(), record)
    return record


def _stats_commands(pipe: Any, pending: dict[tuple[str, int], list[int]]) -> None:
    for (subject, minute), (n, errors, latency) in pending.items():
        name = f"{_STATS_PREFIX}{subject}:{minute}"
        pipe.hincrby(name, "n", n)
        pipe.hincrby(name, "err", errors)
        pipe.hincrby(name, "lat", latency)
        pipe.expire(name, (STATS_MINUTES + 5) * 60)


async def snapshot(subjects: list[str]) -> dict[str, Health]:
    """Every subject's record: from this process's copy when it is fresh, else all the
    stale ones (and the pending request counts) in one round trip."""
    now = time.monotonic()
    result: dict[str, Health] = {}
    stale: list[str] = []
    for subject in subjects:
        cached = _cache.get(subject)
        if cached is not None and now - cached[0] < CACHE_TTL:
            result[subject] = cached[1]
        else:
            stale.append(subject)
    if not stale:
        return result
    pending = _stats.take()
    if nredis.enabled():
        pipe = nredis.async_client().pipeline(transaction=False)
        for subject in stale:
            pipe.hgetall(_PREFIX + subject)
        _stats_commands(pipe, pending)
        replies = await pipe.execute()
        records = [Health.decode(raw) for raw in replies[: len(stale)]]
    else:
        records = _local.read(stale, pending)
    for subject, record in zip(stale, records, strict=True):
        result[subject] = _remember(subject, record)
    return result


async def record_failure(
    subject: str,
    *,
    error: str,
    threshold: int,
    base_s: float,
    max_s: float,
    fixed_s: float = 0.0,
    auth: bool = False,
) -> Health:
    at, base_ms, max_ms = now_ms(), int(base_s * 1000), int(max_s * 1000)
    fixed_ms = int(fixed_s * 1000)
    if nredis.enabled():
        raw = await nredis.aeval(
            _FAIL_SCRIPT, 1, _PREFIX + subject,
            at, error, threshold, base_ms, max_ms, fixed_ms, int(auth), RECORD_TTL,
        )  # fmt: skip
        record = Health.decode(_pairs(raw))
    else:
        record = _local.fail(
            subject, at_ms=at, error=error, threshold=threshold, base_ms=base_ms,
            max_ms=max_ms, fixed_ms=fixed_ms, auth=auth,
        )  # fmt: skip
    return _remember(subject, record)


async def record_success(subject: str, known: Health) -> Health:
    """Close the subject (only called when `known`, this process's copy, was not clean)."""
    if nredis.enabled():
        pipe = nredis.async_client().pipeline(transaction=False)
        pipe.hset(
            _PREFIX + subject,
            mapping={"fails": 0, "open_until": 0, "trial_until": 0, "opens": 0, "auth_since": 0},
        )
        pipe.expire(_PREFIX + subject, RECORD_TTL)
        await pipe.execute()
        record = after_success(known)
    else:
        record = _local.succeed(subject)
    return _remember(subject, record)


async def claim_trial(subject: str, *, lease_s: float, force: bool = False) -> bool:
    """Take the subject's one trial slot: True for exactly one caller until the trial
    reports, or its lease ends. `force` also takes it while the subject is still open
    (every candidate of a request is open: the least recently failed one is tried)."""
    at, lease_ms = now_ms(), int(lease_s * 1000)
    if nredis.enabled():
        won = await nredis.aeval(
            _TRIAL_SCRIPT, 1, _PREFIX + subject, at, lease_ms, int(force), RECORD_TTL
        )
        taken = bool(won)
    else:
        taken = _local.claim(subject, at_ms=at, lease_ms=lease_ms, force=force)
    _cache.pop(subject, None)  # the next read sees the trial (or whoever holds it)
    return taken


def note(subject: str, *, ok: bool, latency_ms: int) -> None:
    """Count one answer (or failure) of a pair, for staff's error rate and latency."""
    _stats.add(subject, ok=ok, latency_ms=latency_ms)


# -- for staff (sync: the admin) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    requests: int
    errors: int
    latency_ms: int | None  # mean, over the requests of the window

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def read(subjects: list[str]) -> dict[str, Health]:
    """Current records, read from the store (not from any process's copy)."""
    if not subjects:
        return {}
    if nredis.enabled():
        pipe = nredis.sync_client().pipeline(transaction=False)
        for subject in subjects:
            pipe.hgetall(_PREFIX + subject)
        records = [Health.decode(raw) for raw in pipe.execute()]
    else:
        records = _local.read(subjects, _stats.take())
    return dict(zip(subjects, records, strict=True))


def window(subjects: list[str], minutes: int = STATS_MINUTES) -> dict[str, Window]:
    """Requests, errors and mean latency of each subject over the last `minutes`."""
    current = int(time.time() // 60)
    span = list(range(current - minutes + 1, current + 1))
    totals: dict[str, list[int]] = {}
    if nredis.enabled():
        pipe = nredis.sync_client().pipeline(transaction=False)
        _stats_commands(pipe, _stats.take())
        for subject in subjects:
            for minute in span:
                pipe.hmget(f"{_STATS_PREFIX}{subject}:{minute}", "n", "err", "lat")
        replies = pipe.execute()[-len(subjects) * len(span) :] if subjects else []
        for i, subject in enumerate(subjects):
            total = [0, 0, 0]
            for reply in replies[i * len(span) : (i + 1) * len(span)]:
                for j, value in enumerate(reply):
                    total[j] += int(value or 0)
            totals[subject] = total
    else:
        _local.read([], _stats.take())
        totals = {s: _local.window(s, span) for s in subjects}
    return {s: Window(n, err, lat // n if n else None) for s, (n, err, lat) in totals.items()}


@dataclass(frozen=True)
class Row:
    """One line of the admin's health page: an upstream key, or a route on one key."""

    subject: str
    provider: str
    key_id: int
    key_label: str  # fingerprint and label; never the secret
    enabled: bool
    model: str = ""  # public model id (routes only)
    upstream_model: str = ""
    route_id: int | None = None
    state: str = CLOSED
    open_until: int = 0  # ms
    failed_at: int = 0  # ms
    last_error: str = ""
    requests: int = 0
    errors: int = 0
    latency_ms: int | None = None

    @property
    def error_percent(self) -> str:
        return f"{100 * self.errors / self.requests:.0f}%" if self.requests else ""

    @property
    def opens_again(self) -> datetime | None:
        return _when(self.open_until) if self.state == OPEN else None

    @property
    def last_failure(self) -> datetime | None:
        return _when(self.failed_at)


def _ms(when: datetime | None) -> int:
    return int(when.timestamp() * 1000) if when else 0


def _when(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def overview() -> tuple[list[Row], list[Row]]:
    """(keys, routes) with their breaker state and the last STATS_MINUTES of traffic."""
    keys = list(ProviderKey.objects.select_related("provider").order_by("provider__name", "pk"))
    routes = list(
        Route.objects.select_related("model", "provider").order_by("model__public_id", "position")
    )
    by_provider: dict[int, list[ProviderKey]] = defaultdict(list)
    for key in keys:
        by_provider[key.provider_id].append(key)
    pairs = [
        (route, key, pair_subject(key.pk, route.upstream_model))
        for route in routes
        for key in by_provider[route.provider_id]
    ]
    subjects = [key_subject(k.pk) for k in keys] + [p for _r, _k, p in pairs]
    records = read(subjects)
    traffic = window(list(dict.fromkeys(p for _r, _k, p in pairs)))
    at = now_ms()

    def label(key: ProviderKey) -> str:
        return f"…{key.fingerprint}" + (f" ({key.label})" if key.label else "")

    key_rows = []
    for key in keys:
        record = records[key_subject(key.pk)]
        mine = [traffic[p] for r, k, p in pairs if k.pk == key.pk]
        n, err = sum(w.requests for w in mine), sum(w.errors for w in mine)
        lat = sum((w.latency_ms or 0) * w.requests for w in mine)
        key_rows.append(
            Row(
                subject=key_subject(key.pk),
                provider=key.provider.name,
                key_id=key.pk,
                key_label=label(key),
                enabled=key.enabled,
                state=record.state(at),
                open_until=record.open_until,
                failed_at=record.failed_at,
                last_error=record.last_error or key.last_error,
                requests=n,
                errors=err,
                latency_ms=lat // n if n else None,
            )
        )
    route_rows = []
    for route, key, pair in pairs:
        record, seen = records[pair], traffic[pair]
        route_rows.append(
            Row(
                subject=pair,
                provider=route.provider.name,
                key_id=key.pk,
                key_label=label(key),
                enabled=key.enabled and route.model.enabled,
                model=route.model.public_id,
                upstream_model=route.upstream_model,
                route_id=route.pk,
                state=record.state(at),
                open_until=record.open_until,
                failed_at=record.failed_at,
                last_error=record.last_error,
                requests=seen.requests,
                errors=seen.errors,
                latency_ms=seen.latency_ms,
            )
        )
    return key_rows, route_rows
