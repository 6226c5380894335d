"""Admission, reservations and settlement: the money side of the hot path.

One call admits a request: it checks the key's and the plan's rate limits (a sliding
window of one minute), checks that the wallet's balance, less what requests in
flight have reserved and what has been charged but not yet written, covers the
request's estimate, checks the key's spend limit, then reserves the estimate and
records the reservation. Settlement releases the reservation, holds the real charge
as pending, and queues the charge and usage record for the batch writer
(gateway.writer). Each reservation is settled exactly once: by its request, or by
the stale sweep if its process died.

Two interchangeable stores: Redis (one Lua script per step, shared by every process)
when REDIS_URL is set, and an in-process one for the embedded default.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from billing import balances
from nexai import redis as nxredis

WINDOW_MS = 60_000
LOCAL_WALLET_FRESH = 2.0  # seconds; the in-process store only
P = balances.PREFIX
QUEUE = f"{P}charges"
RESERVATIONS = f"{P}resv"
DEADLINES = f"{P}resv:deadline"


@dataclass(frozen=True, slots=True)
class Limits:
    key_rpm: int | None
    free_rpm: int
    paid_rpm: int
    key_spend_limit: int | None


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: str  # ok | rate_key | rate_plan | balance | key_limit | init_wallet | init_key
    limit: int = 0
    remaining: int = 0
    reset_ms: int = 0
    available: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def key_hash(key_id: int) -> str:
    return f"{P}k:{{{key_id}}}"


def _rate_keys(prefix: str, ident: int, now_ms: int) -> tuple[str, str]:
    window = now_ms // WINDOW_MS
    return f"{P}rl:{prefix}:{ident}:{window}", f"{P}rl:{prefix}:{ident}:{window - 1}"


def _sliding(current: int, previous: int, now_ms: int) -> float:
    """Requests in the last minute, estimated from two fixed windows: smooth enough to
    stop bursts at a window's edge, and two counters per limit."""
    elapsed = (now_ms % WINDOW_MS) / WINDOW_MS
    return current + previous * (1 - elapsed)


ADMIT_LUA = """
local w, k = KEYS[1], KEYS[2]
if redis.call('HEXISTS', w, 'bal') == 0 then return {'init_wallet', 0, 0, 0, 0} end
local now = tonumber(ARGV[1])
local est = tonumber(ARGV[2])
local key_rpm = tonumber(ARGV[3])
local plan_rpm = tonumber(ARGV[4])
if redis.call('HGET', w, 'paid') == '1' then plan_rpm = tonumber(ARGV[5]) end
local klimit = tonumber(ARGV[6])
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
local avail = tonumber(redis.call('HGET', w, 'bal')) - tonumber(redis.call('HGET', w, 'res') or '0')
  - tonumber(redis.call('HGET', w, 'pend') or '0')
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
redis.call('HSET', KEYS[7], ARGV[7], ARGV[8])
redis.call('ZADD', KEYS[8], ARGV[9], ARGV[7])
return {'ok', limit, math.floor(remaining), reset, avail}
"""

# KEYS: wallet, key, reservations, deadlines, queue. ARGV: request id, charge, record.
SETTLE_LUA = """
local held = redis.call('HGET', KEYS[3], ARGV[1])
if not held then return 0 end
local reserved = tonumber(cjson.decode(held)['reserved'])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
-- 0 - x, not -x: Lua turns -0 into "-0", which HINCRBY refuses.
redis.call('HINCRBY', KEYS[1], 'res', 0 - reserved)
redis.call('HINCRBY', KEYS[1], 'pend', tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'res', 0 - reserved)
if redis.call('HEXISTS', KEYS[2], 'spent') == 1 then
  redis.call('HINCRBY', KEYS[2], 'spent', tonumber(ARGV[2]))
end
redis.call('RPUSH', KEYS[5], ARGV[3])
return 1
"""

# Progress of a long request: what it has delivered so far, and a later deadline.
HEARTBEAT_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

INIT_WALLET_LUA = """
local held = tonumber(redis.call('HGET', KEYS[1], 'ver') or '-1')
if tonumber(ARGV[2]) > held then
  redis.call('HSET', KEYS[1], 'bal', ARGV[1], 'ver', ARGV[2], 'paid', ARGV[3])
end
return 1
"""


def _record_json(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), default=str)


