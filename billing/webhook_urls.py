"""The đồng rails' webhook endpoints (docs/operations.md says what to register where):
/payos/webhook/ and /sepay/webhook/. Stripe's is /stripe/webhook/ (billing/urls.py)."""

from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing_webhooks"

urlpatterns = [
    path("payos/webhook/", views.payos_webhook, name="payos"),
    path("sepay/webhook/", views.sepay_webhook, name="sepay"),
]
