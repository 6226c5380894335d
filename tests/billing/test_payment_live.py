"""A payment page waits on the overview's websocket: when payOS's webhook credits the
order, the customer's open pages get the new balance and the payment's news."""

from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from billing.models import PayosOrder
from tests.dashboard.test_live_balance import _session_cookie, _socket
from tests.factories import make_user
from tests.rails import post_payos

pytestmark = pytest.mark.django_db(transaction=True)


def _open_order(user) -> PayosOrder:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    location = client.post("/dashboard/billing/vietqr/", {"preset": "100000"})["Location"]
    return PayosOrder.objects.get(order_code=int(re.search(r"(\d+)/$", location).group(1)))


async def test_the_payment_page_hears_the_payment_and_its_credits(fake_payos) -> None:  # type: ignore[no-untyped-def]
    user = await database_sync_to_async(make_user)()
    order = await database_sync_to_async(_open_order)(user)
    socket = _socket(await database_sync_to_async(_session_cookie)(user))
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from(timeout=5))["balance"] == 0
    webhook = fake_payos.webhook(order.order_code)
    await database_sync_to_async(post_payos)(webhook)
    messages = [await socket.receive_json_from(timeout=5) for _ in range(2)]
    by_type = {m["type"]: m for m in messages}
    assert by_type["wallet.update"]["balance"] == 3_937_007
    assert by_type["payment.update"] == {
        "type": "payment.update",
        "reference": f"payos:{order.order_code}",
        "status": "paid",
    }
    await socket.disconnect()
