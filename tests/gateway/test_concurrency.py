"""Spend control and rate limits under real concurrency: PostgreSQL, Redis, several
server processes. Run by CI's second pass (DATABASE_URL and REDIS_URL set)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from billing.models import LedgerEntry
from billing.services import wallet_for
from gateway import metering, writer
from gateway.models import UsageRecord
from providers.catalogue import get_catalogue
from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import customer_for
from tests.servers import AsgiServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HELLO = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[2]


def _post(base_url: str, secret: str, max_tokens: int = 100) -> int:
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO, "max_tokens": max_tokens},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    return response.status_code


def test_forty_concurrent_requests_cannot_overdraw_a_wallet_that_covers_ten(
    gateway: AsgiServer, openai_catalogue: AiModel, fake_openai: FakeOpenAI
) -> None:
    # Each request reserves its worst case (input estimate + 100 output tokens) and
    # really costs 10 input + 100 output tokens = 1,025 credits.
    fake_openai.set_reply(text="ok", prompt_tokens=10, completion_tokens=100)
    cost = 1_025
    customer = customer_for(gateway, credits=10 * cost + 300)
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda _: _post(gateway.base_url, customer.key.secret), range(40)))
    writer.flush()
    wallet = wallet_for(user=customer.user)
    entries = LedgerEntry.objects.filter(wallet=wallet)
    usage = entries.filter(kind="usage")
    assert statuses.count(200) + statuses.count(402) == 40
    assert 1 <= statuses.count(200) <= 10
    records = UsageRecord.objects.filter(user=customer.user)
    assert records.count() == statuses.count(200) == len(set(records.values_list("request_id")))
    assert usage.aggregate(s=Sum("amount"))["s"] == -sum(records.values_list("charge", flat=True))
    assert wallet.balance >= 0
    assert wallet.balance == entries.aggregate(s=Sum("amount"))["s"]
    assert wallet.balance == 10 * cost + 300 - cost * statuses.count(200)


def test_sixty_calls_costing_their_whole_bound_on_two_processes_never_overdraw(
    two_gateways: list[str], openai_catalogue: AiModel, fake_openai: FakeOpenAI
) -> None:
    """Each call's real usage is the most its reservation allows: the wallet, which
    covers about ten of them, never goes below zero, whichever process serves them."""
    body = {"model": "gpt-4o", "messages": HELLO, "max_tokens": 100}
    bound = metering.reservation_bound(get_catalogue().get("gpt-4o"), body)
    fake_openai.set_reply(
        text="ok", prompt_tokens=bound.input_tokens, completion_tokens=bound.output_tokens
    )
    user = make_user(credits=10 * bound.credits + bound.credits // 2)
    secret = make_key(user).secret
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda url: _post(url, secret), two_gateways * 30))
    writer.flush()
    wallet = wallet_for(user=user)
    assert set(statuses) <= {200, 402} and 1 <= statuses.count(200) <= 10
    assert wallet.balance >= 0
    assert (
        wallet.balance == LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    )
    usage = LedgerEntry.objects.filter(wallet=wallet, kind="usage").aggregate(s=Sum("amount"))["s"]
    assert -usage == bound.credits * statuses.count(200)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_gateways(transactional_db: None) -> Iterator[list[str]]:
    """Two separate server processes on the test database and the same Redis."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
        "NEXAI_USAGE_FLUSH_INTERVAL": "0",
    }
    processes, urls = [], []
    for _ in range(2):
        port = _free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "nexai.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--lifespan",
                    "off",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_until_up(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited")
        try:
            httpx.get(url + "/v1/models", timeout=1)
            return
        except httpx.TransportError:
            # No readiness signal to await from another process: poll its port.
            time.sleep(0.05)
    raise TimeoutError(url)


def test_two_gateway_processes_enforce_one_keys_rpm_together(
    two_gateways: list[str], openai_catalogue: AiModel
) -> None:
    key = make_key(make_user(credits=100_000_000), rpm=5)
    first, second = two_gateways
    statuses = [_post(url, key.secret) for url in [first, second] * 5]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 5


def test_a_revoked_key_stops_working_on_every_process_within_a_second(
    two_gateways: list[str], openai_catalogue: AiModel, django_capture_on_commit_callbacks
) -> None:
    from accounts.keycache import LOCAL_TTL
    from accounts.services import api_key_revoke

    key = make_key(make_user(credits=100_000_000))
    assert [_post(url, key.secret) for url in two_gateways] == [200, 200]  # cached on both
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=key.key)
    revoked_at = time.monotonic()
    refused: dict[str, float] = {}
    # Each process may keep its local copy for LOCAL_TTL; nothing announces its expiry,
    # so ask both until they refuse, for at most a little longer than that.
    while len(refused) < 2 and time.monotonic() - revoked_at < LOCAL_TTL + 0.5:
        for url in two_gateways:
            if url not in refused and _post(url, key.secret) == 403:
                refused[url] = time.monotonic() - revoked_at
        time.sleep(0.02)
    assert set(refused) == set(two_gateways)
    assert max(refused.values()) <= LOCAL_TTL + 0.2  # the request itself takes a little


def _until(urls: list[str], secret: str, status: int, within: float) -> set[str]:
    """The servers among `urls` that answered `status` within `within` seconds, asked
    over and over (a local copy's expiry announces itself to no one)."""
    started, found = time.monotonic(), set()
    while len(found) < len(urls) and time.monotonic() - started < within:
        for url in urls:
            if url not in found and _post(url, secret) == status:
                found.add(url)
        time.sleep(0.02)
    return found


def test_a_deactivated_users_keys_stop_working_on_every_process_within_a_second(
    two_gateways: list[str], openai_catalogue: AiModel, django_capture_on_commit_callbacks
) -> None:
    from accounts.keycache import LOCAL_TTL

    user = make_user(credits=100_000_000)
    key = make_key(user)
    assert [_post(url, key.secret) for url in two_gateways] == [200, 200]  # cached on both
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()  # as the admin's form or a shell does, in this third process
    assert _until(two_gateways, key.secret, 403, LOCAL_TTL + 0.5) == set(two_gateways)
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = True
        user.save()
    assert _until(two_gateways, key.secret, 200, LOCAL_TTL + 0.5) == set(two_gateways)
