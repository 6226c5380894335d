"""/healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus
(docs/operations.md)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from gateway import metrics
from gateway.readiness import readiness

NO_STORE = {"cache-control": "no-store"}


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering; nothing else is touched (no I/O), so a slow
    database never gets a healthy process restarted."""
    return JsonResponse({"status": "ok"}, headers=NO_STORE)


@require_safe
async def readyz(request: HttpRequest) -> HttpResponse:
    """200 when this process can serve and account for requests, else 503; the body
    has each check's state either way."""
    ready, checks = await readiness()
    response = JsonResponse(
        {"status": "ready" if ready else "unready", "checks": checks},
        status=200 if ready else 503,
        headers=NO_STORE,
    )
    # gateway.readiness has logged which check failed; Django would add an ERROR
    # line per probe (every few seconds) saying only "Service Unavailable".
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@require_safe
def prometheus(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, for `Authorization: Bearer $NEXAI_METRICS_TOKEN` only;
    a 404 while no token is configured, as if there were no such page."""
    token = settings.NEXAI_METRICS_TOKEN
    if not token:
        raise Http404
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        return HttpResponse(
            "A bearer token is required.\n",
            status=401,
            content_type="text/plain",
            headers={"www-authenticate": 'Bearer realm="metrics"', **NO_STORE},
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type, headers=NO_STORE)
