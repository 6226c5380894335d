"""Automatic top-ups: a card saved through Stripe Checkout in setup mode, charged
off-session once per low-balance crossing (billing.alerts claims the crossing).

The top-up is claimed a second time by crossing number (`last_topup_crossing`, with the
minimum interval) and sent to Stripe with an idempotency key made of the user and the
crossing, so a retried task can neither charge the card twice nor credit twice (the
ledger reference is the PaymentIntent id).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import stripe
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from billing.exchange import USD, Paid
from billing.models import BalanceAlert, LedgerEntry
from billing.money import CREDITS_PER_CENT, cents_to_usd
from billing.notices import email_send
from billing.services import ledger_post
from billing.stripe_topups import _client as stripe_client  # the one configured client

log = logging.getLogger(__name__)


def auto_topup_charge(*, user_id: int, crossing: int) -> str:
    """Charge the saved card once for `crossing`, and credit the wallet if the payment
    succeeded. Returns the outcome: succeeded, declined, requires_action, failed, or
    skipped (off, no card, already done for this crossing, or too soon)."""
    now = timezone.now()
    alert = BalanceAlert.objects.get(user_id=user_id)
    cutoff = now - timedelta(minutes=alert.min_interval_minutes)
    claimed = (
        BalanceAlert.objects.filter(pk=alert.pk, auto_topup=True, last_topup_crossing__lt=crossing)
        .exclude(stripe_payment_method="")
        .filter(Q(last_topup_at__isnull=True) | Q(last_topup_at__lte=cutoff))
        .update(last_topup_crossing=crossing, last_topup_at=now)
    )
    if not claimed:
        return "skipped"
    outcome, error = _charge(alert, crossing)
    BalanceAlert.objects.filter(pk=alert.pk).update(
        last_topup_status=outcome, last_topup_error=error[:300]
    )
    if outcome != BalanceAlert.TopupStatus.SUCCEEDED:
        alert.refresh_from_db()
        email_send(alert, "auto_topup_failed", outcome=outcome, error=error)
    return outcome


def _charge(alert: BalanceAlert, crossing: int) -> tuple[str, str]:
    cents = alert.topup_cents
    credits = cents * CREDITS_PER_CENT
    try:
        intent = stripe_client().v1.payment_intents.create(
            params={
                "amount": cents,
                "currency": "usd",
                "customer": alert.stripe_customer,
                "payment_method": alert.stripe_payment_method,
                "off_session": True,
                "confirm": True,
                "description": f"nexai automatic top-up ({cents_to_usd(cents)})",
                "metadata": {
                    "user_id": str(alert.user_id),
                    "credits": str(credits),
                    "purpose": "auto_topup",
                    "crossing": str(crossing),
                },
            },
            options={"idempotency_key": f"nexai-autotopup-{alert.user_id}-{crossing}"},
        )
    except stripe.CardError as exc:
        # Off-session payments that need the cardholder (3-D Secure) fail this way too.
        code = getattr(exc, "code", "") or ""
        status = (
            BalanceAlert.TopupStatus.REQUIRES_ACTION
            if code == "authentication_required"
            else BalanceAlert.TopupStatus.DECLINED
        )
        return status, exc.user_message or str(code)
    except stripe.StripeError as exc:
        log.warning("auto top-up of user %s failed: %s", alert.user_id, exc.__class__.__name__)
        return BalanceAlert.TopupStatus.FAILED, "the payment service could not be reached"
    if intent.status == "requires_action":
        return BalanceAlert.TopupStatus.REQUIRES_ACTION, "the bank asks you to confirm"
    if intent.status != "succeeded":
        return BalanceAlert.TopupStatus.FAILED, f"payment {intent.status}"
    ledger_post(
        user=alert.user,
        kind=LedgerEntry.Kind.TOPUP,
        amount=credits,
        reference=f"stripe:{intent.id}",
        description=f"Automatic top-up {cents_to_usd(cents)}",
        paid=Paid(amount=cents, currency=USD),
    )
    return BalanceAlert.TopupStatus.SUCCEEDED, ""


def card_setup_checkout(*, user: User, success_url: str, cancel_url: str) -> str:
    """A Stripe Checkout Session in setup mode: the customer saves a card for automatic
    top-ups on Stripe's page (nothing is charged). Returns its URL."""
    alert, _ = BalanceAlert.objects.get_or_create(user=user)
    client = stripe_client()
    if not alert.stripe_customer:
        customer = client.v1.customers.create(
            params={"email": user.email, "metadata": {"user_id": str(user.pk)}}
        )
        BalanceAlert.objects.filter(pk=alert.pk).update(stripe_customer=customer.id)
        alert.stripe_customer = customer.id
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "currency": "usd",
            "customer": alert.stripe_customer,
            "payment_method_types": ["card"],
            "client_reference_id": str(user.pk),
            "metadata": {"user_id": str(user.pk), "purpose": "auto_topup"},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    return session.url


def card_setup_complete(*, user: User, session_id: str) -> bool:
    """After Stripe's page: read the session from Stripe (never trusting the browser),
    and keep its saved card if it is this customer's."""
    client = stripe_client()
    session = client.v1.checkout.sessions.retrieve(session_id)
    if session.client_reference_id != str(user.pk) or session.status != "complete":
        return False
    intent = client.v1.setup_intents.retrieve(str(session.setup_intent))
    if intent.status != "succeeded" or not intent.payment_method:
        return False
    card = _card_label(client, str(intent.payment_method))
    BalanceAlert.objects.filter(user=user).update(
        stripe_payment_method=str(intent.payment_method),
        stripe_customer=str(session.customer or intent.customer or ""),
        card_label=card,
    )
    return True


def _card_label(client: stripe.StripeClient, payment_method: str) -> str:
    """ "Visa •••• 4242", for the customer to recognise the card (never more of it)."""
    method = client.v1.payment_methods.retrieve(payment_method)
    card = getattr(method, "card", None)
    if card is None:
        return "saved card"
    return f"{str(card.brand).title()} •••• {card.last4}"
