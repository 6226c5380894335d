from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from audit.models import AuditEntry


def _pretty(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


def _short(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def change_lines(entry: AuditEntry) -> list[str]:
    """ "balance: 51,969,593 → 76,969,593", one per field that differs (or is new)."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key in before and key in after:
            if before[key] != after[key]:
                lines.append(f"{key}: {_short(before[key])} → {_short(after[key])}")
        elif key in after:
            lines.append(f"{key}: {_short(after[key])}")
        else:
            lines.append(f"{key}: {_short(before[key])} → (removed)")
    return lines


def change_summary(entry: AuditEntry) -> str:
    lines = change_lines(entry)
    return format_html_join("", "<div>{}</div>", ((line,) for line in lines)) if lines else ""


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = ["when", "who", "action", "summary", "reason"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "target_repr", "customer__email", "reason", "action"]
    date_hierarchy = "created_at"
    readonly_fields = ["show_before", "show_after"]
    exclude = ["before", "after"]

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, entry: AuditEntry) -> str:
        return f"{entry.created_at:%b %-d, %H:%M}"

    @admin.display(description="what changed")
    def summary(self, entry: AuditEntry) -> str:
        return format_html("<strong>{}</strong>{}", self.what(entry), change_summary(entry))

    @admin.display(description="who", ordering="actor_label")
    def who(self, entry: AuditEntry) -> str:
        return entry.actor_label

    @admin.display(description="what")
    def what(self, entry: AuditEntry) -> str:
        text = entry.target_repr or entry.target_type
        return text if len(text) <= 48 else text[:47] + "…"

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
