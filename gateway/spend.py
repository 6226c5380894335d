"""Admission, reservations and settlement: the money side of the hot path, and the
one owner of the wallet's fast copy.

One call admits a request: it checks the key's and the plan's rate limits (a sliding
window of one minute) and concurrency caps (requests in flight at once, per account and
per key), checks that the wallet's balance, less what requests in
flight have reserved and what has been charged but not yet written, covers the
request's estimate, checks the key's spend limit, then reserves the estimate and
records the reservation, counting it in flight. Settlement releases the reservation
(and its place in flight), holds the real charge as pending, and queues the usage
record for the batch writer (gateway.writer). A request counts in flight exactly as
long as its reservation is held, so whatever settles a reservation (the relay, the
stale sweep for a process that died) also frees its place.

The fast copy of a wallet (balance, version and plan as committed in the database,
beside what the gateway holds: `res` reserved by requests in flight, `pend` charged
but not yet in the ledger) is written only here: by admission and settlement, and by
`sync_wallet`, which billing reaches through `billing.balances.publish` after every
committed ledger change.

Two interchangeable stores: Redis (one Lua script per step, shared by every process)
when REDIS_URL is set, and an in-process one for the embedded default.

Redis layout. Every key of a wallet lives under its partition's hash tag,
`nx:{pN}:...` with N = user id mod NEXAI_SPEND_PARTITIONS, so each script touches one
slot (Redis Cluster can spread partitions over nodes) and writers can own disjoint
partitions:
    nx:{pN}:w:USER        wallet copy: bal, ver, paid, res, pend; fly (requests in flight)
    nx:{pN}:k:KEY         API key: spent, res, fly
    nx:{pN}:rl:k:KEY:WIN  rate-limit windows of a key, and of a user (rl:u:USER:WIN)
    nx:{pN}:resv          request id -> "PROCESS RECORD" of each reservation
    nx:{pN}:dl            request id -> deadline (ms), the stale sweep's index
    nx:{pN}:q             settled records waiting for the writer
    nx:{pN}:lock          the writer that owns the partition (owner token, short lease)
    nx:live:PROCESS       a serving process's liveness (renewed every 2 s, lives 6 s)
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import redis
from django.conf import settings

from billing.balances import WalletSnapshot
from core import redis as nxredis
from gateway.records import Record

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
LOCAL_WALLET_FRESH = 2.0  # seconds; the in-process store only
LIVENESS_TTL_MS = 6_000  # a process silent this long is dead: its reservations are swept
LIVENESS_EVERY = 2.0  # seconds between a process's liveness renewals

# What a caller sees when Redis cannot be reached: the request path answers 503 (it
# never admits what it could not account for), settlement writes to the database.
RedisDown = (redis.ConnectionError, redis.TimeoutError)


class Outcome(StrEnum):
    OK = "ok"
    RATE_KEY = "rate_key"  # the key's requests per minute
    RATE_PLAN = "rate_plan"  # the plan's requests per minute
    CONCURRENCY_KEY = "conc_key"  # the key's own cap on requests in flight
    CONCURRENCY_PLAN = "conc_plan"  # the plan's cap on an account's requests in flight
    BALANCE = "balance"  # available credits cannot cover the estimate
    KEY_LIMIT = "key_limit"  # the key's lifetime spend limit
    INIT_WALLET = "init_wallet"  # no copy of the wallet yet: load it and retry
    INIT_KEY = "init_key"  # no copy of the key's spend yet: load it and retry


@dataclass(frozen=True, slots=True)
class Limits:
    key_rpm: int | None
    free_rpm: int
    paid_rpm: int
    key_spend_limit: int | None
    key_concurrency: int | None = None
    free_concurrency: int = 0  # 0: no cap (the settings always give one)
    paid_concurrency: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Outcome
    limit: int = 0
    remaining: int = 0
    reset_ms: int = 0
    available: int = 0
    in_flight: int = 0  # concurrency refusals: the requests in flight under the cap

    @classmethod
    def of(cls, result: list) -> Admission:
        """The admission script's answer: {outcome, limit, remaining, reset, n}, n being
        the credits available, or the requests in flight for a concurrency refusal."""
        outcome = Outcome(_text(result[0]))
        numbers = [int(n) for n in result[1:5]]
        if outcome in (Outcome.CONCURRENCY_KEY, Outcome.CONCURRENCY_PLAN):
            return cls(outcome, *numbers[:3], in_flight=numbers[3])
        return cls(outcome, *numbers)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


# -- key layout ---------------------------------------------------------------------


def partitions() -> int:
    return settings.NEXAI_SPEND_PARTITIONS


def partition_of(user_id: int) -> int:
    return user_id % partitions()


def _tag(partition: int) -> str:
    return f"nx:{{p{partition}}}"


def wallet_key(user_id: int) -> str:
    return f"{_tag(partition_of(user_id))}:w:{user_id}"


def key_hash(user_id: int, key_id: int | None) -> str:
    return f"{_tag(partition_of(user_id))}:k:{key_id or 0}"


def reservations_key(partition: int) -> str:
    return f"{_tag(partition)}:resv"


def deadlines_key(partition: int) -> str:
    return f"{_tag(partition)}:dl"


def queue_key(partition: int) -> str:
    return f"{_tag(partition)}:q"


def lock_key(partition: int) -> str:
    return f"{_tag(partition)}:lock"


def liveness_key(process: str) -> str:
    return f"nx:live:{process}"


def _rate_keys(kind: str, ident: int, user_id: int, now_ms: int) -> tuple[str, str]:
    window = now_ms // WINDOW_MS
    base = f"{_tag(partition_of(user_id))}:rl:{kind}:{ident}"
    return f"{base}:{window}", f"{base}:{window - 1}"


def _sliding(current: int, previous: int, now_ms: int) -> float:
    """Requests in the last minute, estimated from two fixed windows: smooth enough to
    stop bursts at a window's edge, and two counters per limit."""
    elapsed = (now_ms % WINDOW_MS) / WINDOW_MS
    return current + previous * (1 - elapsed)


