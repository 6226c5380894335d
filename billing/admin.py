"""Admin for money, and for users (registered here because a user's page shows their
wallet and ledger, and accounts must not import billing)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.models import User
from billing.models import LedgerEntry, StripeEvent, Wallet
from billing.services import credits_grant


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class WalletInline(ReadOnlyInline):
    model = Wallet
    fields = ["balance", "total_spent", "paid", "updated_at"]
    readonly_fields = fields


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fk_name = "wallet"
    fields = ["created_at", "kind", "amount", "balance_after", "reference", "description"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    max_num = 0
    show_change_link = True


class AdjustmentForm(forms.Form):
    amount = forms.IntegerField(help_text="Credits (1,000,000 = US$1). Negative to correct down.")
    reason = forms.CharField(max_length=200)

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment of zero changes nothing.")
        return amount


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["email", "balance", "is_staff", "is_active", "email_verified", "date_joined"]
    list_filter = ["is_staff", "is_active", "email_verified"]
    search_fields = ["email"]
    inlines = [WalletInline]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Status", {"fields": ["is_active", "email_verified", "is_staff", "is_superuser"]}),
        ("Permissions", {"fields": ["groups", "user_permissions"], "classes": ["collapse"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    change_form_template = "admin/accounts/user/change_form.html"

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).select_related("wallet")

    @admin.display(description="Balance (credits)")
    def balance(self, user: User) -> int | None:
        wallet = getattr(user, "wallet", None)
        return wallet.balance if wallet else None

    def get_urls(self) -> list:
        extra = [
            path(
                "<int:user_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="accounts_user_adjust",
            )
        ]
        return extra + super().get_urls()

    def adjust_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        """Grant or correct credits: always a new adjustment entry, never an edit."""
        user = get_object_or_404(User, pk=user_id)
        if not self.has_change_permission(request, user):
            return HttpResponseRedirect(reverse("admin:index"))
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            credits_grant(
                user=user,
                amount=form.cleaned_data["amount"],
                reference=f"admin:{uuid.uuid4()}",
                description=form.cleaned_data["reason"],
                created_by=request.user,  # type: ignore[arg-type]
            )
            self.message_user(request, "Adjustment posted.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust credits of {user.email}",
            "form": form,
            "target": user,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/user/adjust.html", context)


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["user", "balance", "total_spent", "paid", "updated_at"]
    search_fields = ["user__email"]
    readonly_fields = ["user", "balance", "total_spent", "paid", "updated_at"]
    inlines = [LedgerInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: corrections are new adjustment entries (see a user's page)."""

    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "reference"]
    list_filter = ["kind"]
    search_fields = ["reference", "wallet__user__email"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """Every Stripe webhook delivery and what it did, for answering "where is my top-up?"."""

    list_display = ["received_at", "event_id", "type", "outcome", "user", "session_id"]
    list_filter = ["outcome", "type"]
    search_fields = ["event_id", "session_id", "user__email"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
