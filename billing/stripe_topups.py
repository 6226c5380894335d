"""Top-ups through Stripe Checkout.

The customer pays on Stripe's page; the wallet is credited only from Stripe's signed
`checkout.session.completed` (or `checkout.session.async_payment_succeeded`) webhook,
never from the browser coming back to the success URL. The credit is posted under the
reference `stripe:<checkout session id>`, unique in the ledger, so replayed, duplicated
or reordered events can never credit one payment twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from billing.exchange import USD, Paid
from billing.models import LedgerEntry, StripeEvent
from billing.money import CREDITS_PER_CENT, cents_to_usd
from billing.services import ledger_post

log = logging.getLogger(__name__)

TOPUP_MIN_CENTS = 500  # US$5
TOPUP_MAX_CENTS = 100_000  # US$1,000
TOPUP_PRESETS_CENTS = (500, 1000, 2500, 5000)
CURRENCY = "usd"

# Events that mean "this Checkout Session has been paid". Card payments arrive paid in
# `completed`; delayed methods (bank debits) arrive unpaid there, then succeed later.
_PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}


class StripeNotConfigured(Exception):
    pass


class TopupAmountError(ValueError):
    """The amount asked for is outside what we sell; the message is for the customer."""


class WebhookRejected(Exception):
    """The request is not a genuine Stripe delivery (bad signature or body)."""


class _Unusable(Exception):
    """A genuine event we cannot apply (unknown customer, wrong currency): recorded for
    staff, not retried, since retrying would fail the same way."""


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _client() -> stripe.StripeClient:
    if not is_configured():
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    # Two retries with Stripe's own idempotency keys: a network blip must not make the
    # customer click again (and a retried create never makes two sessions).
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=2
    )


def credits_for_cents(cents: int) -> int:
    return cents * CREDITS_PER_CENT


def topup_amount_validate(*, amount_usd_cents: int) -> int:
    if not TOPUP_MIN_CENTS <= amount_usd_cents <= TOPUP_MAX_CENTS:
        raise TopupAmountError(
            f"Top-ups are between {cents_to_usd(TOPUP_MIN_CENTS)} and "
            f"{cents_to_usd(TOPUP_MAX_CENTS)}."
        )
    return amount_usd_cents


def topup_checkout_create(
    *, user: User, amount_usd_cents: int, success_url: str, cancel_url: str
) -> str:
    """Open a Stripe Checkout Session for `amount_usd_cents` and return the URL of its
    payment page. Nothing is credited here: only the webhook credits."""
    topup_amount_validate(amount_usd_cents=amount_usd_cents)
    credits = credits_for_cents(amount_usd_cents)
    session = _client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": amount_usd_cents,
                        "product_data": {
                            "name": f"nexai credits ({cents_to_usd(amount_usd_cents)})",
                            "description": f"{credits:,} credits",
                        },
                    },
                }
            ],
            "client_reference_id": str(user.pk),
            "metadata": {"user_id": str(user.pk), "credits": str(credits)},
            "customer_email": user.email,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    return session.url


# ---- webhooks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    outcome: str
    action: str
    session_id: str = ""
    user: User | None = None


def stripe_event_receive(*, payload: bytes, signature: str) -> StripeEvent:
    """Verify one webhook delivery, record it, and apply it at most once.

    Raises WebhookRejected for anything not signed by Stripe with our endpoint secret;
    nothing is stored then. An event seen before and handled is returned as it was.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured("STRIPE_WEBHOOK_SECRET is not set")
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
    except (ValueError, KeyError, TypeError, stripe.SignatureVerificationError) as exc:
        raise WebhookRejected(str(exc) or exc.__class__.__name__) from None

    record, created = StripeEvent.objects.get_or_create(
        event_id=event_id, defaults={"type": event_type, "payload": event}
    )
    if not created and record.outcome not in (
        StripeEvent.Outcome.RECEIVED,
        StripeEvent.Outcome.FAILED,
    ):
        return record  # a replay of an event already handled
    try:
        result = _handle(event)
    except _Unusable as exc:
        log.warning("stripe event %s not applied: %s", event_id, exc)
        return _record(record, outcome=StripeEvent.Outcome.FAILED, action="", error=str(exc))
    return _record(
        record,
        outcome=result.outcome,
        action=result.action,
        error="",
        session_id=result.session_id,
        user=result.user,
    )


def _record(record: StripeEvent, **fields: Any) -> StripeEvent:
    for name, value in {**fields, "handled_at": timezone.now()}.items():
        setattr(record, name, value)
    record.save()
    return record


def _handle(event: dict[str, Any]) -> _Result:
    event_type = event["type"]
    if event_type not in _PAID_EVENTS:
        return _Result(StripeEvent.Outcome.IGNORED, f"ignored event type {event_type}")
    session = event.get("data", {}).get("object") or {}
    session_id = str(session.get("id") or "")
    if not session_id.startswith("cs_"):
        raise _Unusable("the event carries no Checkout Session")
    if session.get("payment_status") != "paid":
        # Delayed payment methods: `async_payment_succeeded` will follow if it clears.
        return _Result(
            StripeEvent.Outcome.IGNORED,
            f"session not paid yet ({session.get('payment_status')})",
            session_id,
        )
    user = _customer(session)
    return _credit(session=session, session_id=session_id, user=user)


def _customer(session: dict[str, Any]) -> User:
    reference = session.get("client_reference_id") or (session.get("metadata") or {}).get("user_id")
    user = User.objects.filter(pk=int(reference)).first() if str(reference).isdigit() else None
    if user is None:
        raise _Unusable(f"no customer for client_reference_id {reference!r}")
    return user


def _credit(*, session: dict[str, Any], session_id: str, user: User) -> _Result:
    currency = str(session.get("currency") or "").lower()
    cents = session.get("amount_total")
    if currency != CURRENCY:
        raise _Unusable(f"unsupported currency {currency!r}")
    if not isinstance(cents, int) or isinstance(cents, bool) or cents <= 0:
        raise _Unusable(f"unusable amount_total {cents!r}")
    credits = credits_for_cents(cents)
    entry, created = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.TOPUP,
        amount=credits,
        reference=f"stripe:{session_id}",
        description=f"Stripe Checkout top-up {cents_to_usd(cents)}",
        paid=Paid(amount=cents, currency=USD),
    )
    if not created:
        return _Result(
            StripeEvent.Outcome.ALREADY_CREDITED,
            f"session already credited by ledger entry {entry.pk}",
            session_id,
            user,
        )
    return _Result(
        StripeEvent.Outcome.CREDITED,
        f"credited {credits:,} credits ({cents_to_usd(cents)}) to user {user.pk}",
        session_id,
        user,
    )
