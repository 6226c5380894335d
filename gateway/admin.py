from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from gateway.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "request_id",
        "user",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "charge",
        "latency_ms",
    ]
    list_filter = ["status", "endpoint", "estimated"]
    search_fields = ["request_id", "user__email", "model"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
