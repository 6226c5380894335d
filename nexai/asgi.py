"""ASGI entry point: HTTP through Django, websockets (live dashboard) through channels."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexai.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from core.bodylimit import BodyLimit, install_in_daphne  # noqa: E402
from gateway.asgi import GatewayASGIHandler, by_path, lifespan, websockets_by_path  # noqa: E402
from nexai import limits  # noqa: E402
from nexai.routing import websocket_urlpatterns  # noqa: E402

# Under daphne, which reads a whole body before calling the application, the same
# limits are enforced inside daphne's request (a no-op under uvicorn or granian).
install_in_daphne(limits.policy)

protocols = ProtocolTypeRouter(
    {
        # Body limits are checked before Django reads (and spools) a request body;
        # /v1 goes to a lean handler without the site's middleware (gateway/asgi.py).
        "http": BodyLimit(by_path(GatewayASGIHandler(), django_asgi), limits.policy),
        "websocket": websockets_by_path(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)


async def application(scope: dict, receive: Any, send: Any) -> None:
    # The lifespan (startup, shutdown) of a server process, then every connection.
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await protocols(scope, receive, send)
