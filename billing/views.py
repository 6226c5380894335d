"""The payment rails' webhook endpoints (Stripe, payOS, SePay), and the customer pages
billing owns (paying with VietQR or a bank transfer, redeeming a code, alert settings,
receipts); the rest of the customer pages are in dashboard."""

from __future__ import annotations

import logging

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import bank_transfers, payos_topups, vietqr
from billing.alerts import alert_for, alert_settings_save
from billing.autotopup import card_setup_checkout, card_setup_complete
from billing.exchange import current_rate
from billing.forms import AlertForm, RedeemForm, VietqrForm
from billing.models import BankTransfer, LedgerEntry, PayosOrder
from billing.money import credits_to_usd
from billing.receipts import RECEIPT_KINDS, receipt_context
from billing.redemptions import RedeemError, code_redeem
from billing.services import wallet_for
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


# payOS cannot send a CSRF token either: the checksum is what authenticates it.
@csrf_exempt
@require_POST
def payos_webhook(request: HttpRequest) -> HttpResponse:
    try:
        record = payos_topups.payos_webhook_receive(payload=request.body)
    except payos_topups.WebhookRejected as exc:
        log.warning("payOS webhook rejected (bad checksum or body): %s", exc)
        return JsonResponse({"success": False, "error": "invalid checksum or payload"}, status=400)
    except payos_topups.PayosNotConfigured:
        # payOS retries a failed delivery: payments made while the keys are missing
        # are still credited once they are set.
        return JsonResponse({"success": False, "error": "payOS is not configured"}, status=503)
    return JsonResponse({"success": True, "outcome": record.outcome})


@csrf_exempt
@require_POST
def sepay_webhook(request: HttpRequest) -> HttpResponse:
    try:
        transfer = bank_transfers.sepay_webhook_receive(
            payload=request.body, authorization=request.headers.get("Authorization", "")
        )
    except bank_transfers.WebhookRejected as exc:
        log.warning("SePay webhook rejected: %s", exc)
        return JsonResponse({"success": False, "error": str(exc)}, status=401)
    except bank_transfers.SepayNotConfigured:
        return JsonResponse({"success": False, "error": "SePay is not configured"}, status=503)
    # SePay takes {"success": true} as "delivered"; an unmatched transfer is delivered
    # too (it waits for staff here, a retry would change nothing).
    return JsonResponse({"success": True, "outcome": transfer.outcome})


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


# ---- VietQR through payOS ----------------------------------------------------------------


@login_required
@require_POST
def vietqr_start(request: HttpRequest) -> HttpResponse:
    """Open a payOS payment link for the amount chosen, then show its QR here."""
    if not payos_topups.is_configured():
        messages.error(request, _("VietQR payments are not available on this server."))
        return redirect("dashboard:billing")
    form = VietqrForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("dashboard:billing")
    back = request.build_absolute_uri(reverse("billing_pages:vietqr_return"))
    try:
        order = payos_topups.payos_order_create(
            user=request.user,  # type: ignore[arg-type]
            amount_vnd=form.cleaned_data["amount_vnd"],
            return_url=back,
            cancel_url=back,
        )
    except payos_topups.PayosUnavailable:
        messages.error(
            request, _("The VietQR code could not be made. Please try again in a minute.")
        )
        return redirect("dashboard:billing")
    return redirect("billing_pages:vietqr_order", order_code=order.order_code)


def _own_order(request: HttpRequest, order_code: int) -> PayosOrder:
    # Another customer's order is simply not found.
    return get_object_or_404(PayosOrder, order_code=order_code, user=request.user)


def _order_context(request: HttpRequest, order: PayosOrder) -> dict:
    rate = current_rate()
    return {
        "section": "billing",
        "order": order,
        "bank": vietqr.bank_name(order.bank_bin),
        "qr": vietqr.qr_svg(order.qr_code, label=_("VietQR code to scan with your banking app"))
        if order.qr_code and order.status == PayosOrder.Status.PENDING
        else "",
        "credits": rate.credits_for(order.amount) if rate else None,
        "rate": rate,
        "wallet": wallet_for(user=request.user),  # type: ignore[arg-type]
        "receipt_id": order.entry_id,
    }


@login_required
def vietqr_order(request: HttpRequest, order_code: int) -> HttpResponse:
    """The payment page: the QR and the bank details, waiting live for the payment."""
    order = _own_order(request, order_code)
    if (
        order.status == PayosOrder.Status.PENDING
        and order.expires_at
        and order.expires_at < timezone.now()
    ):
        order = payos_topups.payos_order_refresh(order=order)
    return render(request, "billing/vietqr_order.html", _order_context(request, order))


@login_required
def vietqr_live(request: HttpRequest, order_code: int) -> JsonResponse:
    """The payment page's changing parts, re-rendered when its websocket says the
    payment or the balance moved."""
    context = _order_context(request, _own_order(request, order_code))
    return JsonResponse(
        {
            part: render_to_string(f"billing/_vietqr_{part}.html", context, request=request)
            for part in ("payment", "balance")
        }
    )


@login_required
def vietqr_return(request: HttpRequest) -> HttpResponse:
    """Where payOS sends the browser back (paid or cancelled). It credits nothing: the
    query string is the browser's to forge, so a cancel is asked of payOS itself."""
    code = request.GET.get("orderCode", "")
    if not code.isdigit():
        return redirect("dashboard:billing")
    order = _own_order(request, int(code))
    if request.GET.get("cancel") == "true":
        order = payos_topups.payos_order_refresh(order=order)
    return redirect("billing_pages:vietqr_order", order_code=order.order_code)


@login_required
@require_POST
def vietqr_cancel(request: HttpRequest, order_code: int) -> HttpResponse:
    order = payos_topups.payos_order_cancel(order=_own_order(request, order_code))
    if order.status == PayosOrder.Status.CANCELLED:
        messages.info(request, _("Payment cancelled; nothing was charged."))
    return redirect("billing_pages:vietqr_order", order_code=order.order_code)


# ---- bank transfers matched through SePay -----------------------------------------------


def _transfer_context(request: HttpRequest) -> dict:
    details = bank_transfers.bank_details_for(user=request.user)  # type: ignore[arg-type]
    return {
        "section": "billing",
        "details": details,
        "qr": vietqr.qr_svg(details.qr_payload, label=_("VietQR code of our bank account")),
        "rate": current_rate(),
        "wallet": wallet_for(user=request.user),  # type: ignore[arg-type]
        "transfers": BankTransfer.objects.filter(user=request.user).select_related("entry")[:10],
    }


@login_required
def bank_transfer(request: HttpRequest) -> HttpResponse:
    """Our bank account and the customer's own memo, with a QR that fills both in."""
    if not bank_transfers.is_configured():
        return redirect("dashboard:billing")
    return render(request, "billing/bank_transfer.html", _transfer_context(request))


@login_required
def bank_transfer_live(request: HttpRequest) -> JsonResponse:
    if not bank_transfers.is_configured():
        return JsonResponse({})
    context = _transfer_context(request)
    return JsonResponse(
        {
            part: render_to_string(f"billing/_transfer_{part}.html", context, request=request)
            for part in ("received", "balance")
        }
    )
