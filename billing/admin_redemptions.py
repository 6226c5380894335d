"""Redemption code batches in the admin: generate (with a confirmation page that
states the total value created), look at a batch, export its codes as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from billing.models import RedemptionBatch, RedemptionCode
from billing.money import usd_and_credits, usd_to_credits
from billing.redemptions import MAX_BATCH, batch_create, batch_csv, code_status


class BatchForm(forms.Form):
    value_usd = forms.CharField(
        label="Value of each code (US$)", max_length=20, help_text="e.g. 10 or 2.50"
    )
    count = forms.IntegerField(label="Number of codes", min_value=1, max_value=MAX_BATCH)
    expires_on = forms.DateField(
        label="Expires on (UTC, end of day)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for codes that never expire.",
    )
    per_customer_limit = forms.IntegerField(
        label="Codes of this batch one customer may redeem",
        required=False,
        min_value=1,
        help_text="Leave empty for no limit (e.g. 1 for a one-per-customer promotion).",
    )
    counts_as_paid = forms.TypedChoiceField(
        label="Counts as paid?",
        choices=[
            ("yes", "Yes: sold codes (redeeming moves the customer to the paid plan)"),
            ("no", "No: free promotion (the plan stays as it is)"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        max_length=200, required=False, help_text="e.g. the reseller or the campaign"
    )

    def clean_value_usd(self) -> int:
        try:
            credits = usd_to_credits(self.cleaned_data["value_usd"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if credits <= 0:
            raise forms.ValidationError("A code must be worth more than $0.")
        return credits

    def clean_expires_on(self) -> datetime | None:
        day = self.cleaned_data["expires_on"]
        if day is None:
            return None
        expires = datetime.combine(day, time.max, tzinfo=UTC)
        if expires <= timezone.now():
            raise forms.ValidationError("That day is already over.")
        return expires


@admin.register(RedemptionBatch)
class RedemptionBatchAdmin(admin.ModelAdmin):
    list_display = ["created_at", "__str__", "value_usd", "count", "redeemed", "expires_at"]
    list_filter = ["counts_as_paid"]
    search_fields = ["note", "codes__code"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return (
            super()
            .get_queryset(request)
            .annotate(used=Count("codes", filter=Q(codes__redeemed_at__isnull=False)))
        )

    @admin.display(description="value")
    def value_usd(self, batch: RedemptionBatch) -> str:
        return usd_and_credits(batch.value)

    @admin.display(description="redeemed", ordering="used")
    def redeemed(self, batch: RedemptionBatch) -> str:
        return f"{batch.used} / {batch.count}"  # type: ignore[attr-defined]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a batch is never edited: its codes are out in the world

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list:
        return [
            path(
                "<int:batch_id>/codes.csv",
                self.admin_site.admin_view(self.csv_view),
                name="billing_redemptionbatch_csv",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """Generate a batch: the form, a confirmation of the total value, then create."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = BatchForm(request.POST or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Generate redemption codes",
        }
        if request.method != "POST" or not form.is_valid():
            return TemplateResponse(request, "admin/billing/redemption_batch_add.html", context)
        data = form.cleaned_data
        if "confirm" not in request.POST:
            context.update(
                title="Confirm the batch",
                confirm=True,
                each=usd_and_credits(data["value_usd"]),
                total=usd_and_credits(data["value_usd"] * data["count"]),
            )
            return TemplateResponse(request, "admin/billing/redemption_batch_add.html", context)
        batch = batch_create(
            staff=request.user,  # type: ignore[arg-type]
            value=data["value_usd"],
            count=data["count"],
            expires_at=data["expires_on"],
            per_customer_limit=data["per_customer_limit"],
            counts_as_paid=data["counts_as_paid"],
            note=data["note"],
        )
        self.message_user(
            request,
            f"Generated {batch.count:,} codes of {usd_and_credits(batch.value)}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:billing_redemptionbatch_change", args=[batch.pk])
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        batch = get_object_or_404(self.get_queryset(request), pk=object_id)
        codes = list(batch.codes.select_related("redeemed_by").order_by("-redeemed_at", "id")[:200])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Redemption codes: batch {batch.pk}",
            "batch": batch,
            "value": usd_and_credits(batch.value),
            "total": usd_and_credits(batch.value * batch.count),
            "redeemed_value": usd_and_credits(batch.value * batch.used),  # type: ignore[attr-defined]
            "codes": [(c, code_status(c, batch)) for c in codes],
            "shown": len(codes),
        }
        return TemplateResponse(request, "admin/billing/redemption_batch.html", context)

    def csv_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        batch = get_object_or_404(RedemptionBatch, pk=batch_id)
        response = HttpResponse(batch_csv(batch), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="nexai-codes-batch-{batch.pk}.csv"'
        return response


@admin.register(RedemptionCode)
class RedemptionCodeAdmin(admin.ModelAdmin):
    """Look a code up (a customer asks "why doesn't my code work?"). Read-only."""

    list_display = ["code", "batch", "redeemed_by", "redeemed_at"]
    search_fields = ["code", "redeemed_by__email"]
    list_select_related = ["batch", "redeemed_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
