"""The circuit breaker around upstream calls: what a failure counts against, for how
long, and which (route, key) candidates a request may try.

- A 5xx, a timeout, a connection error or an answer that cannot be read counts against
  the (upstream key, upstream model) pair: the same key keeps serving its other models.
- A 401/403 counts against the key, on every model.
- A 429 counts against the pair for as long as its Retry-After says (bounded).
- A pair or key opens after FAILURES_TO_OPEN consecutive failures, for BASE_OPEN
  seconds doubling with each failed trial up to MAX_OPEN; then it is half-open: one
  request at a time may try it (a trial), and its success closes it.
- When every candidate of a request is open, the least recently failed one gets a
  trial anyway: the caller gets an answer whenever an upstream can give one.
- A key whose upstream has refused it for AUTH_DISABLE_AFTER is disabled, and staff
  are told by email and on the admin's health page.

State lives in providers.health (Redis when set, shared by every process).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from core.db import in_thread
from providers import health as store
from providers import http
from providers.catalogue import ModelInfo, RouteInfo, UpstreamKey
from providers.health import CLOSED, HALF_OPEN, OPEN, Health
from providers.models import ProviderKey
from providers.services import catalogue_changed

log = logging.getLogger(__name__)

FAILURES_TO_OPEN = 1  # a timeout costs the caller its whole wait: do not ask twice
MAX_OPEN = 300.0  # seconds
AUTH_OPEN = 300.0  # seconds a refused key waits before its next trial
RATE_DEFAULT, RATE_MIN, RATE_MAX = 30.0, 1.0, 300.0  # seconds, a 429 without Retry-After
TRIAL_GRACE = 5.0  # seconds a trial's claim outlives its attempt's timeout
DB_NOTE_EVERY = 5.0  # seconds between two writes of one key's last error to the database


def base_open() -> float:
    return float(getattr(settings, "NEXAI_BREAKER_OPEN_SECONDS", 30.0))


def auth_disable_after() -> float:
    return float(getattr(settings, "NEXAI_KEY_AUTH_DISABLE_SECONDS", 3600.0))


@dataclass
class Candidate:
    """One (route, key) a request may try, with what the store says of it."""

    route: RouteInfo
    route_index: int
    key: UpstreamKey
    pair: str
    key_subject: str
    pair_health: Health
    key_health: Health

    def state(self, at_ms: int) -> str:
        states = {self.key_health.state(at_ms), self.pair_health.state(at_ms)}
        return OPEN if OPEN in states else HALF_OPEN if HALF_OPEN in states else CLOSED

    def holder(self, at_ms: int) -> str:
        """The subject whose trial this candidate needs: the key's when it is not closed."""
        return self.key_subject if self.key_health.state(at_ms) != CLOSED else self.pair

    @property
    def last_failed(self) -> int:
        return max(self.key_health.failed_at, self.pair_health.failed_at)


def weighted(keys: tuple[UpstreamKey, ...]) -> list[UpstreamKey]:
    """Keys in a random order drawn in proportion to their weights (Efraimidis-Spirakis:
    sorting by u ** (1 / weight) draws without replacement)."""
    return sorted(keys, key=lambda k: random.random() ** (1.0 / max(k.weight, 1)), reverse=True)


async def candidates(model: ModelInfo) -> list[Candidate]:
    """Every (route, key) of the model, routes in order and keys by weight, with their
    health: from this process's copy, or one round trip to the store."""
    found = [
        (index, route, key)
        for index, route in enumerate(model.routes)
        for key in weighted(route.provider.keys)
    ]
    subjects: list[str] = []
    for _index, route, key in found:
        subjects += [store.pair_subject(key.id, route.upstream_model), store.key_subject(key.id)]
    records = await store.snapshot(list(dict.fromkeys(subjects)))
    result = []
    for index, route, key in found:
        pair, key_subject = (
            store.pair_subject(key.id, route.upstream_model),
            store.key_subject(key.id),
        )
        result.append(
            Candidate(route, index, key, pair, key_subject, records[pair], records[key_subject])
        )
    return result


async def claim(candidate: Candidate, *, timeout: float, force: bool = False) -> bool:
    subject = candidate.holder(store.now_ms())
    return await store.claim_trial(subject, lease_s=timeout + TRIAL_GRACE, force=force)


async def succeeded(candidate: Candidate, *, latency_ms: int) -> None:
    """The upstream answered: close what was open (costs nothing when all was well)."""
    store.note(candidate.pair, ok=True, latency_ms=latency_ms)
    if not candidate.pair_health.clean:
        await store.record_success(candidate.pair, candidate.pair_health)
    if not candidate.key_health.clean:
        await store.record_success(candidate.key_subject, candidate.key_health)


