from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/", views.key_edit, name="key_edit"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("usage/", views.usage, name="usage"),
    path("usage.csv", views.usage_csv, name="usage_csv"),
    path("billing/", views.billing, name="billing"),
    path("billing/topup/", views.topup, name="topup"),
]