# -- this process's liveness ----------------------------------------------------------

_process = {"pid": 0, "token": ""}
_process_lock = threading.Lock()


def process_token() -> str:
    """This process's name in reservations. A thread renews its liveness key, so the
    stale sweep can release what a dead process held within seconds, for streaming and
    non-streaming requests alike. A forked child gets its own name and thread."""
    pid = os.getpid()
    if _process["pid"] == pid:
        return _process["token"]
    with _process_lock:
        if _process["pid"] != pid:
            token = f"{pid}-{secrets.token_hex(6)}"
            _process["token"], _process["pid"] = token, pid
            if nxredis.enabled():
                nxredis.sync_client().set(liveness_key(token), 1, px=LIVENESS_TTL_MS)
                threading.Thread(
                    target=_keep_alive, args=(token,), name="nexai-liveness", daemon=True
                ).start()
    return _process["token"]


def _keep_alive(token: str) -> None:
    while _process["token"] == token:
        try:
            renew_liveness()
            release_settled()
        except redis.RedisError:
            log.warning("could not renew this process's liveness in Redis", exc_info=True)
        time.sleep(LIVENESS_EVERY)


# Reservations of requests settled straight to the database while Redis was down:
# released (without a charge, which is in the ledger already) once Redis answers, so
# that credits are not held until the reservation's deadline.
_unreleased: deque[Record] = deque(maxlen=100_000)


def release_later(record: Record) -> None:
    _unreleased.append(record)


def release_settled() -> int:
    released = 0
    while _unreleased:
        record = _unreleased[0]
        part = partition_of(record.user_id)
        nxredis.seval(
            RELEASE_RESERVATION_LUA, 4,
            wallet_key(record.user_id), key_hash(record.user_id, record.api_key_id),
            reservations_key(part), deadlines_key(part), record.request_id, record.reserved,
        )  # fmt: skip
        _unreleased.popleft()
        released += 1
    return released


def renew_liveness() -> None:
    """Say now that this process is alive (the thread says it every LIVENESS_EVERY;
    tests that empty Redis call it at once)."""
    if _process["pid"] == os.getpid() and nxredis.enabled():
        nxredis.sync_client().set(liveness_key(_process["token"]), 1, px=LIVENESS_TTL_MS)


# -- Redis scripts --------------------------------------------------------------------