async def failed(
    candidate: Candidate,
    *,
    error: str,
    latency_ms: int = 0,
    status: int | None = None,
    retry_after: float | None = None,
    key_refused: bool = False,
) -> None:
    """Count a failure against what it says is broken. `error` has no secrets.
    `key_refused`: the upstream refused the key itself (its kind's adapter said so;
    every 401 and 403 does)."""
    store.note(candidate.pair, ok=False, latency_ms=latency_ms)
    key_refused = key_refused or status in (401, 403)
    if key_refused:
        record = await store.record_failure(
            candidate.key_subject, error=error, threshold=1, base_s=AUTH_OPEN,
            max_s=MAX_OPEN * 12, auth=True,
        )  # fmt: skip
        await _disable_if_refused_too_long(candidate.key, record)
    elif status == 429:
        await store.record_failure(
            candidate.pair, error=error, threshold=1, base_s=RATE_DEFAULT, max_s=RATE_MAX,
            fixed_s=RATE_DEFAULT if retry_after is None else retry_after,
        )  # fmt: skip
    else:
        await store.record_failure(
            candidate.pair, error=error, threshold=FAILURES_TO_OPEN, base_s=base_open(),
            max_s=MAX_OPEN,
        )  # fmt: skip
    _note_in_database(candidate.key.id, _summary(status, error, key_refused=key_refused))


def _summary(status: int | None, error: str, *, key_refused: bool) -> str:
    """What the key's row says (its admin list): the kind of failure, not its detail."""
    if key_refused:
        return f"upstream refused the key ({status})"
    if status is not None:
        return f"upstream answered {status}"
    return error.split(":", 1)[0]


def retry_after(response: http.UpstreamResponse) -> float:
    """How long a 429 asks us to wait, bounded: Retry-After-Ms, Retry-After in seconds or
    as an HTTP date, else RATE_DEFAULT."""
    headers = response.headers
    seconds: float | None = None
    try:
        if "retry-after-ms" in headers:
            seconds = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"]
            try:
                seconds = float(value)
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                seconds = (when - timezone.now()).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        seconds = None
    if seconds is None:
        return RATE_DEFAULT
    return min(max(seconds, RATE_MIN), RATE_MAX)


# -- what staff see in the database ---------------------------------------------------

_noted: dict[int, float] = {}
_background: set[asyncio.Future[None]] = set()  # held so they are not collected early


def reset() -> None:
    """Forget every breaker state and note this process holds (tests)."""
    store.reset()
    _noted.clear()


def _note_in_database(key_id: int, error: str) -> None:
    """The key's last error on its row, in the background and at most every few
    seconds per key: a broken model must not cost a database write per request."""
    now = time.monotonic()
    if now - _noted.get(key_id, -DB_NOTE_EVERY) < DB_NOTE_EVERY:
        return
    _noted[key_id] = now
    task = asyncio.ensure_future(_write_last_error(key_id, error[:300]))
    _background.add(task)
    task.add_done_callback(_background.discard)


@in_thread
def _write_last_error(key_id: int, error: str) -> None:
    ProviderKey.objects.filter(pk=key_id).update(last_error=error, last_error_at=timezone.now())


async def _disable_if_refused_too_long(key: UpstreamKey, record: Health) -> None:
    if not record.auth_since:
        return
    refused_for = (store.now_ms() - record.auth_since) / 1000
    if refused_for >= auth_disable_after():
        await in_thread(provider_key_disable_for_auth)(key_id=key.id, refused_for=refused_for)


def provider_key_disable_for_auth(*, key_id: int, refused_for: float) -> bool:
    """Disable a key its upstream keeps refusing, and tell staff (email + the admin's
    health page). True when this call disabled it (once, whatever the processes)."""
    since = timezone.now() - timedelta(seconds=refused_for)
    reason = (
        f"Disabled automatically: the upstream has refused this key (401/403) since "
        f"{since:%Y-%m-%d %H:%M} UTC."
    )
    changed = ProviderKey.objects.filter(pk=key_id, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=timezone.now()
    )
    if not changed:
        return False
    catalogue_changed()
    key = ProviderKey.objects.select_related("provider").get(pk=key_id)
    log.warning("upstream key %s disabled: refused for %.0fs", key_id, refused_for)
    staff = (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if staff:
        send_mail(
            subject=f"[nexai] Upstream key {key} disabled",
            message=f"{reason}\n\nReplace the key's secret in the admin (Providers), "
            "then enable it again. Its secret is not shown here.",
            from_email=None,
            recipient_list=list(staff),
            fail_silently=True,
        )
    return True