class RedisSpendStore:
    async def admit(
        self,
        *,
        request_id: str,
        user_id: int,
        key_id: int,
        estimate: int,
        limits: Limits,
        deadline_ms: int,
        record: dict,
    ) -> Admission:
        now_ms = int(time.time() * 1000)
        key_now, key_prev = _rate_keys("k", key_id, now_ms)
        user_now, user_prev = _rate_keys("u", user_id, now_ms)
        result = await nxredis.aeval(
            ADMIT_LUA, 8,
            balances.wallet_key(user_id), key_hash(key_id), key_now, key_prev, user_now, user_prev,
            RESERVATIONS, DEADLINES,
            now_ms, estimate, limits.key_rpm or 0, limits.free_rpm, limits.paid_rpm,
            -1 if limits.key_spend_limit is None else limits.key_spend_limit,
            request_id, _record_json(record), deadline_ms,
        )  # fmt: skip
        outcome = result[0].decode() if isinstance(result[0], bytes) else result[0]
        return Admission(outcome, int(result[1]), int(result[2]), int(result[3]), int(result[4]))

    async def init_wallet(self, *, user_id: int, balance: int, version: int, paid: bool) -> None:
        await nxredis.aeval(
            INIT_WALLET_LUA, 1, balances.wallet_key(user_id), balance, version, int(paid)
        )

    async def init_key(self, *, key_id: int, spent: int) -> None:
        await nxredis.async_client().hsetnx(key_hash(key_id), "spent", spent)

    async def heartbeat(self, *, request_id: str, record: dict, deadline_ms: int) -> None:
        await nxredis.aeval(
            HEARTBEAT_LUA, 2, RESERVATIONS, DEADLINES, request_id, _record_json(record), deadline_ms
        )

    async def settle(self, *, record: dict) -> bool:
        return bool(await nxredis.aeval(*self._settle_args(record)))

    def settle_sync(self, *, record: dict) -> bool:
        return bool(nxredis.seval(*self._settle_args(record)))

    def _settle_args(self, record: dict) -> tuple:
        return (
            SETTLE_LUA, 5,
            balances.wallet_key(record["user_id"]), key_hash(record["api_key_id"]),
            RESERVATIONS, DEADLINES, QUEUE,
            record["request_id"], record["charge"], _record_json(record),
        )  # fmt: skip

    def stale(self, *, now_ms: int) -> list[dict]:
        client = nxredis.sync_client()
        ids = client.zrangebyscore(DEADLINES, "-inf", now_ms, start=0, num=500)
        if not ids:
            return []
        held = client.hmget(RESERVATIONS, ids)
        return [json.loads(h) for h in held if h]

    def queued(self, *, limit: int) -> list[dict]:
        return [json.loads(r) for r in nxredis.sync_client().lrange(QUEUE, 0, limit - 1)]

    def drained(self, *, count: int, states: dict[int, object]) -> None:
        """The first `count` queued records are in the database: drop them from the
        queue and refresh the wallets they changed, atomically."""
        pipe = nxredis.sync_client().pipeline(transaction=True)
        pipe.ltrim(QUEUE, count, -1)
        for user_id, state in states.items():
            pipe.eval(
                balances.SYNC_LUA, 1, balances.wallet_key(user_id),
                state.balance, state.version, int(state.paid), state.applied,
            )  # fmt: skip
        pipe.execute()

    def writer_lock(self, *, seconds: int) -> bool:
        return bool(nxredis.sync_client().set(f"{P}writer-lock", "1", nx=True, ex=seconds))

    def writer_unlock(self) -> None:
        nxredis.sync_client().delete(f"{P}writer-lock")

    def snapshot(self, *, user_id: int) -> dict[str, int]:
        raw = nxredis.sync_client().hgetall(balances.wallet_key(user_id))
        return {k.decode(): int(v) for k, v in raw.items()}


@dataclass
class _LocalKey:
    spent: int | None = None
    reserved: int = 0


