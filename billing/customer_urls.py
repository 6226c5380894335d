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
    path("vietqr/", views.vietqr_start, name="vietqr_start"),
    path("vietqr/return/", views.vietqr_return, name="vietqr_return"),
    path("vietqr/<int:order_code>/", views.vietqr_order, name="vietqr_order"),
    path("vietqr/<int:order_code>/live/", views.vietqr_live, name="vietqr_live"),
    path("vietqr/<int:order_code>/cancel/", views.vietqr_cancel, name="vietqr_cancel"),
    path("transfer/", views.bank_transfer, name="bank_transfer"),
    path("transfer/live/", views.bank_transfer_live, name="bank_transfer_live"),
]
