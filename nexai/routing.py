from __future__ import annotations

# Websocket routes; the dashboard adds its live-balance consumer here.
websocket_urlpatterns: list = []
