"""The gateway's fast copy of each wallet: balance, plan and version as committed in
the database, beside the amounts the gateway holds (reserved by requests in flight,
pending: charged but not yet written to the ledger).

The copy lives in Redis when REDIS_URL is set (shared by every process), in this
process otherwise. It is refreshed after every committed ledger change; the version
(`Wallet.version`, bumped by each entry) makes a late, older refresh harmless.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from nexai import redis as nxredis

PREFIX = "nx:"


def wallet_key(user_id: int) -> str:
    return f"{PREFIX}w:{{{user_id}}}"


@dataclass
class LocalWallet:
    balance: int = 0
    version: int = -1
    paid: bool = False
    reserved: int = 0
    pending: int = 0
    known: bool = False  # has a database snapshot arrived yet
    synced_at: float = 0.0  # monotonic time of the last snapshot


# In-process copies (embedded default), guarded by one lock: each operation is a few
# dict updates, so contention is negligible next to the request itself.
local_lock = threading.Lock()
local_wallets: dict[int, LocalWallet] = {}

# Set bal/ver/paid only if the snapshot is newer than the one held; always release
# the pending amount the snapshot now includes.
SYNC_LUA = """
local held = tonumber(redis.call('HGET', KEYS[1], 'ver') or '-1')
if tonumber(ARGV[2]) > held then
  redis.call('HSET', KEYS[1], 'bal', ARGV[1], 'ver', ARGV[2], 'paid', ARGV[3])
end
if ARGV[4] ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'pend', 0 - tonumber(ARGV[4]))
end
return 1
"""


def local_sync(user_id: int, *, balance: int, version: int, paid: bool, applied: int = 0) -> None:
    with local_lock:
        wallet = local_wallets.setdefault(user_id, LocalWallet())
        if version > wallet.version:
            wallet.balance, wallet.version, wallet.paid, wallet.known = balance, version, paid, True
            wallet.synced_at = time.monotonic()
        wallet.pending -= applied


def publish(*, user_id: int, balance: int, version: int, paid: bool, applied: int = 0) -> None:
    """Refresh the copy after a committed change; `applied` is the pending amount the
    change wrote to the ledger (usage settled by the gateway), 0 for anything else."""
    if nxredis.enabled():
        nxredis.seval(SYNC_LUA, 1, wallet_key(user_id), balance, version, int(paid), applied)
    else:
        local_sync(user_id, balance=balance, version=version, paid=paid, applied=applied)


def reset_local() -> None:
    with local_lock:
        local_wallets.clear()
