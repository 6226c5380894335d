from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey
from accounts.services import (
    KeyStateError,
    api_key_reactivate,
    api_key_suspend,
    api_key_update,
)
from audit.services import audit_record, model_state

# A key's fields whose change staff must be able to trace (never its digest).
_AUDITED = ["name", "status", "rpm", "concurrency", "spend_limit", "allowed_models", "expires_at"]
_CLEARABLE = ("rpm", "concurrency", "spend_limit", "expires_at")


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
        "concurrency",
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
        before = model_state(ApiKey.objects.get(pk=obj.pk), _AUDITED)
        api_key_update(
            key=obj,
            name=obj.name,
            rpm=obj.rpm,
            concurrency=obj.concurrency,
            spend_limit=obj.spend_limit,
            allowed_models=obj.allowed_models,
            expires_at=obj.expires_at,
            clear=tuple(f for f in _CLEARABLE if getattr(obj, f) is None),
        )
        after = model_state(obj, _AUDITED)
        if after != before:
            audit_record(
                actor=request.user,
                action="api_key.change",
                target=obj,
                customer=obj.user,
                before=before,
                after=after,
            )

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        audit_record(
            actor=request.user,
            action="api_key.delete",
            target=obj,
            customer=obj.user,
            before=model_state(obj, _AUDITED),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.select_related("user"):
            audit_record(
                actor=request.user,
                action="api_key.delete",
                target=key,
                customer=key.user,
                before=model_state(key, _AUDITED),
            )
        super().delete_queryset(request, queryset)

    def _act(self, request: HttpRequest, queryset: QuerySet[ApiKey], action: object) -> None:
        done = 0
        for key in queryset:
            try:
                # The change and its audit entry commit together.
                with transaction.atomic():
                    before = key.status
                    action(key=key)  # type: ignore[operator]
                    audit_record(
                        actor=request.user,
                        action=f"api_key.{action.__name__.removeprefix('api_key_')}",  # type: ignore[attr-defined]
                        target=key,
                        customer=key.user,
                        before={"status": before},
                        after={"status": key.status},
                    )
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