# KEYS: wallet, key, the key's and the user's rate windows (current, previous),
# reservations, deadlines. ARGV: now, estimate, key rpm, free rpm, paid rpm, key spend
# limit, request id, "PROCESS RECORD", deadline, key concurrency, free and paid
# concurrency (0: none).
ADMIT_LUA = """
local w, k = KEYS[1], KEYS[2]
if redis.call('HEXISTS', w, 'bal') == 0 then return {'init_wallet', 0, 0, 0, 0} end
local now = tonumber(ARGV[1])
local est = tonumber(ARGV[2])
local key_rpm = tonumber(ARGV[3])
local plan_rpm, plan_conc = tonumber(ARGV[4]), tonumber(ARGV[11])
if redis.call('HGET', w, 'paid') == '1' then plan_rpm, plan_conc = tonumber(ARGV[5]), tonumber(ARGV[12]) end
local klimit = tonumber(ARGV[6])
local key_conc = tonumber(ARGV[10])
local win = 60000
local elapsed = (now % win) / win
local reset = win - (now % win)
local function seen(cur, prev)
  return tonumber(redis.call('GET', cur) or '0') + tonumber(redis.call('GET', prev) or '0') * (1 - elapsed)
end
local used_plan = seen(KEYS[5], KEYS[6])
if used_plan + 1 > plan_rpm then return {'rate_plan', plan_rpm, 0, reset, 0} end
local limit, remaining = plan_rpm, plan_rpm - used_plan - 1
if key_rpm > 0 then
  local used_key = seen(KEYS[3], KEYS[4])
  if used_key + 1 > key_rpm then return {'rate_key', key_rpm, 0, reset, 0} end
  if key_rpm - used_key - 1 < remaining then limit, remaining = key_rpm, key_rpm - used_key - 1 end
end
local flying = tonumber(redis.call('HGET', w, 'fly') or '0')
if plan_conc > 0 and flying >= plan_conc then return {'conc_plan', plan_conc, 0, 1000, flying} end
if key_conc > 0 then
  local key_flying = tonumber(redis.call('HGET', k, 'fly') or '0')
  if key_flying >= key_conc then return {'conc_key', key_conc, 0, 1000, key_flying} end
end
local avail = tonumber(redis.call('HGET', w, 'bal')) - tonumber(redis.call('HGET', w, 'res') or '0')
  - tonumber(redis.call('HGET', w, 'pend') or '0')
-- "avail <= 0": a wallet an upstream overdrew (charged beyond its reservation) admits
-- nothing, not even a free-looking request, until credits bring it back above zero.
if avail < est or avail <= 0 then return {'balance', limit, math.floor(remaining), reset, avail} end
if klimit >= 0 then
  if redis.call('HEXISTS', k, 'spent') == 0 then return {'init_key', 0, 0, 0, 0} end
  local kused = tonumber(redis.call('HGET', k, 'spent')) + tonumber(redis.call('HGET', k, 'res') or '0')
  if kused + est > klimit or kused >= klimit then return {'key_limit', limit, math.floor(remaining), reset, klimit - kused} end
end
for i = 3, 5, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], 2 * win)
end
redis.call('HINCRBY', w, 'res', est)
redis.call('HINCRBY', k, 'res', est)
redis.call('HINCRBY', w, 'fly', 1)
redis.call('HINCRBY', k, 'fly', 1)
redis.call('HSET', KEYS[7], ARGV[7], ARGV[8])
redis.call('ZADD', KEYS[8], ARGV[9], ARGV[7])
return {'ok', limit, math.floor(remaining), reset, avail}
"""

# A held reservation that is released leaves flight. Never below zero: a reservation
# made before the count existed (a deploy with requests in flight) frees no place
# another request holds.
_LAND_FN = """
local function land(h)
  if redis.call('HINCRBY', h, 'fly', -1) < 0 then redis.call('HSET', h, 'fly', 0) end
end
"""

