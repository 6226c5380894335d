"""The đồng rails in the admin: payOS orders (those to review first) and their webhooks,
every bank transfer SePay reported, and the staff queue of unmatched transfers, where
staff assign a transfer to the customer it came from or dismiss it (each audited, in
the transaction that makes the change)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import User
from billing.bank_transfers import TransferStateError, transfer_assign, transfer_dismiss
from billing.exchange import Rate, current_rate, format_vnd
from billing.models import BankTransfer, PayosOrder, PayosWebhook, TransferMemo, UnmatchedTransfer
from billing.money import usd_and_credits

ASSIGN_PERMISSION = "billing.assign_banktransfer"


class _ReadOnly(admin.ModelAdmin):
    """Records of what payment providers said: nobody edits or deletes them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PayosOrder)
class PayosOrderAdmin(_ReadOnly):
    """VietQR payments; "needs review" lists those paid otherwise than asked."""

    list_display = [
        "created_at",
        "order_code",
        "user",
        "amount_vnd",
        "status",
        "paid_vnd",
        "needs_review",
        "review_note",
    ]
    list_filter = ["needs_review", "status"]
    search_fields = ["=order_code", "user__email", "payment_link_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    exclude = ["qr_code"]

    @admin.display(description="amount", ordering="amount")
    def amount_vnd(self, order: PayosOrder) -> str:
        return format_vnd(order.amount, language="en")

    @admin.display(description="paid")
    def paid_vnd(self, order: PayosOrder) -> str:
        return "" if order.paid_amount is None else format_vnd(order.paid_amount, language="en")


@admin.register(PayosWebhook)
class PayosWebhookAdmin(_ReadOnly):
    """Every verified payOS delivery and what it did."""

    list_display = ["received_at", "order_code", "reference", "amount", "outcome", "user", "action"]
    list_filter = ["outcome"]
    search_fields = ["=order_code", "reference", "user__email"]
    date_hierarchy = "received_at"


@admin.register(BankTransfer)
class BankTransferAdmin(_ReadOnly):
    """Every transaction SePay reported on the operator's account."""

    list_display = [
        "received_at",
        "sepay_id",
        "direction",
        "amount_vnd",
        "content",
        "outcome",
        "user",
        "action",
    ]
    list_filter = ["outcome", "direction", "source"]
    search_fields = ["=sepay_id", "content", "reference_code", "user__email"]
    date_hierarchy = "received_at"
    list_select_related = ["user"]

    @admin.display(description="amount", ordering="amount")
    def amount_vnd(self, transfer: BankTransfer) -> str:
        return format_vnd(transfer.amount, language="en")


class AssignForm(forms.Form):
    customer = forms.CharField(
        max_length=254, help_text="The customer's email address, or their memo (NX...)."
    )
    reason = forms.CharField(
        max_length=200,
        help_text="How you know it is theirs (e.g. 'ticket 812: forgot the memo'). Audited.",
    )

    def clean_customer(self) -> User:
        text = self.cleaned_data["customer"].strip()
        user = User.objects.filter(email__iexact=text).first()
        if user is None:
            memo = TransferMemo.objects.filter(code=text.upper().replace(" ", "")).first()
            user = memo.user if memo else None
        if user is None:
            raise forms.ValidationError("No customer has this email address or memo.")
        return user


class DismissForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        help_text="Why nobody is credited (e.g. 'refunded to the sender on 3 Dec'). Audited.",
    )


