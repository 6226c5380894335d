"""The dashboard's live balance: one websocket per open page (the overview, a payment
page), in the owner's wallet group, fed by billing.live after every committed ledger
change and every change of a payment the customer may be waiting for."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from billing import live
from billing.live import wallet_group
from billing.models import Wallet
from billing.money import credits_to_usd_brief


def _payload(balance: int, total_spent: int) -> dict[str, Any]:
    # Formatted here so the page's script never does money arithmetic.
    return {
        "type": "wallet.update",
        "balance": balance,
        "total_spent": total_spent,
        "balance_display": credits_to_usd_brief(balance),
        "balance_credits": f"{balance:,}",
        "total_spent_display": credits_to_usd_brief(total_spent),
    }


class BalanceConsumer(AsyncJsonWebsocketConsumer):
    user_id: int | None = None  # whose wallet group this socket joined

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        # Counted first: a batch that skips this wallet committed before the figures
        # below are read.
        await live.watching(user.pk, +1)
        self.user_id = user.pk
        await self.channel_layer.group_add(wallet_group(user.pk), self.channel_name)
        await self.accept()
        # The page was rendered before the socket opened; send the current figures so
        # a charge that landed in between is not missed.
        figures = await self._figures(user.pk)
        await self.send_json(_payload(*figures))

    async def disconnect(self, code: int) -> None:
        if self.user_id is not None:
            await self.channel_layer.group_discard(wallet_group(self.user_id), self.channel_name)
            await live.watching(self.user_id, -1)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The socket is one-way: clients have nothing to say."""

    async def wallet_update(self, event: dict[str, Any]) -> None:
        await self.send_json(_payload(event["balance"], event["total_spent"]))

    async def payment_update(self, event: dict[str, Any]) -> None:
        # A payment page waiting for this reference shows its outcome.
        await self.send_json(
            {"type": "payment.update", "reference": event["reference"], "status": event["status"]}
        )

    @database_sync_to_async
    def _figures(self, user_id: int) -> tuple[int, int]:
        row = Wallet.objects.filter(user_id=user_id).values_list("balance", "total_spent").first()
        return row or (0, 0)
