from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from audit.models import AuditEntry


def _pretty(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = ["created_at", "actor_label", "action", "target_repr", "customer", "reason"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_repr", "customer__email", "reason", "action"]
    date_hierarchy = "created_at"
    readonly_fields = ["show_before", "show_after"]
    exclude = ["before", "after"]

    @admin.display(description="before")
    def show_before(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", _pretty(entry.before))

    @admin.display(description="after")
    def show_after(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", _pretty(entry.after))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
