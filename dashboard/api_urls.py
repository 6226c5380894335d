from __future__ import annotations

from django.urls import path

from billing.api import RedeemView
from dashboard import api

app_name = "api"

# Mounted at /api/. The /v1 gateway is also reachable at /api/v1/: nothing here may
# start with "v1/".
urlpatterns = [
    path("", api.ApiRoot.as_view(), name="root"),
    path("balance/", api.BalanceView.as_view(), name="balance"),
    path("keys/", api.KeyList.as_view(), name="keys"),
    path("keys/<int:pk>/", api.KeyDetail.as_view(), name="key"),
    path("keys/<int:pk>/revoke/", api.KeyRevoke.as_view(), name="key-revoke"),
    path("usage/", api.UsageList.as_view(), name="usage"),
    path("usage/<str:request_id>/", api.UsageDetail.as_view(), name="usage-detail"),
    path("ledger/", api.LedgerList.as_view(), name="ledger"),
    path("redeem/", RedeemView.as_view(), name="redeem"),
    path("responses/", api.ResponseList.as_view(), name="responses"),
    path("responses/<str:response_id>/", api.ResponseDetail.as_view(), name="response"),
]
