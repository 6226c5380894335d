from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("webhook/", views.stripe_webhook, name="stripe_webhook"),
]
