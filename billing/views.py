"""Stripe's webhook endpoint, and the few customer pages billing owns (redeeming a
code, alert settings, receipts); the rest of the customer pages are in dashboard."""

from __future__ import annotations

import logging

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.alerts import alert_for, alert_settings_save
from billing.autotopup import card_setup_checkout, card_setup_complete
from billing.forms import AlertForm, RedeemForm
from billing.models import LedgerEntry
from billing.money import credits_to_usd
from billing.receipts import RECEIPT_KINDS, receipt_context
from billing.redemptions import RedeemError, code_redeem
from billing.stripe_topups import (
    StripeNotConfigured,
    WebhookRejected,
    is_configured,
    stripe_event_receive,
)

log = logging.getLogger(__name__)


# Stripe cannot send a CSRF token; the signature check below is what authenticates it.
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except WebhookRejected as exc:
        log.warning("stripe webhook rejected: %s", exc)
        return JsonResponse({"error": "invalid signature or payload"}, status=400)
    except StripeNotConfigured:
        # 503 rather than 400: Stripe keeps retrying for days, so payments made while
        # the endpoint secret is missing are still credited once it is set.
        return JsonResponse({"error": "webhooks are not configured"}, status=503)
    return JsonResponse({"received": True, "outcome": event.outcome})


# ---- customer pages (mounted under /dashboard/billing/ by billing/customer_urls.py) ------


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: a forwarded header is the caller's to forge. Behind a proxy,
    # the proxy must set REMOTE_ADDR (docs/operations.md).
    return request.META.get("REMOTE_ADDR", "")


@login_required
@require_POST
def redeem(request: HttpRequest) -> HttpResponse:
    form = RedeemForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a code to redeem."))
        return redirect("dashboard:billing")
    try:
        done = code_redeem(
            user=request.user, code=form.cleaned_data["code"], ip=_client_ip(request)
        )  # type: ignore[arg-type]
    except RedeemError as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:billing")
    messages.success(
        request,
        _("Code %(code)s redeemed: %(amount)s added to your balance.")
        % {"code": done.code, "amount": credits_to_usd(done.value)},
    )
    return redirect("dashboard:billing")


@login_required
def alert_settings(request: HttpRequest) -> HttpResponse:
    alert = alert_for(user=request.user)  # type: ignore[arg-type]
    form = AlertForm(request.POST or None, alert=alert)
    if request.method == "POST" and form.is_valid():
        alert_settings_save(user=request.user, **form.settings())  # type: ignore[arg-type]
        messages.success(request, _("Alert settings saved."))
        return redirect("dashboard:billing")
    return render(
        request,
        "dashboard/billing_alerts_page.html",
        {"section": "billing", "form": form, "alert": alert, "stripe_enabled": is_configured()},
    )


@login_required
def receipt(request: HttpRequest, entry_id: int) -> HttpResponse:
    """A printable receipt for a top-up or a redemption; another customer's entry, or
    any other kind of entry, is not found."""
    entry = get_object_or_404(
        LedgerEntry.objects.select_related("wallet__user"),
        pk=entry_id,
        wallet__user=request.user,
        kind__in=RECEIPT_KINDS,
    )
    return render(request, "billing/receipt.html", receipt_context(entry=entry))


@login_required
@require_POST
def card_setup(request: HttpRequest) -> HttpResponse:
    """Send the customer to Stripe to save a card for automatic top-ups."""
    back = request.build_absolute_uri(reverse("billing_pages:card_saved"))
    cancel = request.build_absolute_uri(reverse("billing_pages:alerts"))
    try:
        url = card_setup_checkout(
            user=request.user,  # type: ignore[arg-type]
            success_url=back + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=cancel,
        )
    except (StripeNotConfigured, stripe.StripeError):
        messages.error(request, _("Card payments are not available right now."))
        return redirect("billing_pages:alerts")
    return redirect(url)


@login_required
def card_saved(request: HttpRequest) -> HttpResponse:
    session_id = request.GET.get("session_id", "")
    try:
        saved = session_id.startswith("cs_") and card_setup_complete(
            user=request.user,  # type: ignore[arg-type]
            session_id=session_id,
        )
    except (StripeNotConfigured, stripe.StripeError):
        saved = False
    if saved:
        messages.success(request, _("Card saved for automatic top-ups."))
    else:
        messages.error(request, _("The card could not be saved. Please try again."))
    return redirect("billing_pages:alerts")
