from __future__ import annotations

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The gateway owns the wallets' fast copy; billing publishes committed changes
        # to it without importing the gateway.
        from billing import balances
        from gateway import spend

        balances.register(spend.publish)
