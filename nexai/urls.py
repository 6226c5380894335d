from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from gateway import views as gateway_views
from gateway.api import api_v1, v1

urlpatterns = [
    # The /v1 API first: nothing else may shadow it.
    path("v1/", v1.urls),
    path("api/v1/", api_v1.urls),
    re_path(r"^(?:api/)?v1/(?P<path>.*)$", gateway_views.not_found),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("stripe/", include("billing.urls")),
    path("dashboard/billing/", include("billing.customer_urls")),
    path("dashboard/", include("dashboard.urls")),
    path("api/", include("dashboard.api_urls")),
    path("", include("dashboard.public_urls")),
]
