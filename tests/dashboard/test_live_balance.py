"""The overview's websocket: only a logged-in customer may open it, and it carries
their own balance, pushed after each committed ledger change."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from billing import live
from billing.services import ledger_post
from core import redis as nxredis
from gateway import spend, writer
from gateway.records import Record
from nexai.asgi import application
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> bytes:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def _socket(cookie: bytes | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/balance/", headers=headers)


async def test_anonymous_visitors_cannot_open_the_socket() -> None:
    socket = _socket()
    connected, _ = await socket.connect()
    assert not connected


async def test_a_customer_gets_their_balance_then_every_change() -> None:
    user = await database_sync_to_async(make_user)(credits=5_000_000)
    other = await database_sync_to_async(make_user)(credits=1)
    socket = _socket(await database_sync_to_async(_session_cookie)(user))
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from(timeout=5)
    assert first["balance"] == 5_000_000 and first["balance_display"] == "$5.00"
    assert first["balance_credits"] == "5,000,000"

    await database_sync_to_async(ledger_post)(
        user=other, kind="adjustment", amount=7, reference="o1"
    )
    assert await socket.receive_nothing(timeout=0.3)

    await database_sync_to_async(ledger_post)(
        user=user, kind="usage", amount=-1_234, reference="req_live_1"
    )
    update = await socket.receive_json_from(timeout=5)
    assert update == {
        "type": "wallet.update",
        "balance": 4_998_766,
        "total_spent": 1_234,
        "balance_display": "$4.99",
        "balance_credits": "4,998,766",
        "total_spent_display": "$0.00123",
    }
    await socket.disconnect()


async def test_a_foreign_origin_cannot_open_the_socket() -> None:
    user = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(_session_cookie)(user)
    socket = WebsocketCommunicator(
        application,
        "/ws/balance/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await socket.connect()
    assert not connected


def _settle(user, request_id: str, charge: int) -> None:  # type: ignore[no-untyped-def]
    record = Record(
        request_id=request_id, user_id=user.pk, api_key_id=make_key(user).key.pk,
        endpoint="chat.completions", model="gpt-4o", charge=charge, status=200,
    )  # fmt: skip
    spend.store().settle_sync(record=record)


async def test_a_usage_batch_reaches_the_pages_that_are_open() -> None:
    """The writer sends a batch's balances only to wallets with a page open (with
    Redis it counts them): an open page still gets its update."""
    watched = await database_sync_to_async(make_user)(credits=1_000_000)
    unwatched = await database_sync_to_async(make_user)(credits=1_000_000)
    socket = _socket(await database_sync_to_async(_session_cookie)(watched))
    assert (await socket.connect())[0]
    await socket.receive_json_from(timeout=5)
    if nxredis.enabled():
        assert int(nxredis.sync_client().hget(live.WATCHERS, str(watched.pk))) == 1
    await database_sync_to_async(_settle)(watched, "req_live_batch_1", 2_500)
    await database_sync_to_async(_settle)(unwatched, "req_live_batch_2", 700)
    await database_sync_to_async(writer.flush)()
    update = await socket.receive_json_from(timeout=5)
    assert (update["balance"], update["total_spent"]) == (997_500, 2_500)
    await socket.disconnect()
    if nxredis.enabled():
        counts = nxredis.sync_client().hmget(live.WATCHERS, [str(watched.pk), str(unwatched.pk)])
        assert counts == [b"0", None]