# KEYS: wallet, key, reservations, deadlines, queue.
# ARGV: request id, reserved, charge, record, require_held.
# A reservation that is gone (Redis lost it, or the sweep took it) still charges: the
# writer keeps one charge per request id. Only the stale sweep requires it held.
SETTLE_LUA = (
    _LAND_FN
    + """
local held = redis.call('HDEL', KEYS[3], ARGV[1])
if held == 0 and ARGV[5] == '1' then return -1 end
redis.call('ZREM', KEYS[4], ARGV[1])
local reserved, charge = tonumber(ARGV[2]), tonumber(ARGV[3])
if held == 1 then
  -- 0 - x, not -x: Lua turns -0 into "-0", which HINCRBY refuses.
  redis.call('HINCRBY', KEYS[1], 'res', 0 - reserved)
  redis.call('HINCRBY', KEYS[2], 'res', 0 - reserved)
  land(KEYS[1])
  land(KEYS[2])
end
redis.call('HINCRBY', KEYS[1], 'pend', charge)
if redis.call('HEXISTS', KEYS[2], 'spent') == 1 then
  redis.call('HINCRBY', KEYS[2], 'spent', charge)
end
redis.call('RPUSH', KEYS[5], ARGV[4])
return held
"""
)

# KEYS: wallet, key, reservations, deadlines. ARGV: request id, reserved.
RELEASE_RESERVATION_LUA = (
    _LAND_FN
    + """
if redis.call('HDEL', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'res', 0 - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'res', 0 - tonumber(ARGV[2]))
land(KEYS[1])
land(KEYS[2])
return 1
"""
)

# Progress of a long request: what it has delivered so far, and a later deadline.
HEARTBEAT_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# Set bal/ver/paid only if the snapshot is newer than the one held; always release
# the pending amount the snapshot now includes. The one place bal/ver/paid are written.
_SYNC_FN = """
local function sync(w, bal, ver, paid, applied)
  local held = tonumber(redis.call('HGET', w, 'ver') or '-1')
  if tonumber(ver) > held then
    redis.call('HSET', w, 'bal', bal, 'ver', ver, 'paid', paid)
  end
  if applied ~= '0' then
    redis.call('HINCRBY', w, 'pend', 0 - tonumber(applied))
  end
end
"""

SYNC_LUA = _SYNC_FN + "sync(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\nreturn 1\n"

