from __future__ import annotations

from django.urls import path

from dashboard.consumers import BalanceConsumer

# Websocket routes: the dashboard's live balance.
websocket_urlpatterns: list = [
    path("ws/balance/", BalanceConsumer.as_asgi()),
]
