"""Customer pages of billing, mounted at /dashboard/billing/ beside the dashboard's own
billing page (which includes their forms)."""

from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing_pages"

urlpatterns = [
    path("redeem/", views.redeem, name="redeem"),
    path("alerts/", views.alert_settings, name="alerts"),
    path("alerts/card/", views.card_setup, name="card_setup"),
    path("alerts/card/saved/", views.card_saved, name="card_saved"),
    path("receipts/<int:entry_id>/", views.receipt, name="receipt"),
]
