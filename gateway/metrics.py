"""Prometheus metrics: what the gateway served, and what it holds right now.

The relay calls `request_done(...)` once per request it answers; that only bumps
counters and histograms in memory (or, with several worker processes, in the
memory-mapped files of prometheus-client's multiprocess mode), with no I/O and no
lock beyond prometheus-client's own. What the spend store holds (reservations, the
usage writer's queue and lag) and the upstream breakers' states are read when
Prometheus scrapes `/metrics`, not kept up to date per request.

Several processes (`uvicorn --workers N`): set PROMETHEUS_MULTIPROC_DIR to an empty
directory before the server starts (the Procfile does); every worker writes its
counters there and whichever worker answers a scrape adds them all up. Without it,
a scrape sees only the worker that answered it.

Model and provider labels come from the catalogue (a bounded set); a request refused
before its model was known is counted with model="" so that a client cannot create
series by sending made-up model names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.backlog import backlog
from providers import catalogue, health

log = logging.getLogger(__name__)

LABELS = ("endpoint", "model", "provider")
# Whole LLM calls take from tens of milliseconds (embeddings) to minutes (long
# generations); the first token of a stream comes within seconds.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
BREAKER_VALUES = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}

# A `_created` timestamp per series doubles what a scrape carries and says nothing here.
disable_created_metrics()

# The metrics this process counts. With PROMETHEUS_MULTIPROC_DIR set they are also
# written to that directory, and a scrape reads the directory instead.
registry = CollectorRegistry()
REQUESTS = Counter(
    "nexai_requests",
    "Requests answered, by HTTP status.",
    (*LABELS, "status"),
    registry=registry,
)
ERRORS = Counter(
    "nexai_request_errors",
    "Requests answered with an error (status >= 400), by error code.",
    (*LABELS, "code"),
    registry=registry,
)
LATENCY = Histogram(
    "nexai_request_duration_seconds",
    "Time from the request's arrival to its settlement (a stream's end).",
    LABELS,
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
TTFT = Histogram(
    "nexai_time_to_first_token_seconds",
    "Streams only: time from the request's arrival to its first bytes of answer.",
    LABELS,
    buckets=TTFT_BUCKETS,
    registry=registry,
)
INPUT_TOKENS = Counter("nexai_input_tokens", "Input tokens charged for.", LABELS, registry=registry)
OUTPUT_TOKENS = Counter(
    "nexai_output_tokens", "Output tokens charged for.", LABELS, registry=registry
)
CREDITS = Counter(
    "nexai_credits_charged",
    "Credits charged (1 credit = US$0.000001); for monitoring, the ledger is the truth.",
    LABELS,
    registry=registry,
)


@dataclass(slots=True)
class _Series:
    latency: Histogram
    ttft: Histogram
    input_tokens: Counter
    output_tokens: Counter
    credits: Counter


# Children per label set, so the hot path does one dict lookup instead of
# prometheus-client's label validation and locking on every request.
_series: dict[tuple[str, str, str], _Series] = {}
_requests: dict[tuple[str, str, str, int], Counter] = {}
_failed_once = False


def _series_for(labels: tuple[str, str, str]) -> _Series:
    series = _series.get(labels)
    if series is None:
        series = _series[labels] = _Series(
            LATENCY.labels(*labels),
            TTFT.labels(*labels),
            INPUT_TOKENS.labels(*labels),
            OUTPUT_TOKENS.labels(*labels),
            CREDITS.labels(*labels),
        )
    return series


def request_done(
    *,
    endpoint: str,
    status: int,
    model: str = "",
    provider: str = "",
    error_code: str = "",
    latency_ms: int = 0,
    ttft_ms: int | None = None,
    stream: bool = False,
    input_tokens: int = 0,
    output_tokens: int = 0,
    charge: int = 0,
) -> None:
    """Count one answered request. Never raises: metrics must not fail a request."""
    global _failed_once
    try:
        labels = (endpoint, model, provider)
        counter = _requests.get((*labels, status))
        if counter is None:
            counter = _requests[(*labels, status)] = REQUESTS.labels(*labels, str(status))
        counter.inc()
        if status >= 400:
            ERRORS.labels(*labels, error_code or str(status)).inc()
        series = _series_for(labels)
        series.latency.observe(latency_ms / 1000)
        if stream and ttft_ms is not None:
            series.ttft.observe(ttft_ms / 1000)
        if input_tokens:
            series.input_tokens.inc(input_tokens)
        if output_tokens:
            series.output_tokens.inc(output_tokens)
        if charge:
            series.credits.inc(charge)
    except Exception:
        if not _failed_once:
            _failed_once = True
            log.exception("counting a request in the metrics failed (logged once)")


# -- read at scrape time -------------------------------------------------------------

BreakerState = tuple[str, str, int, str]  # provider, upstream model, provider key id, state


def breaker_states() -> Iterable[BreakerState]:
    """Every upstream breaker of the catalogue this process serves: (provider,
    upstream model or "" for the key's own breaker, provider key id, "closed" |
    "half-open" | "open"), read in one round trip (providers.health)."""
    snapshot = catalogue.current()
    if snapshot is None:
        return ()
    subjects: dict[str, tuple[str, str, int]] = {}
    for model in snapshot.models.values():
        for route in model.routes:
            name = route.provider.name
            for key in route.provider.keys:
                subjects[health.key_subject(key.id)] = (name, "", key.id)
                subjects[health.pair_subject(key.id, route.upstream_model)] = (
                    name, route.upstream_model, key.id,
                )  # fmt: skip
    states = health.read(list(subjects))
    return [(*subjects[subject], record.state()) for subject, record in states.items()]


class LiveCollector(Collector):
    """Gauges read from the shared stores when Prometheus scrapes. No describe(): a
    registry then never collects at registration, so registering does no I/O."""

    def __init__(self, breakers: Callable[[], Iterable[BreakerState]] = breaker_states) -> None:
        self.breakers = breakers

    def collect(self) -> Iterator[Metric]:
        yield from self._spend()
        yield from self._breakers()

    def _spend(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "nexai_spend_store_up", "1 when the spend store (Redis) answered this scrape."
        )
        try:
            held = backlog()
        except Exception as exc:
            log.warning("metrics: the spend store did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "nexai_reservations_held",
            "Requests admitted and not settled yet (each holds a reservation).",
            value=held.reservations,
        )
        # The count the concurrency caps (per account, per key) are held to, in total:
        # a request is in flight exactly while it holds a reservation.
        yield GaugeMetricFamily(
            "nexai_requests_in_flight",
            "Requests in flight now (admitted, not settled: a stream until it ends), all "
            "accounts together; the concurrency caps limit each account's and key's share.",
            value=held.reservations,
        )
        yield GaugeMetricFamily(
            "nexai_usage_queue_depth",
            "Settled charges and usage records waiting for the usage writer.",
            value=held.queued,
        )
        yield GaugeMetricFamily(
            "nexai_usage_writer_lag_seconds",
            "How long the oldest queued charge has waited for the usage writer.",
            value=held.lag(),
        )

    def _breakers(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "nexai_upstream_breaker_state",
            "Circuit breaker per upstream key (upstream_model='') and per key and "
            "upstream model: 0 closed, 1 half-open, 2 open.",
            labels=("provider", "upstream_model", "key_id"),
        )
        try:
            for provider, upstream_model, key_id, state in self.breakers():
                family.add_metric([provider, upstream_model, str(key_id)], BREAKER_VALUES[state])
        except Exception as exc:
            log.warning("metrics: breaker states unavailable (%s)", type(exc).__name__)
            return
        yield family


registry.register(LiveCollector())


def multiproc_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> tuple[bytes, str]:
    """The text Prometheus scrapes, and its content type."""
    path = multiproc_dir()
    if not path:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    scrape = CollectorRegistry()
    multiprocess.MultiProcessCollector(scrape, path)
    scrape.register(LiveCollector())
    return generate_latest(scrape), CONTENT_TYPE_LATEST