@admin.register(UnmatchedTransfer)
class UnmatchedTransferAdmin(_ReadOnly):
    """The staff queue: incoming transfers no memo matched, oldest first. Assigning
    needs the "Can assign an unmatched bank transfer" permission."""

    list_display = ["received_at", "amount_vnd", "content", "action", "gateway", "handle"]
    search_fields = ["content", "reference_code", "=sepay_id"]
    ordering = ["received_at"]
    actions = ["assign_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[UnmatchedTransfer]:
        return super().get_queryset(request).filter(outcome=BankTransfer.Outcome.UNMATCHED)

    def has_assign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ASSIGN_PERMISSION)

    @admin.display(description="amount", ordering="amount")
    def amount_vnd(self, transfer: BankTransfer) -> str:
        return format_vnd(transfer.amount, language="en")

    @admin.display(description="")
    def handle(self, transfer: BankTransfer) -> str:
        return format_html(
            '<a href="{}">Assign</a> · <a href="{}">Dismiss</a>',
            reverse("admin:billing_unmatchedtransfer_assign", args=[transfer.pk]),
            reverse("admin:billing_unmatchedtransfer_dismiss", args=[transfer.pk]),
        )

    @admin.action(description="Assign the selected transfer to a customer…", permissions=["assign"])
    def assign_selected(
        self, request: HttpRequest, queryset: QuerySet[UnmatchedTransfer]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Pick one transfer to assign.", messages.WARNING)
            return None
        pk = queryset.get().pk
        return HttpResponseRedirect(reverse("admin:billing_unmatchedtransfer_assign", args=[pk]))

    def get_urls(self) -> list:
        return [
            path(
                "<int:pk>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="billing_unmatchedtransfer_assign",
            ),
            path(
                "<int:pk>/dismiss/",
                self.admin_site.admin_view(self.dismiss_view),
                name="billing_unmatchedtransfer_dismiss",
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, transfer: BankTransfer, **extra: Any) -> dict:
        rate = (
            Rate(vnd_per_usd=transfer.rate, set_on=transfer.rate_date)
            if transfer.rate and transfer.rate_date
            else current_rate()
        )
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "transfer": transfer,
            "amount": format_vnd(transfer.amount, language="en"),
            "credits": usd_and_credits(rate.credits_for(transfer.amount)) if rate else "",
            "rate": rate,
            **extra,
        }

    def _refused(self, request: HttpRequest) -> HttpResponse:
        self.message_user(request, "You may not assign bank transfers.", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:billing_unmatchedtransfer_changelist"))

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Credit the transfer to a customer: the form, a confirmation that spells out
        the customer and the credits, then the post."""
        if not self.has_assign_permission(request):
            return self._refused(request)
        transfer = get_object_or_404(BankTransfer, pk=pk)
        form = AssignForm(request.POST or None)
        context = self._context(
            request, transfer, form=form, title=f"Assign transfer {transfer.sepay_id}"
        )
        if request.method != "POST" or not form.is_valid():
            return TemplateResponse(request, "admin/billing/transfer_assign.html", context)
        user = form.cleaned_data["customer"]
        if "confirm" not in request.POST:
            context.update(confirm=True, customer=user, title="Confirm the assignment")
            return TemplateResponse(request, "admin/billing/transfer_assign.html", context)
        try:
            entry = transfer_assign(
                staff=request.user,  # type: ignore[arg-type]
                transfer=transfer,
                user=user,
                reason=form.cleaned_data["reason"],
            )
        except TransferStateError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(
                request,
                f"Credited {usd_and_credits(entry.amount)} to {user.email}.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:billing_unmatchedtransfer_changelist"))

    def dismiss_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_assign_permission(request):
            return self._refused(request)
        transfer = get_object_or_404(BankTransfer, pk=pk)
        form = DismissForm(request.POST or None)
        context = self._context(
            request,
            transfer,
            form=form,
            dismiss=True,
            title=f"Dismiss transfer {transfer.sepay_id}",
        )
        if request.method != "POST" or not form.is_valid():
            return TemplateResponse(request, "admin/billing/transfer_assign.html", context)
        try:
            transfer_dismiss(
                staff=request.user,  # type: ignore[arg-type]
                transfer=transfer,
                reason=form.cleaned_data["reason"],
            )
        except TransferStateError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, f"Transfer {transfer.sepay_id} dismissed.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:billing_unmatchedtransfer_changelist"))
