from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    """The public base URL, so snippets in the dashboard name this server."""
    return {"SITE_URL": settings.SITE_URL, "API_BASE": f"{settings.SITE_URL}/v1"}
