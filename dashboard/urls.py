from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("live/", views.overview_live, name="overview_live"),
    path("keys/", views.keys, name="keys"),
    path("keys/created/", views.key_created, name="key_created"),
    path("keys/<int:key_id>/", views.key_edit, name="key_edit"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("usage/", views.usage, name="usage"),
    path("usage.csv", views.usage_csv, name="usage_csv"),
    path("usage/<str:request_id>/", views.usage_detail, name="usage_detail"),
    path("billing/", views.billing, name="billing"),
    path("billing/topup/", views.topup, name="topup"),
]
