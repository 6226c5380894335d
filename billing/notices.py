"""The emails of low-balance alerts and automatic top-ups."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from billing.models import BalanceAlert
from billing.money import cents_to_usd, credits_to_usd


def email_send(alert: BalanceAlert, template: str, **context: object) -> None:
    context = {
        **context,
        "user": alert.user,
        "alert": alert,
        "threshold": credits_to_usd(alert.threshold or 0),
        "balance_usd": credits_to_usd(int(context.get("balance", 0))),  # type: ignore[call-overload]
        "topup": cents_to_usd(alert.topup_cents),
        "operator": settings.NEXAI_OPERATOR_NAME,
    }
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    body = render_to_string(f"emails/{template}.txt", context)
    send_mail(subject, body, None, [alert.user.email])