class LocalSpendStore:
    """The same semantics in this process, for the embedded default (one process)."""

    def __init__(self) -> None:
        self.lock = balances.local_lock
        self.keys: dict[int, _LocalKey] = {}
        self.rates: dict[str, int] = {}
        self.reservations: dict[str, tuple[int, dict]] = {}  # id -> (deadline, record)
        self.queue: deque[dict] = deque()
        self.writer = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.keys.clear()
            self.rates.clear()
            self.reservations.clear()
            self.queue.clear()
        balances.reset_local()

    def _seen(self, pair: tuple[str, str], now_ms: int) -> float:
        return _sliding(self.rates.get(pair[0], 0), self.rates.get(pair[1], 0), now_ms)

    async def admit(
        self,
        *,
        request_id: str,
        user_id: int,
        key_id: int,
        estimate: int,
        limits: Limits,
        deadline_ms: int,
        record: dict,
    ) -> Admission:
        now_ms = int(time.time() * 1000)
        reset = WINDOW_MS - now_ms % WINDOW_MS
        key_pair, user_pair = _rate_keys("k", key_id, now_ms), _rate_keys("u", user_id, now_ms)
        with self.lock:
            wallet = balances.local_wallets.get(user_id)
            # Credits granted by a command in another process reach this one only
            # through the database: a copy older than LOCAL_WALLET_FRESH is re-read.
            if (
                wallet is None
                or not wallet.known
                or time.monotonic() - wallet.synced_at > LOCAL_WALLET_FRESH
            ):
                return Admission("init_wallet")
            plan_rpm = limits.paid_rpm if wallet.paid else limits.free_rpm
            used = self._seen(user_pair, now_ms)
            if used + 1 > plan_rpm:
                return Admission("rate_plan", plan_rpm, 0, reset)
            limit, remaining = plan_rpm, plan_rpm - used - 1
            if limits.key_rpm:
                used_key = self._seen(key_pair, now_ms)
                if used_key + 1 > limits.key_rpm:
                    return Admission("rate_key", limits.key_rpm, 0, reset)
                if limits.key_rpm - used_key - 1 < remaining:
                    limit, remaining = limits.key_rpm, limits.key_rpm - used_key - 1
            available = wallet.balance - wallet.reserved - wallet.pending
            if available < estimate or available <= 0:
                return Admission("balance", limit, int(remaining), reset, available)
            key = self.keys.setdefault(key_id, _LocalKey())
            if limits.key_spend_limit is not None:
                if key.spent is None:
                    return Admission("init_key")
                used_spend = key.spent + key.reserved
                if (
                    used_spend + estimate > limits.key_spend_limit
                    or used_spend >= limits.key_spend_limit
                ):
                    left = limits.key_spend_limit - used_spend
                    return Admission("key_limit", limit, int(remaining), reset, left)
            for name in (key_pair[0], user_pair[0]):
                self.rates[name] = self.rates.get(name, 0) + 1
            self._forget_old_windows(now_ms)
            wallet.reserved += estimate
            key.reserved += estimate
            self.reservations[request_id] = (deadline_ms, record)
            return Admission("ok", limit, int(remaining), reset, available)

    def _forget_old_windows(self, now_ms: int) -> None:
        if len(self.rates) > 10_000:
            keep = {str(now_ms // WINDOW_MS), str(now_ms // WINDOW_MS - 1)}
            self.rates = {k: v for k, v in self.rates.items() if k.rsplit(":", 1)[1] in keep}

    async def init_wallet(self, *, user_id: int, balance: int, version: int, paid: bool) -> None:
        with self.lock:
            wallet = balances.local_wallets.setdefault(user_id, balances.LocalWallet())
            if version > wallet.version:
                wallet.balance, wallet.version, wallet.paid = balance, version, paid
            wallet.known = True
            wallet.synced_at = time.monotonic()

    async def init_key(self, *, key_id: int, spent: int) -> None:
        with self.lock:
            key = self.keys.setdefault(key_id, _LocalKey())
            if key.spent is None:
                key.spent = spent

    async def heartbeat(self, *, request_id: str, record: dict, deadline_ms: int) -> None:
        with self.lock:
            if request_id in self.reservations:
                self.reservations[request_id] = (deadline_ms, record)

    async def settle(self, *, record: dict) -> bool:
        return self.settle_sync(record=record)

    def settle_sync(self, *, record: dict) -> bool:
        with self.lock:
            held = self.reservations.pop(record["request_id"], None)
            if held is None:
                return False
            reserved, charge = held[1]["reserved"], record["charge"]
            wallet = balances.local_wallets.setdefault(record["user_id"], balances.LocalWallet())
            wallet.reserved -= reserved
            wallet.pending += charge
            key = self.keys.setdefault(record["api_key_id"], _LocalKey())
            key.reserved -= reserved
            if key.spent is not None:
                key.spent += charge
            self.queue.append(record)
            return True

    def stale(self, *, now_ms: int) -> list[dict]:
        with self.lock:
            return [rec for deadline, rec in self.reservations.values() if deadline <= now_ms]

    def queued(self, *, limit: int) -> list[dict]:
        with self.lock:
            return list(self.queue)[:limit]

    def drained(self, *, count: int, states: dict[int, object]) -> None:
        with self.lock:
            for _ in range(count):
                self.queue.popleft()
        for user_id, state in states.items():
            balances.local_sync(
                user_id, balance=state.balance, version=state.version, paid=state.paid,
                applied=state.applied,
            )  # fmt: skip

    def writer_lock(self, *, seconds: int) -> bool:
        return self.writer.acquire(blocking=False)

    def writer_unlock(self) -> None:
        self.writer.release()

    def snapshot(self, *, user_id: int) -> dict[str, int]:
        with self.lock:
            wallet = balances.local_wallets.get(user_id)
            if wallet is None:
                return {}
            return {"bal": wallet.balance, "res": wallet.reserved, "pend": wallet.pending}


_local_store = LocalSpendStore()
_redis_store = RedisSpendStore()


def store() -> RedisSpendStore | LocalSpendStore:
    return _redis_store if nxredis.enabled() else _local_store
