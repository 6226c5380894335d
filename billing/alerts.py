"""Low-balance alerts and automatic top-ups.

`balance_crossed(user_id=, balance_before=, balance_after=)` is the hook, called after
every `ledger_post`; `usage_post_batch` calls its batch twin `balances_changed` once
its batch has committed, so the usage writer needs no change.
A crossing is claimed with a conditional UPDATE on `armed`, so however many processes
see the same fall, one email goes out and one top-up is attempted. The top-up is
claimed a second time by crossing number (`last_topup_crossing`) and sent to Stripe
with an idempotency key made of the user and the crossing, so a retried task can
neither charge the card twice nor credit twice (the ledger reference is the
PaymentIntent id).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from billing import services
from billing.models import BalanceAlert, LedgerEntry
from billing.money import CREDITS_PER_CENT, cents_to_usd, credits_to_usd

log = logging.getLogger(__name__)


def alert_for(*, user: User) -> BalanceAlert:
    alert, _ = BalanceAlert.objects.get_or_create(user=user)
    return alert


def alert_settings_save(
    *,
    user: User,
    threshold: int | None,
    email_enabled: bool,
    auto_topup: bool,
    topup_cents: int,
    min_interval_minutes: int,
) -> BalanceAlert:
    """Save the customer's settings. The alert is armed only if the balance is at or
    above the new threshold: setting a threshold above today's balance is not itself
    a crossing."""
    alert = alert_for(user=user)
    balance = services.wallet_for(user=user).balance
    alert.threshold = threshold
    alert.email_enabled = email_enabled
    alert.auto_topup = auto_topup
    alert.topup_cents = topup_cents
    alert.min_interval_minutes = min_interval_minutes
    alert.armed = threshold is not None and balance >= threshold
    alert.save()
    return alert


def balance_crossed(*, user_id: int, balance_before: int, balance_after: int) -> bool:
    """Call after a balance changed (credits: before and after). Returns True when this
    call claimed a crossing below the customer's threshold (and queued the email and
    the automatic top-up for after commit). The `armed` flag, not `balance_before`,
    decides: a stale or reordered call can never produce a second email."""
    alert = (
        BalanceAlert.objects.filter(user_id=user_id, threshold__isnull=False)
        .only("pk", "threshold", "armed")
        .first()
    )
    return alert is not None and _check(alert, balance_after)


def balances_changed(changes: list[tuple[int, int, int]]) -> None:
    """`balance_crossed` for a whole usage batch, (user_id, before, after) each, with
    one query for every wallet that has no alert. Runs after the batch committed, in
    the writer: it logs its own failures rather than failing the writer."""
    try:
        after = {user_id: a for user_id, _, a in changes}
        alerts = BalanceAlert.objects.filter(user_id__in=after, threshold__isnull=False).only(
            "pk", "user_id", "threshold", "armed"
        )
        for alert in alerts:
            _check(alert, after[alert.user_id])
    except Exception:
        log.exception("low-balance check after a usage batch failed")


def _check(alert: BalanceAlert, balance_after: int) -> bool:
    if alert.threshold is None:
        return False
    if balance_after >= alert.threshold:
        if not alert.armed:  # back above: the next fall is a new crossing
            BalanceAlert.objects.filter(pk=alert.pk, armed=False).update(armed=True)
        return False
    won = BalanceAlert.objects.filter(pk=alert.pk, armed=True).update(
        armed=False, crossings=F("crossings") + 1, last_alert_at=timezone.now()
    )
    if not won:
        return False
    crossing = BalanceAlert.objects.values_list("crossings", flat=True).get(pk=alert.pk)
    user_id = alert.user_id
    transaction.on_commit(lambda: _after_crossing(user_id, crossing, balance_after))
    return True


def _after_crossing(user_id: int, crossing: int, balance: int) -> None:
    from billing.tasks import auto_topup_run

    alert = BalanceAlert.objects.select_related("user").get(user_id=user_id)
    if alert.email_enabled:
        try:
            _email(alert, "low_balance", balance=balance)
        except Exception:  # an SMTP outage must not stop the top-up (or the writer)
            log.exception("low-balance email to user %s failed", user_id)
    if alert.auto_topup and alert.stripe_payment_method:
        auto_topup_run.delay(user_id, crossing)


def _email(alert: BalanceAlert, template: str, **context: object) -> None:
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


# ---- automatic top-up ------------------------------------------------------------------


def _stripe() -> stripe.StripeClient:
    from billing.stripe_topups import _client

    return _client()


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
        _email(alert, "auto_topup_failed", outcome=outcome, error=error)
    return outcome


def _charge(alert: BalanceAlert, crossing: int) -> tuple[str, str]:
    cents = alert.topup_cents
    credits = cents * CREDITS_PER_CENT
    try:
        intent = _stripe().v1.payment_intents.create(
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
    services.ledger_post(
        user=alert.user,
        kind=LedgerEntry.Kind.TOPUP,
        amount=credits,
        reference=f"stripe:{intent.id}",
        description=f"Automatic top-up {cents_to_usd(cents)}",
    )
    return BalanceAlert.TopupStatus.SUCCEEDED, ""


def card_setup_checkout(*, user: User, success_url: str, cancel_url: str) -> str:
    """A Stripe Checkout Session in setup mode: the customer saves a card for automatic
    top-ups on Stripe's page (nothing is charged). Returns its URL."""
    alert = alert_for(user=user)
    client = _stripe()
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
    client = _stripe()
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
