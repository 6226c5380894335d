"""Readiness: can this process serve /v1 requests and account for them right now?

Four checks, run concurrently, each bounded by CHECK_TIMEOUT:
- database: a `SELECT 1` (API keys, the catalogue and the ledger live there);
- redis: a PING, when REDIS_URL is set (admission, reservations and the charge queue);
- catalogue: this process has the catalogue with at least one enabled model;
- writer: the oldest settled charge still queued has waited at most
  NEXAI_READY_MAX_WRITER_LAG seconds for the usage writer.

The writer check makes every host unready together when the writer falls behind:
that is deliberate back-pressure, since queued charges are money held only in Redis
(docs/operations.md). Setting the bound to 0 turns it off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from core.db import in_thread
from gateway.backlog import backlog
from providers.catalogue import get_catalogue

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds; a load balancer's probe usually gives up after a few
OK, FAIL, SKIPPED = "ok", "fail", "skipped"

Report = dict[str, Any]

# One client per URL with short timeouts, apart from the hot path's clients (whose
# timeouts suit requests, not probes), kept so that a probe does not reconnect.
_clients: dict[str, redis.Redis] = {}


def check_database() -> Report:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"state": OK}


def check_redis() -> Report:
    url = settings.REDIS_URL
    if not url:
        return {"state": SKIPPED, "reason": "REDIS_URL is unset"}
    client = _clients.get(url)
    if client is None:
        client = _clients.setdefault(
            url, redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        )
    client.ping()
    return {"state": OK}


def check_catalogue() -> Report:
    models = len(get_catalogue().models)
    return {"state": OK if models else FAIL, "models": models}


def check_writer() -> Report:
    held = backlog()
    lag = held.lag()
    bound = settings.NEXAI_READY_MAX_WRITER_LAG
    return {
        "state": OK if not bound or lag <= bound else FAIL,
        "queued": held.queued,
        "lag_seconds": round(lag, 3),
        "max_lag_seconds": bound,
    }


CHECKS: dict[str, Callable[[], Report]] = {
    "database": check_database,
    "redis": check_redis,
    "catalogue": check_catalogue,
    "writer": check_writer,
}


async def _run(name: str, check: Callable[[], Report]) -> Report:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await in_thread(check)()
    except TimeoutError:
        log.warning("readiness: %s did not answer within %ss", name, CHECK_TIMEOUT)
        return {"state": FAIL, "error": "timeout"}
    except Exception as exc:
        # The probe is public: it names the kind of failure, the log says the rest.
        log.warning("readiness: %s failed: %s", name, exc)
        return {"state": FAIL, "error": type(exc).__name__}


async def readiness() -> tuple[bool, dict[str, Report]]:
    """(ready, each check's report)."""
    reports = await asyncio.gather(*(_run(name, check) for name, check in CHECKS.items()))
    checks = dict(zip(CHECKS, reports, strict=True))
    return all(r["state"] != FAIL for r in checks.values()), checks
