"""Credits held by a server process that dies are released (or charged for what it
delivered) within seconds: each process keeps a liveness key alive, and the stale
sweep settles the reservations of a process whose key lapsed."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from django.db.models import Sum

from billing.models import LedgerEntry
from billing.services import wallet_for
from core import redis as nxredis
from gateway import spend, writer
from gateway.models import UsageRecord
from gateway.records import Record
from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.servers import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CREDITS = 100_000_000
RELEASE_WITHIN = 15.0  # seconds: the promise in docs/operations.md


@pytest.fixture
def server(transactional_db: None, openai_catalogue: AiModel) -> Iterator[ServerProcess]:
    process = ServerProcess(NEXAI_USAGE_FLUSH_INTERVAL="0")
    yield process
    process.stop()


def _held(user_id: int) -> dict[str, Record]:
    """The user's reservations in Redis, by request id."""
    part = spend.partition_of(user_id)
    held = nxredis.sync_client().hgetall(spend.reservations_key(part))
    records = {k.decode(): Record.loads(v.split(b" ", 1)[1]) for k, v in held.items()}
    return {k: r for k, r in records.items() if r.user_id == user_id}


def _await(predicate, *, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_server_s_held_credits_are_released_or_charged_within_15_seconds(
    server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="one two three four five six", prompt_tokens=10)
    key = make_key(make_user(credits=CREDITS))
    user_id = key.key.user_id
    headers = {"authorization": f"Bearer {key.secret}"}
    url = server.url + "/v1/chat/completions"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    # A non-streaming call the upstream never answers: nothing delivered.
    fake_openai.hang_next()
    calls = [threading.Thread(target=_call, args=(url, body, headers), daemon=True)]
    calls[0].start()
    fake_openai.wait_hanging(1)
    # A stream that has delivered its first words when the server dies.
    fake_openai.pause_after_chunks = 2
    calls.append(
        threading.Thread(target=_call, args=(url, {**body, "stream": True}, headers), daemon=True)
    )
    calls[1].start()
    fake_openai.wait_paused(1)
    _await(
        lambda: any(r.charge > 0 for r in _held(user_id).values()),
        within=10,
        what="the stream's first progress report",
    )
    held = _held(user_id)
    assert len(held) == 2
    delivered = max(r.charge for r in held.values())

    server.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    # What the writer does every two seconds, until the reservations are settled.
    def settled() -> bool:
        writer.settle_stale()
        writer.flush()
        return UsageRecord.objects.filter(user_id=user_id).count() == 2

    _await(settled, within=RELEASE_WITHIN, what="the dead server's reservations to settle")
    assert time.monotonic() - killed_at <= RELEASE_WITHIN
    fake_openai.pause_after_chunks = None
    fake_openai.release()

    records = {r.stream: r for r in UsageRecord.objects.filter(user_id=user_id)}
    assert (records[True].charge, records[True].error_code) == (delivered, "interrupted")
    assert (records[False].charge, records[False].error_code) == (0, "interrupted")
    snapshot = spend.store().snapshot(user_id=user_id)
    assert snapshot["res"] == 0 and snapshot.get("pend", 0) == 0
    wallet = wallet_for(user=key.key.user)
    assert wallet.balance == CREDITS - delivered
    assert (
        wallet.balance == LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    )


def _call(url: str, body: dict, headers: dict[str, str]) -> None:
    try:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
            response.read()
    except httpx.HTTPError:
        pass  # the server died under it: that is the test
