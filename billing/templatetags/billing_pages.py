"""The billing cards the dashboard's billing page includes (redeem a code, low-balance
alert), rendered from billing's own data so the dashboard view needs no change."""

from __future__ import annotations

from typing import Any

from django import template

from billing.alerts import alert_for
from billing.forms import RedeemForm
from billing.money import credits_to_usd
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
