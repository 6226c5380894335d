"""/metrics: Prometheus counters of the requests served, gauges of what the spend
store holds, breaker states; only for the bearer of NEXAI_METRICS_TOKEN."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics, writer
from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, settled
from tests.ops.conftest import METRICS_TOKEN, free_port, get, uvicorn
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]
CHAT = ("chat.completions", "gpt-4o", "openai")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    response = get(base_url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def chat(**extra: str) -> dict[str, str]:
    return dict(zip(("endpoint", "model", "provider"), CHAT, strict=True)) | extra


@pytest.fixture(autouse=True)
def _token(settings: object) -> None:
    settings.NEXAI_METRICS_TOKEN = METRICS_TOKEN  # type: ignore[attr-defined]


def test_metrics_are_hidden_without_a_configured_token(
    gateway: AsgiServer, settings: object
) -> None:
    settings.NEXAI_METRICS_TOKEN = ""  # type: ignore[attr-defined]
    response = get(gateway.base_url + "/metrics", headers={"authorization": "Bearer x"})
    assert response.status_code == 404


def test_metrics_need_the_token(gateway: AsgiServer) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": METRICS_TOKEN}):
        response = get(gateway.base_url + "/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "nexai_requests" not in response.text


def test_metrics_count_the_requests_made(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    before = scrape(gateway.base_url)
    fake_openai.set_reply(text="one two three", prompt_tokens=12, completion_tokens=3)
    for _ in range(3):
        customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    for _ in range(2):
        chunks = customer.client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    fake_openai.fail_next(500)
    with pytest.raises(openai.APIStatusError) as failed:
        customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert failed.value.status_code == 502
    after = scrape(gateway.base_url)
    records = settled(customer)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert len(records) == 6
    assert delta("nexai_requests_total", **chat(status="200")) == 5
    # Every route failed before any answer: no one provider is to blame.
    failed_labels = chat(provider="")
    assert delta("nexai_requests_total", **failed_labels, status="502") == 1
    assert delta("nexai_request_errors_total", **failed_labels, code="upstream_error") == 1
    assert delta("nexai_request_duration_seconds_count", **chat()) == 5
    assert delta("nexai_request_duration_seconds_count", **failed_labels) == 1
    assert delta("nexai_time_to_first_token_seconds_count", **chat()) == 2
    assert delta("nexai_input_tokens_total", **chat()) == sum(r.input_tokens for r in records)
    assert delta("nexai_input_tokens_total", **chat()) == 5 * 12
    assert delta("nexai_output_tokens_total", **chat()) == 5 * 3
    assert delta("nexai_credits_charged_total", **chat()) == sum(r.charge for r in records) > 0


def test_the_writer_queue_and_reservations_are_read_at_scrape_time(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    queued = scrape(gateway.base_url)
    assert value(queued, "nexai_spend_store_up") == 1
    assert value(queued, "nexai_usage_queue_depth") == 2
    assert value(queued, "nexai_reservations_held") == 0
    assert value(queued, "nexai_requests_in_flight") == 0
    assert value(queued, "nexai_usage_writer_lag_seconds") >= 0

    fake_openai.hang_next()
    held = threading.Thread(
        target=lambda: customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    )
    held.start()
    try:
        fake_openai.wait_hanging()
        in_flight = scrape(gateway.base_url)
        assert value(in_flight, "nexai_reservations_held") == 1
        # The count the concurrency caps hold each account to, in total.
        assert value(in_flight, "nexai_requests_in_flight") == 1
    finally:
        fake_openai.release()
        held.join(10)
    writer.flush()
    written = scrape(gateway.base_url)
    assert value(written, "nexai_usage_queue_depth") == 0
    assert value(written, "nexai_reservations_held") == 0
    assert value(written, "nexai_requests_in_flight") == 0
    assert value(written, "nexai_usage_writer_lag_seconds") == 0


def test_breaker_states_are_exported() -> None:
    states = [("openai", "", 7, "closed"), ("openai", "gpt-4o", 7, "open"),
              ("anthropic", "claude", 9, "half-open")]  # fmt: skip
    collector = metrics.LiveCollector(breakers=lambda: states)
    families = {f.name: f for f in collector.collect()}
    samples = {
        (s.labels["provider"], s.labels["upstream_model"], s.labels["key_id"]): s.value
        for s in families["nexai_upstream_breaker_state"].samples
    }
    assert samples == {
        ("openai", "", "7"): 0,
        ("openai", "gpt-4o", "7"): 2,
        ("anthropic", "claude", "9"): 1,
    }


def test_breaker_states_that_cannot_be_read_leave_the_rest_of_the_scrape() -> None:
    def unreadable() -> list[metrics.BreakerState]:
        raise ConnectionError("redis is down")

    families = {f.name for f in metrics.LiveCollector(breakers=unreadable).collect()}
    assert "nexai_upstream_breaker_state" not in families
    assert "nexai_spend_store_up" in families


def test_a_failing_metric_never_fails_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*labels: str) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(metrics.LATENCY, "labels", broken)
    metrics.request_done(endpoint="x.never", model="m", provider="p", status=200)


# -- several processes -------------------------------------------------------------


@pytest.fixture
def two_workers(transactional_db: None, openai_catalogue: AiModel, tmp_path: Path) -> Iterator[str]:
    """`uvicorn --workers 2` on the test database and Redis, sharing one
    PROMETHEUS_MULTIPROC_DIR, as the Procfile runs it."""
    db = settings.DATABASES["default"]
    port = free_port()
    server = uvicorn(
        port,
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
            "NEXAI_USAGE_FLUSH_INTERVAL": "0",
            "NEXAI_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
        app="nexai.asgi:application",
        workers=2,
    )
    try:
        for _ in range(2):
            server.wait_for("Started server process")  # once per worker, app loaded
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_two_worker_processes_are_counted_together(two_workers: str, tmp_path: Path) -> None:
    key = make_key(make_user(credits=100_000_000))
    body = {"model": "gpt-4o", "messages": HELLO}
    statuses: list[int] = []
    pids: set[str] = set()
    with (
        httpx.Client(
            base_url=two_workers, timeout=30, headers={"authorization": f"Bearer {key.secret}"}
        ) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        # Each worker writes files of its own: go on until both have served requests.
        while len(pids) < 2 and len(statuses) < 400:
            batch = pool.map(lambda _: client.post("/v1/chat/completions", json=body), range(8))
            statuses += [response.status_code for response in batch]
            pids = {path.name.split("_")[1] for path in tmp_path.glob("counter_*.db")}
    assert len(pids) == 2
    assert set(statuses) == {200}
    # Whichever worker answers a scrape, it reports the requests of both.
    for _ in range(4):
        samples = scrape(two_workers)
        assert value(samples, "nexai_requests_total", **chat(status="200")) == len(statuses)
        assert value(samples, "nexai_request_duration_seconds_count", **chat()) == len(statuses)