# KEYS: lock, queue, wallets... ARGV: owner, count, then bal, ver, paid, applied per
# wallet. Fenced: a writer whose lease lapsed (another took the partition over) drops
# nothing; its successor re-reads the batch and the database skips what is written.
DRAIN_LUA = (
    _SYNC_FN
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 4
  sync(KEYS[i], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
end
return 1
"""
)

RENEW_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _sync_args(state: WalletSnapshot) -> list[int]:
    return [state.balance, state.version, int(state.paid), state.applied]


class RedisSpendStore:
    async def admit(self, *, record: Record, limits: Limits, deadline_ms: int) -> Admission:
        """Rate limits and the reservation of `record.reserved` credits, at once."""
        user_id, key_id, estimate = record.user_id, record.api_key_id, record.reserved
        now_ms = int(time.time() * 1000)
        part = partition_of(user_id)
        key_now, key_prev = _rate_keys("k", key_id, user_id, now_ms)
        user_now, user_prev = _rate_keys("u", user_id, user_id, now_ms)
        value = process_token().encode() + b" " + record.dumps()
        result = await nxredis.aeval(
            ADMIT_LUA, 8,
            wallet_key(user_id), key_hash(user_id, key_id), key_now, key_prev, user_now, user_prev,
            reservations_key(part), deadlines_key(part),
            now_ms, estimate, limits.key_rpm or 0, limits.free_rpm, limits.paid_rpm,
            -1 if limits.key_spend_limit is None else limits.key_spend_limit,
            record.request_id, value, deadline_ms,
            limits.key_concurrency or 0, limits.free_concurrency, limits.paid_concurrency,
        )  # fmt: skip
        return Admission.of(result)

    def sync_wallet(self, state: WalletSnapshot) -> None:
        nxredis.seval(SYNC_LUA, 1, wallet_key(state.user_id), *_sync_args(state))

    async def init_wallet(self, state: WalletSnapshot) -> None:
        await nxredis.aeval(SYNC_LUA, 1, wallet_key(state.user_id), *_sync_args(state))

    async def init_key(self, *, user_id: int, key_id: int, spent: int) -> None:
        await nxredis.async_client().hsetnx(key_hash(user_id, key_id), "spent", spent)

    async def heartbeat(self, *, record: Record, deadline_ms: int) -> None:
        part = partition_of(record.user_id)
        value = process_token().encode() + b" " + record.dumps()
        await nxredis.aeval(
            HEARTBEAT_LUA, 2, reservations_key(part), deadlines_key(part),
            record.request_id, value, deadline_ms,
        )  # fmt: skip

    async def settle(self, *, record: Record) -> bool:
        return await nxredis.aeval(*self._settle_args(record, require_held=False)) == 1

    def settle_sync(self, *, record: Record, require_held: bool = False) -> bool:
        """Returns whether a reservation was held. With `require_held`, a request
        settled by anyone else meanwhile is left alone (returns False)."""
        return nxredis.seval(*self._settle_args(record, require_held=require_held)) == 1

    def _settle_args(self, record: Record, *, require_held: bool) -> tuple:
        part = partition_of(record.user_id)
        return (
            SETTLE_LUA, 5,
            wallet_key(record.user_id), key_hash(record.user_id, record.api_key_id),
            reservations_key(part), deadlines_key(part), queue_key(part),
            record.request_id, record.reserved, record.charge, record.dumps(), int(require_held),
        )  # fmt: skip

    def stale(self, *, partition: int, now_ms: int) -> list[Record]:
        """Reservations past their deadline or held by a process that stopped renewing
        its liveness (it died)."""
        client = nxredis.sync_client()
        # Every reservation of the partition, not only the earliest deadlines: a dead
        # process's requests can have later deadlines than live ones.
        ids = client.zrange(deadlines_key(partition), 0, -1, withscores=True)
        if not ids:
            return []
        held = []
        for start in range(0, len(ids), 1000):
            chunk = [i for i, _ in ids[start : start + 1000]]
            held += client.hmget(reservations_key(partition), chunk)
        owners = {}
        for value in held:
            if value:
                owners.setdefault(value.split(b" ", 1)[0], None)
        pipe = client.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(liveness_key(_text(owner)))
        alive = {o for o, up in zip(owners, pipe.execute(), strict=True) if up}
        stale, orphans = [], []
        for (request_id, deadline), value in zip(ids, held, strict=True):
            if value is None:
                orphans.append(request_id)
                continue
            owner, raw = value.split(b" ", 1)
            if deadline <= now_ms or owner not in alive:
                stale.append(Record.loads(raw))
        if orphans:
            client.zrem(deadlines_key(partition), *orphans)
        return stale

    def queued(self, *, partition: int, limit: int) -> list[Record]:
        raw = nxredis.sync_client().lrange(queue_key(partition), 0, limit - 1)
        return [Record.loads(r) for r in raw]

    def queue_depth(self) -> int:
        pipe = nxredis.sync_client().pipeline(transaction=False)
        for part in range(partitions()):
            pipe.llen(queue_key(part))
        return sum(pipe.execute())

    def drained(
        self, *, partition: int, owner: str, count: int, states: Iterable[WalletSnapshot]
    ) -> bool:
        """The first `count` queued records are in the database: drop them from the
        queue and refresh the wallets they changed, atomically, if `owner` still holds
        the partition. Returns False if it lost it (nothing changed then)."""
        states = list(states)
        args: list[int | str] = [owner, count]
        for state in states:
            args += _sync_args(state)
        keys = [lock_key(partition), queue_key(partition)]
        keys += [wallet_key(s.user_id) for s in states]
        return nxredis.seval(DRAIN_LUA, len(keys), *keys, *args) == 1

    def lease(self, *, partition: int, owner: str, ms: int) -> bool:
        """Take the partition if nobody holds it, or renew it if `owner` does."""
        client = nxredis.sync_client()
        if client.set(lock_key(partition), owner, nx=True, px=ms):
            return True
        return nxredis.seval(RENEW_LUA, 1, lock_key(partition), owner, ms) == 1

    def release(self, *, partition: int, owner: str) -> None:
        nxredis.seval(RELEASE_LUA, 1, lock_key(partition), owner)

    def holder(self, *, partition: int) -> str | None:
        value = nxredis.sync_client().get(lock_key(partition))
        return _text(value) if value else None

    def snapshot(self, *, user_id: int) -> dict[str, int]:
        raw = nxredis.sync_client().hgetall(wallet_key(user_id))
        return {k.decode(): int(v) for k, v in raw.items()}


@dataclass
class _LocalWallet:
    balance: int = 0
    version: int = -1
    paid: bool = False
    reserved: int = 0
    pending: int = 0
    in_flight: int = 0  # requests admitted and not settled
    known: bool = False  # has a database snapshot arrived yet
    synced_at: float = 0.0  # monotonic time of the last snapshot


@dataclass
class _LocalKey:
    spent: int | None = None
    reserved: int = 0
    in_flight: int = 0


class LocalSpendStore:
    """The same semantics in this process, for the embedded default (one process, one
    partition)."""

    def __init__(self) -> None:
        # One lock: each operation is a few dict updates, so contention is negligible
        # next to the request itself.
        self.lock = threading.Lock()
        self.wallets: dict[int, _LocalWallet] = {}
        self.keys: dict[int, _LocalKey] = {}
        self.rates: dict[str, int] = {}
        self.reservations: dict[str, tuple[int, Record]] = {}  # id -> (deadline, record)
        self.queue: deque[Record] = deque()
        self.owner: str | None = None

    def reset(self) -> None:
        with self.lock:
            self.wallets.clear()
            self.keys.clear()
            self.rates.clear()
            self.reservations.clear()
            self.queue.clear()
            self.owner = None

    def _seen(self, pair: tuple[str, str], now_ms: int) -> float:
        return _sliding(self.rates.get(pair[0], 0), self.rates.get(pair[1], 0), now_ms)

    async def admit(self, *, record: Record, limits: Limits, deadline_ms: int) -> Admission:
        """Rate limits and the reservation of `record.reserved` credits, at once."""
        user_id, key_id, estimate = record.user_id, record.api_key_id, record.reserved
        now_ms = int(time.time() * 1000)
        reset = WINDOW_MS - now_ms % WINDOW_MS
        key_pair = _rate_keys("k", key_id, user_id, now_ms)
        user_pair = _rate_keys("u", user_id, user_id, now_ms)
        with self.lock:
            wallet = self.wallets.get(user_id)
            # Credits granted by a command in another process reach this one only
            # through the database: a copy older than LOCAL_WALLET_FRESH is re-read.
            if (
                wallet is None
                or not wallet.known
                or time.monotonic() - wallet.synced_at > LOCAL_WALLET_FRESH
            ):
                return Admission(Outcome.INIT_WALLET)
            plan_rpm = limits.paid_rpm if wallet.paid else limits.free_rpm
            used = self._seen(user_pair, now_ms)
            if used + 1 > plan_rpm:
                return Admission(Outcome.RATE_PLAN, plan_rpm, 0, reset)
            limit, remaining = plan_rpm, plan_rpm - used - 1
            if limits.key_rpm:
                used_key = self._seen(key_pair, now_ms)
                if used_key + 1 > limits.key_rpm:
                    return Admission(Outcome.RATE_KEY, limits.key_rpm, 0, reset)
                if limits.key_rpm - used_key - 1 < remaining:
                    limit, remaining = limits.key_rpm, limits.key_rpm - used_key - 1
            key = self.keys.setdefault(key_id, _LocalKey())
            plan_conc = limits.paid_concurrency if wallet.paid else limits.free_concurrency
            if plan_conc and wallet.in_flight >= plan_conc:
                return Admission(
                    Outcome.CONCURRENCY_PLAN, plan_conc, 0, 1000, in_flight=wallet.in_flight
                )
            if limits.key_concurrency and key.in_flight >= limits.key_concurrency:
                cap = limits.key_concurrency
                return Admission(Outcome.CONCURRENCY_KEY, cap, 0, 1000, in_flight=key.in_flight)
            available = wallet.balance - wallet.reserved - wallet.pending
            if available < estimate or available <= 0:
                return Admission(Outcome.BALANCE, limit, int(remaining), reset, available)
            if limits.key_spend_limit is not None:
                if key.spent is None:
                    return Admission(Outcome.INIT_KEY)
                used_spend = key.spent + key.reserved
                if (
                    used_spend + estimate > limits.key_spend_limit
                    or used_spend >= limits.key_spend_limit
                ):
                    left = limits.key_spend_limit - used_spend
                    return Admission(Outcome.KEY_LIMIT, limit, int(remaining), reset, left)
            for name in (key_pair[0], user_pair[0]):
                self.rates[name] = self.rates.get(name, 0) + 1
            self._forget_old_windows(now_ms)
            wallet.reserved += estimate
            key.reserved += estimate
            wallet.in_flight += 1
            key.in_flight += 1
            self.reservations[record.request_id] = (deadline_ms, record)
            return Admission(Outcome.OK, limit, int(remaining), reset, available)

    def _forget_old_windows(self, now_ms: int) -> None:
        if len(self.rates) > 10_000:
            keep = {str(now_ms // WINDOW_MS), str(now_ms // WINDOW_MS - 1)}
            self.rates = {k: v for k, v in self.rates.items() if k.rsplit(":", 1)[1] in keep}

    def sync_wallet(self, state: WalletSnapshot) -> None:
        with self.lock:
            wallet = self.wallets.setdefault(state.user_id, _LocalWallet())
            if state.version > wallet.version:
                wallet.balance, wallet.version, wallet.paid = (
                    state.balance,
                    state.version,
                    state.paid,
                )
            wallet.known = True
            wallet.synced_at = time.monotonic()
            wallet.pending -= state.applied

    async def init_wallet(self, state: WalletSnapshot) -> None:
        self.sync_wallet(state)

    async def init_key(self, *, user_id: int, key_id: int, spent: int) -> None:
        with self.lock:
            key = self.keys.setdefault(key_id, _LocalKey())
            if key.spent is None:
                key.spent = spent

    async def heartbeat(self, *, record: Record, deadline_ms: int) -> None:
        with self.lock:
            if record.request_id in self.reservations:
                self.reservations[record.request_id] = (deadline_ms, record)

    async def settle(self, *, record: Record) -> bool:
        return self.settle_sync(record=record)

    def settle_sync(self, *, record: Record, require_held: bool = False) -> bool:
        with self.lock:
            held = self.reservations.pop(record.request_id, None) is not None
            if not held and require_held:
                return False
            wallet = self.wallets.setdefault(record.user_id, _LocalWallet())
            key = self.keys.setdefault(record.api_key_id or 0, _LocalKey())
            if held:
                wallet.reserved -= record.reserved
                key.reserved -= record.reserved
                wallet.in_flight = max(wallet.in_flight - 1, 0)
                key.in_flight = max(key.in_flight - 1, 0)
            wallet.pending += record.charge
            if key.spent is not None:
                key.spent += record.charge
            self.queue.append(record)
            return held

    def stale(self, *, partition: int, now_ms: int) -> list[Record]:
        with self.lock:
            return [rec for deadline, rec in self.reservations.values() if deadline <= now_ms]

    def queued(self, *, partition: int, limit: int) -> list[Record]:
        with self.lock:
            return list(self.queue)[:limit]

    def queue_depth(self) -> int:
        return len(self.queue)

    def drained(
        self, *, partition: int, owner: str, count: int, states: Iterable[WalletSnapshot]
    ) -> bool:
        with self.lock:
            if self.owner != owner:
                return False
            for _ in range(count):
                self.queue.popleft()
        for state in states:
            self.sync_wallet(state)
        return True

    def lease(self, *, partition: int, owner: str, ms: int) -> bool:
        # One process: the lease never lapses, it is released.
        with self.lock:
            if self.owner in (None, owner):
                self.owner = owner
                return True
            return False

    def release(self, *, partition: int, owner: str) -> None:
        with self.lock:
            if self.owner == owner:
                self.owner = None

    def holder(self, *, partition: int) -> str | None:
        return self.owner

    def snapshot(self, *, user_id: int) -> dict[str, int]:
        with self.lock:
            wallet = self.wallets.get(user_id)
            if wallet is None:
                return {}
            return {
                "bal": wallet.balance,
                "res": wallet.reserved,
                "pend": wallet.pending,
                "fly": wallet.in_flight,
            }


_local_store = LocalSpendStore()
_redis_store = RedisSpendStore()


def store() -> RedisSpendStore | LocalSpendStore:
    return _redis_store if nxredis.enabled() else _local_store


def store_partitions() -> range:
    return range(partitions() if nxredis.enabled() else 1)


def publish(state: WalletSnapshot) -> None:
    """billing.balances' sink: a committed ledger change reaches the fast copy. A copy
    Redis cannot take now is refreshed by the next change or re-read when missing; the
    ledger, not this copy, is the truth."""
    try:
        store().sync_wallet(state)
    except redis.RedisError:
        log.error("could not refresh wallet copy of user %s", state.user_id, exc_info=True)
