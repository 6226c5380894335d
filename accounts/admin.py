from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey
from accounts.services import KeyStateError, api_key_reactivate, api_key_suspend


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    # The digest is never shown: it is not a secret, but nothing in it helps staff.
    list_display = [
        "prefix",
        "name",
        "user",
        "status",
        "scope",
        "spent",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["status", "scope"]
    search_fields = ["prefix", "name", "user__email"]
    readonly_fields = [
        "prefix",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
        "spent",
    ]
    fields = [
        "prefix",
        "user",
        "name",
        "status",
        "scope",
        "rpm",
        "spend_limit",
        "allowed_models",
        "expires_at",
        "spent",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["suspend", "reactivate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys are created by their owner (dashboard) or by create_api_key, which show
        # the secret once; an admin form could not.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # Status changes go through the actions so the auth cache is invalidated.
        return [*self.readonly_fields, "status"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        from accounts.services import api_key_update

        api_key_update(
            key=obj,
            name=obj.name,
            rpm=obj.rpm,
            spend_limit=obj.spend_limit,
            allowed_models=obj.allowed_models,
            expires_at=obj.expires_at,
            clear=tuple(f for f in ("rpm", "spend_limit", "expires_at") if getattr(obj, f) is None),
        )

    def _act(self, request: HttpRequest, queryset: QuerySet[ApiKey], action: object) -> None:
        done = 0
        for key in queryset:
            try:
                action(key=key)  # type: ignore[operator]
                done += 1
            except KeyStateError as exc:
                self.message_user(request, f"{key.prefix}…: {exc}", messages.WARNING)
        self.message_user(request, f"{done} key(s) updated.")

    @admin.action(description="Suspend selected keys")
    def suspend(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._act(request, queryset, api_key_suspend)

    @admin.action(description="Reactivate selected keys")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._act(request, queryset, api_key_reactivate)
