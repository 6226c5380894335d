"""No charge is lost to Redis. Each test starts its own redis-server with the
production configuration (docs/operations.md: AOF, fsync every second, no eviction),
breaks it while charges are queued and streams are in flight, and checks that after
the reconciler every request that delivered output is charged exactly once."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from django.db.models import Sum

from billing.models import LedgerEntry
from billing.services import wallet_for
from core import redis as nxredis
from gateway import journal, spend, writer
from gateway.models import UsageRecord
from providers.models import AiModel
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, customer_for
from tests.servers import AsgiServer

CREDITS = 100_000_000


class RedisServer:
    """redis-server on a free loopback port, configured as docs/operations.md says."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
                "--logfile", str(self.directory / "redis.log"),
            ]
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:  # nothing announces readiness from another process: poll it
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def stop(self, *, crash: bool = False, lose_writes: bool = False) -> None:
        """SIGTERM (AOF flushed), or SIGKILL; `lose_writes` also drops the AOF, as a
        crash between fsyncs would drop the last second."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        self.process.wait(20)
        if lose_writes:
            shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)


def _use_redis(url: str | None) -> None:
    nxredis._sync = None
    nxredis._async.clear()
    spend._process.update(pid=0, token="")  # a new liveness key in the new Redis


@pytest.fixture
def own_redis(tmp_path: Path, settings) -> Iterator[RedisServer]:  # type: ignore[no-untyped-def]
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    settings.REDIS_URL = server.url
    settings.NEXAI_CHARGE_JOURNAL_DIR = str(tmp_path / "journal")
    _use_redis(server.url)
    yield server
    journal.close()
    if server.process and server.process.poll() is None:
        server.stop()
    _use_redis(None)


@pytest.fixture
def served(own_redis: RedisServer, openai_catalogue: AiModel) -> Iterator[AsgiServer]:
    server = AsgiServer().start()  # after the switch, so it talks to our Redis
    yield server
    server.stop()


def _complete(customer: Customer) -> str:
    response = customer.client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    return response.headers["x-request-id"]


class Streams:
    """Streaming requests held mid-stream by the fake upstream."""

    def __init__(self, gateway: AsgiServer, customer: Customer, fake: FakeOpenAI, n: int) -> None:
        self.ids: list[str] = []
        self.bodies: list[str] = []
        fake.pause_after_chunks = 1
        self.threads = [
            threading.Thread(target=self._stream, args=(gateway, customer)) for _ in range(n)
        ]
        for thread in self.threads:
            thread.start()
        fake.wait_paused(n)

    def _stream(self, gateway: AsgiServer, customer: Customer) -> None:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        headers = {"authorization": f"Bearer {customer.key.secret}"}
        url = gateway.base_url + "/v1/chat/completions"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
            self.ids.append(response.headers["x-request-id"])
            self.bodies.append(response.read().decode())

    def finish(self, fake: FakeOpenAI) -> None:
        fake.pause_after_chunks = None
        fake.release()
        for thread in self.threads:
            thread.join(30)


def _refused_with_json(gateway: AsgiServer, customer: Customer) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=30,
    )
    # Refused, never admitted unaccounted: a 503 in the caller's JSON.
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["x-request-id"].startswith("req_")


def _reconcile() -> None:
    """What run_usage_writer and run_periodic_jobs do, at once."""
    journal.close()
    writer.settle_stale()
    journal.reconcile(write=writer.write_direct, older_than=0)
    writer.flush()


def _assert_each_charged_once(customer: Customer, request_ids: list[str]) -> None:
    records = UsageRecord.objects.filter(user=customer.user)
    assert sorted(records.values_list("request_id", flat=True)) == sorted(request_ids)
    assert all(r.charge > 0 and r.status == 200 for r in records)
    wallet = wallet_for(user=customer.user)
    charged = sum(r.charge for r in records)
    assert wallet.balance == CREDITS - charged
    assert (
        wallet.balance == LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    )


def _await(predicate: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_redis_crash_that_loses_its_writes_loses_no_charge(
    own_redis: RedisServer, served: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="alpha beta gamma delta", prompt_tokens=10, completion_tokens=20)
    customer = customer_for(served, credits=CREDITS)
    queued = [_complete(customer) for _ in range(8)]  # settled, waiting for the writer
    streams = Streams(served, customer, fake_openai, 3)
    own_redis.stop(crash=True, lose_writes=True)  # queue, reservations, wallet copy: gone
    _refused_with_json(served, customer)
    own_redis.start()
    streams.finish(fake_openai)  # their reservations are gone; they still charge
    assert all(body.endswith("data: [DONE]\n\n") for body in streams.bodies)
    _reconcile()
    _assert_each_charged_once(customer, queued + streams.ids)
    assert spend.store().snapshot(user_id=customer.user.pk).get("pend", 0) == 0


@pytest.mark.django_db(transaction=True)
def test_settlements_during_a_redis_outage_are_written_to_the_database(
    own_redis: RedisServer, served: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    """Redis stops (its AOF flushed) and comes back; a writer runs throughout."""
    fake_openai.set_reply(text="alpha beta gamma delta", prompt_tokens=10, completion_tokens=20)
    customer = customer_for(served, credits=CREDITS)
    stop = threading.Event()
    usage_writer = threading.Thread(
        target=writer.Writer(lease_ms=1_000).run, args=(stop,), kwargs={"interval": 0.05}
    )
    try:
        queued = [_complete(customer) for _ in range(5)]
        streams = Streams(served, customer, fake_openai, 3)
        own_redis.stop()
        _refused_with_json(served, customer)
        streams.finish(fake_openai)  # Redis is down: settled straight to the database
        assert UsageRecord.objects.filter(request_id__in=streams.ids).count() == 3
        usage_writer.start()  # it starts, and keeps retrying, while Redis is down
        own_redis.start()
        after = [_complete(customer) for _ in range(2)]
        everything = queued + streams.ids + after
        _await(
            lambda: UsageRecord.objects.filter(user=customer.user).count() == len(everything),
            within=30,
            what="the writer to drain the queue after the outage",
        )
        assert usage_writer.is_alive()
        # The streams' reservations, restored from the AOF, are released without a charge.
        _await(
            lambda: spend.store().snapshot(user_id=customer.user.pk).get("res") == 0,
            within=10,
            what="the streams' reservations to be released",
        )
    finally:
        stop.set()
        usage_writer.join(10) if usage_writer.is_alive() else None
    _reconcile()
    _assert_each_charged_once(customer, everything)
