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
from audit.admin import change_summary
from audit.models import AuditEntry
from audit.services import audit_record, model_state
from billing import (
    admin_catalogue,  # noqa: F401  (the catalogue's pages, audited)
    admin_payments,  # noqa: F401  (payOS orders, bank transfers and the staff queue)
    admin_redemptions,  # noqa: F401  (redemption code batches)
)
from billing.models import LedgerEntry, StripeEvent, Wallet
from billing.money import credits_to_usd, usd_and_credits, usd_to_credits
from billing.services import wallet_for
from billing.staff import adjustment_post

# A customer's fields whose change staff must be able to trace.
_USER_AUDITED = ["email", "is_active", "email_verified", "is_staff", "is_superuser"]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class WalletInline(ReadOnlyInline):
    model = Wallet
    fields = ["balance_usd", "total_spent_usd", "paid", "updated_at"]
    readonly_fields = fields

    @admin.display(description="balance")
    def balance_usd(self, wallet: Wallet) -> str:
        return usd_and_credits(wallet.balance)

    @admin.display(description="total spent")
    def total_spent_usd(self, wallet: Wallet) -> str:
        return usd_and_credits(wallet.total_spent)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fk_name = "wallet"
    fields = ["created_at", "kind", "amount_usd", "balance_after_usd", "reference", "description"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    max_num = 0
    show_change_link = True

    @admin.display(description="amount")
    def amount_usd(self, entry: LedgerEntry) -> str:
        return usd_and_credits(entry.amount)

    @admin.display(description="balance after")
    def balance_after_usd(self, entry: LedgerEntry) -> str:
        return usd_and_credits(entry.balance_after)


class CustomerAuditInline(ReadOnlyInline):
    """What staff (and load_providers) did to this customer, newest first."""

    model = AuditEntry
    fk_name = "customer"
    fields = ["created_at", "who", "action", "what", "change", "reason"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    max_num = 0
    verbose_name_plural = "audit trail"

    @admin.display(description="who")
    def who(self, entry: AuditEntry) -> str:
        return entry.actor_label

    @admin.display(description="what")
    def what(self, entry: AuditEntry) -> str:
        return entry.target_repr

    @admin.display(description="change")
    def change(self, entry: AuditEntry) -> str:
        return change_summary(entry)


class AdjustmentForm(forms.Form):
    """Staff type dollars; the credit figure is computed exactly and shown back on the
    confirmation page before anything is posted."""

    amount_usd = forms.CharField(
        label="Amount (US$)",
        max_length=32,
        help_text="In dollars, e.g. 10 or 0.50 (US$1 = 1,000,000 credits). Negative to correct down.",
    )
    reason = forms.CharField(
        max_length=200, help_text="Shown in the customer's ledger and in the audit trail."
    )
    counts_as_paid = forms.TypedChoiceField(
        label="Counts as paid?",
        choices=[
            ("yes", "Yes: a payment or paid grant (moves the account to the paid plan)"),
            ("no", "No: a goodwill credit or correction (the plan stays as it is)"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    # Set on the confirmation page: the ledger reference, so a double-click or a
    # resubmitted confirmation posts once.
    reference = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def clean_amount_usd(self) -> int:
        try:
            credits = usd_to_credits(self.cleaned_data["amount_usd"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if credits == 0:
            raise forms.ValidationError("An adjustment of zero changes nothing.")
        return credits


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["email", "balance", "is_staff", "is_active", "email_verified", "date_joined"]
    list_filter = ["is_staff", "is_active", "email_verified"]
    search_fields = ["email"]
    inlines = [WalletInline, CustomerAuditInline]
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

    @admin.display(description="Balance", ordering="wallet__balance")
    def balance(self, user: User) -> str | None:
        wallet = getattr(user, "wallet", None)
        return usd_and_credits(wallet.balance) if wallet else None

    def save_model(self, request: HttpRequest, obj: User, form: forms.Form, change: bool) -> None:
        """A change of a customer's state (active, staff, verified...) is audited with
        the values before and after; Django's admin already wraps this in a transaction."""
        fields = [f for f in form.changed_data if f in _USER_AUDITED]
        before = model_state(User.objects.get(pk=obj.pk), fields) if change and fields else None
        super().save_model(request, obj, form, change)
        if not change:
            audit_record(
                actor=request.user,
                action="customer.create",
                target=obj,
                customer=obj,
                after=model_state(obj, _USER_AUDITED),
            )
        elif fields:
            audit_record(
                actor=request.user,
                action="customer.change",
                target=obj,
                customer=obj,
                before=before,
                after=model_state(obj, fields),
            )
        elif "password" in form.changed_data:
            audit_record(actor=request.user, action="customer.password", target=obj, customer=obj)

    def save_related(self, request: HttpRequest, form: forms.Form, formsets, change) -> None:  # type: ignore[no-untyped-def]
        groups_before = list(form.instance.groups.values_list("name", flat=True))
        perms_before = form.instance.user_permissions.count()
        super().save_related(request, form, formsets, change)
        groups_after = list(form.instance.groups.values_list("name", flat=True))
        perms_after = form.instance.user_permissions.count()
        if change and (groups_before != groups_after or perms_before != perms_after):
            audit_record(
                actor=request.user,
                action="customer.permissions",
                target=form.instance,
                customer=form.instance,
                before={"groups": groups_before, "permissions": perms_before},
                after={"groups": groups_after, "permissions": perms_after},
            )

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
        """Grant or correct credits in three steps: the form, a confirmation page that
        spells out the amount in US$ and credits and the plan change, then the post
        (always a new adjustment entry, never an edit)."""
        user = get_object_or_404(User, pk=user_id)
        if not self.has_change_permission(request, user):
            return HttpResponseRedirect(reverse("admin:index"))
        form = AdjustmentForm(request.POST or None)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust credits of {user.email}",
            "form": form,
            "target": user,
            "balance": wallet_for(user=user).balance,
            "opts": self.model._meta,
        }
        if request.method != "POST" or not form.is_valid():
            return TemplateResponse(request, "admin/accounts/user/adjust.html", context)
        data = form.cleaned_data
        if "confirm" not in request.POST or not data["reference"]:
            return self._adjust_confirm(request, form, context)
        adjustment_post(
            staff=request.user,  # type: ignore[arg-type]
            user=user,
            amount=data["amount_usd"],
            reason=data["reason"],
            counts_as_paid=data["counts_as_paid"],
            reference=f"admin:{data['reference']}",
        )
        self.message_user(
            request,
            f"Posted {usd_and_credits(data['amount_usd'])} to {user.email}: {data['reason']}",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))

    def _adjust_confirm(
        self, request: HttpRequest, form: AdjustmentForm, context: dict
    ) -> HttpResponse:
        data = form.cleaned_data
        wallet = wallet_for(user=context["target"])
        context.update(
            title="Confirm the adjustment",
            amount=data["amount_usd"],
            amount_text=usd_and_credits(data["amount_usd"]),
            amount_usd=credits_to_usd(data["amount_usd"]),
            balance_text=usd_and_credits(wallet.balance),
            after_text=usd_and_credits(wallet.balance + data["amount_usd"]),
            plan_change=data["counts_as_paid"] and data["amount_usd"] > 0 and not wallet.paid,
            reference=uuid.uuid4(),
        )
        return TemplateResponse(request, "admin/accounts/user/adjust_confirm.html", context)


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["user", "balance_usd", "total_spent_usd", "paid", "updated_at"]
    search_fields = ["user__email"]
    readonly_fields = ["user", "balance_usd", "total_spent_usd", "paid", "updated_at"]
    fields = readonly_fields

    @admin.display(description="balance", ordering="balance")
    def balance_usd(self, wallet: Wallet) -> str:
        return usd_and_credits(wallet.balance)

    @admin.display(description="total spent", ordering="total_spent")
    def total_spent_usd(self, wallet: Wallet) -> str:
        return usd_and_credits(wallet.total_spent)

    inlines = [LedgerInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: corrections are new adjustment entries (see a user's page)."""

    list_display = ["created_at", "wallet", "kind", "amount_usd", "balance_after_usd", "reference"]
    list_filter = ["kind"]
    search_fields = ["reference", "wallet__user__email"]
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount")
    def amount_usd(self, entry: LedgerEntry) -> str:
        return usd_and_credits(entry.amount)

    @admin.display(description="balance after")
    def balance_after_usd(self, entry: LedgerEntry) -> str:
        return usd_and_credits(entry.balance_after)

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
