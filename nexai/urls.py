from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from gateway import ops_views
from gateway.api import api_v1, v1
from gateway.endpoints import catalog
from gateway.relay import view

urlpatterns = [
    # The /v1 API first: nothing else may shadow it.
    re_path(r"^(?:api/)?v1/?$", view(catalog.root)),
    path("v1/", v1.urls),
    path("api/v1/", api_v1.urls),
    # Claude Code probes HEAD /api/hello before its first turn.
    path("api/hello", view(catalog.root)),
    # Probes and Prometheus (docs/operations.md).
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.prometheus, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("stripe/", include("billing.urls")),
    path("", include("billing.webhook_urls")),
    path("dashboard/billing/", include("billing.customer_urls")),
    path("dashboard/", include("dashboard.urls")),
    path("api/", include("dashboard.api_urls")),
    path("", include("dashboard.public_urls")),
]
