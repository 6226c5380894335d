"""The billing cards the dashboard's billing page includes (paying in đồng, redeem a
code, low-balance alert), rendered from billing's own data so the dashboard view needs
no change."""

from __future__ import annotations

from typing import Any

from django import template

from billing import bank_transfers, memos, payos_topups
from billing.alerts import alert_for
from billing.exchange import current_rate
from billing.forms import RedeemForm, VietqrForm
from billing.money import credits_to_usd, credits_to_usd_brief
from billing.stripe_topups import is_configured

register = template.Library()


@register.inclusion_tag("dashboard/billing_side.html", takes_context=True)
def billing_side_cards(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    alert = alert_for(user=request.user)
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "redeem_form": RedeemForm(),
        "alert": alert,
        "threshold_usd": credits_to_usd(alert.threshold) if alert.threshold else "",
        "stripe_enabled": is_configured(),
    }


@register.inclusion_tag("billing/_rails.html", takes_context=True)
def vnd_rails(context: template.Context) -> dict[str, Any]:
    """The ways to pay in đồng this server offers: a VietQR payment link (payOS), and a
    bank transfer with the customer's own memo (SePay)."""
    request = context["request"]
    rate = current_rate()
    payos = payos_topups.is_configured()
    form = VietqrForm() if payos else None
    presets = []
    if form is not None and rate is not None:
        presets = [
            (value, label, credits_to_usd_brief(rate.credits_for(int(value))))
            for value, label in form.fields["preset"].choices
            if value != "custom"
        ]
    bank = bank_transfers.is_configured()
    return {
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "payos": payos,
        "form": form,
        "presets": presets,
        "bank": bank,
        "memo": memos.memo_for(user=request.user) if bank else "",
        "rate": rate,
        "min_vnd": payos_topups.TOPUP_MIN_VND,
        "max_vnd": payos_topups.TOPUP_MAX_VND,
    }
