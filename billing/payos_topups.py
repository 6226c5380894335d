"""Top-ups in đồng through payOS (VietQR payment links), with payOS's official SDK.

The customer picks an amount; we open a payment link at payOS under a fresh order
code and show its VietQR on our own page (drawn here from the payload payOS returns).
The wallet is credited only from payOS's webhook, whose checksum the SDK verifies,
under the ledger reference `payos:<order code>`: replayed, reordered or late webhooks,
and the browser coming back to the return page, can never credit an order twice.

What payOS can send that is not the payment asked for is credited as paid and left
for staff (`PayosOrder.needs_review`): another amount than the order's, a payment after
the link was cancelled or expired. A second bank transaction for an order already
credited is not credited (the order code credits once) and is left for staff too.
Cancelled and expired links credit nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from payos import PayOS, PayOSError, WebhookError
from payos.types import CreatePaymentLinkRequest, ItemData

from accounts.models import User
from billing import live
from billing.exchange import VND, Paid, current_rate, format_vnd
from billing.models import LedgerEntry, PayosOrder, PayosWebhook
from billing.services import ledger_post

log = logging.getLogger(__name__)

TOPUP_MIN_VND = 10_000
TOPUP_MAX_VND = 50_000_000
TOPUP_PRESETS_VND = (50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000)
LINK_LIFETIME = timedelta(minutes=15)
# What the customer's bank statement says. payOS allows 9 characters on accounts that
# are not linked to it (25 on linked ones), and adds its own payment code in front.
DESCRIPTION = "NAP NEXAI"
# Order codes are random (payOS wants a positive integer up to 2**53 - 1): another
# environment on the same payOS channel cannot collide with ours by counting alike.
_ORDER_CODES = (10**14, 9 * 10**14)
_PAID = "00"


class PayosNotConfigured(Exception):
    pass


class TopupAmountError(ValueError):
    """The amount asked for is outside what we sell; the message is for the customer."""


class PayosUnavailable(Exception):
    """payOS refused the request or could not be reached."""


class WebhookRejected(Exception):
    """Not a genuine payOS delivery (bad checksum or body)."""


def is_configured() -> bool:
    return bool(
        settings.PAYOS_CLIENT_ID
        and settings.PAYOS_API_KEY
        and settings.PAYOS_CHECKSUM_KEY
        and current_rate()
    )


def _client() -> PayOS:
    if not is_configured():
        raise PayosNotConfigured("PAYOS_* or NEXAI_VND_PER_USD is not set")
    return PayOS(
        client_id=settings.PAYOS_CLIENT_ID,
        api_key=settings.PAYOS_API_KEY,
        checksum_key=settings.PAYOS_CHECKSUM_KEY,
        base_url=settings.PAYOS_BASE_URL or None,
        timeout=20,
        max_retries=1,
    )


def topup_amount_validate(*, amount_vnd: int) -> int:
    if not TOPUP_MIN_VND <= amount_vnd <= TOPUP_MAX_VND:
        raise TopupAmountError(
            f"Top-ups are between {format_vnd(TOPUP_MIN_VND)} and {format_vnd(TOPUP_MAX_VND)}."
        )
    return amount_vnd


def _new_order(*, user: User, amount_vnd: int) -> PayosOrder:
    # Stored before payOS is called: a webhook can never name an order we do not know.
    for _ in range(5):
        try:
            with transaction.atomic():
                return PayosOrder.objects.create(
                    order_code=secrets.randbelow(_ORDER_CODES[1] - _ORDER_CODES[0])
                    + _ORDER_CODES[0],
                    user=user,
                    amount=amount_vnd,
                    expires_at=timezone.now() + LINK_LIFETIME,
                )
        except IntegrityError:
            continue
    raise RuntimeError("no free payOS order code")


def payos_order_create(
    *, user: User, amount_vnd: int, return_url: str, cancel_url: str
) -> PayosOrder:
    """Open a payment link at payOS for `amount_vnd` đồng and keep what the payment
    page shows (QR payload, bank, account). Nothing is credited here."""
    topup_amount_validate(amount_vnd=amount_vnd)
    client = _client()
    order = _new_order(user=user, amount_vnd=amount_vnd)
    request = CreatePaymentLinkRequest(
        order_code=order.order_code,
        amount=amount_vnd,
        description=DESCRIPTION,
        items=[ItemData(name="nexai credits", quantity=1, price=amount_vnd)],
        buyer_email=user.email,
        return_url=return_url,
        cancel_url=cancel_url,
        expired_at=int(order.expires_at.timestamp()),
    )
    try:
        with client:
            link = client.payment_requests.create(request)
    except PayOSError as exc:
        # payOS may have made the link even if its answer was lost: the order stays,
        # closed, so that a payment that still arrives is credited (and flagged).
        _close(order, PayosOrder.Status.CANCELLED, note=f"payOS did not open the link: {exc}")
        log.warning("payOS refused order %s: %s", order.order_code, exc)
        raise PayosUnavailable(str(exc)) from None
    order.payment_link_id = link.payment_link_id
    order.checkout_url = link.checkout_url
    order.qr_code = link.qr_code
    order.bank_bin = link.bin
    order.account_number = link.account_number
    order.account_name = link.account_name
    order.description = link.description[:50]
    if link.expired_at:
        order.expires_at = datetime.fromtimestamp(link.expired_at, tz=UTC)
    order.save()
    return order


def _close(order: PayosOrder, status: str, *, note: str = "") -> None:
    PayosOrder.objects.filter(pk=order.pk, status=PayosOrder.Status.PENDING).update(
        status=status, closed_at=timezone.now(), review_note=note[:300]
    )
    order.refresh_from_db()
    if order.status == status:
        transaction.on_commit(
            lambda: live.payment_changed(
                user_id=order.user_id, reference=order.reference, status=status
            )
        )


def payos_order_cancel(*, order: PayosOrder) -> PayosOrder:
    """The customer gave up: cancel the link at payOS, then here. A link payOS says is
    already paid is left alone (its webhook credits it)."""
    if order.status != PayosOrder.Status.PENDING:
        return order
    try:
        with _client() as client:
            link = client.payment_requests.cancel(order.order_code, "Customer cancelled")
    except PayOSError as exc:
        log.warning("payOS could not cancel order %s: %s", order.order_code, exc)
        return payos_order_refresh(order=order)
    if link.status == "CANCELLED":
        _close(order, PayosOrder.Status.CANCELLED)
    return order


def payos_order_refresh(*, order: PayosOrder) -> PayosOrder:
    """Bring a pending order's state from payOS: cancelled or expired there closes it
    here. A paid link waits for its webhook, the only thing that credits."""
    if order.status != PayosOrder.Status.PENDING:
        return order
    try:
        with _client() as client:
            link = client.payment_requests.get(order.order_code)
    except PayOSError as exc:
        log.warning("payOS could not say how order %s stands: %s", order.order_code, exc)
        return order
    if link.status == "CANCELLED":
        _close(order, PayosOrder.Status.CANCELLED)
    elif link.status == "EXPIRED":
        _close(order, PayosOrder.Status.EXPIRED)
    return order


def payos_orders_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic job: pending orders past their expiry are asked about at payOS
    (and closed); one payOS reports paid with no webhook here after ten minutes is
    flagged for staff (the webhook URL may be wrong: docs/operations.md)."""
    now = now or timezone.now()
    counts = {"closed": 0, "flagged": 0}
    for order in PayosOrder.objects.filter(
        status=PayosOrder.Status.PENDING, expires_at__lt=now
    ).order_by("expires_at")[:200]:
        try:
            with _client() as client:
                link = client.payment_requests.get(order.order_code)
        except PayOSError as exc:
            log.warning("payOS could not say how order %s stands: %s", order.order_code, exc)
            continue
        if link.status in ("CANCELLED", "EXPIRED"):
            status = link.status.lower()
            _close(order, status)
            counts["closed"] += 1
        elif link.status == "PAID" and order.expires_at < now - timedelta(minutes=10):
            note = "payOS reports this order paid, but its webhook never arrived"
            if PayosOrder.objects.filter(pk=order.pk, needs_review=False).update(
                needs_review=True, review_note=note
            ):
                log.error("payOS order %s: %s", order.order_code, note)
                counts["flagged"] += 1
    return counts


# ---- webhooks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Notice:
    """A verified payment notice, as the handler needs it."""

    order_code: int
    amount: int
    reference: str
    currency: str
    paid: bool  # payOS says the payment succeeded
    code: str


def _verify(payload: bytes) -> tuple[_Notice, dict]:
    try:
        with _client() as client:
            data = client.webhooks.verify(payload)
        body = json.loads(payload)
    except (WebhookError, ValueError, TypeError) as exc:
        raise WebhookRejected(str(exc) or exc.__class__.__name__) from None
    notice = _Notice(
        order_code=data.order_code,
        amount=data.amount,
        reference=data.reference,
        currency=data.currency,
        paid=str(body.get("code")) == _PAID and data.code == _PAID,
        code=f"{body.get('code')}/{data.code}",
    )
    return notice, body


def payos_webhook_receive(*, payload: bytes) -> PayosWebhook:
    """Verify one payOS delivery (checksum, through the SDK), record it under its order
    code and bank reference, and apply it at most once. Raises WebhookRejected for a
    delivery payOS did not sign with our checksum key; nothing is stored then."""
    notice, body = _verify(payload)
    delivery = f"{notice.order_code}:{notice.reference}"
    record, _ = PayosWebhook.objects.get_or_create(
        delivery=delivery,
        defaults={
            "order_code": notice.order_code,
            "reference": notice.reference[:100],
            "amount": notice.amount,
            "payload": body,
        },
    )
    with transaction.atomic():
        # The delivery's row lock makes concurrent copies of one delivery take turns.
        record = PayosWebhook.objects.select_for_update().get(pk=record.pk)
        if record.outcome != PayosWebhook.Outcome.RECEIVED:
            return record  # a replay of a delivery already handled
        outcome, action, user = _apply(notice, delivery=delivery)
        record.outcome, record.action, record.user = outcome, action[:300], user
        record.handled_at = timezone.now()
        record.save()
    return record


def _apply(notice: _Notice, *, delivery: str) -> tuple[str, str, User | None]:
    Outcome = PayosWebhook.Outcome
    if not notice.paid:
        return Outcome.IGNORED, f"not a successful payment (code {notice.code})", None
    order = PayosOrder.objects.select_for_update().filter(order_code=notice.order_code).first()
    if order is None:
        # payOS's test delivery when a webhook URL is saved names order 123.
        log.warning("payOS webhook for order %s, which is not ours", notice.order_code)
        return Outcome.IGNORED, f"no order {notice.order_code} here", None
    if notice.currency != VND:
        log.error("payOS order %s paid in %s", order.order_code, notice.currency)
        return Outcome.IGNORED, f"unsupported currency {notice.currency!r}", order.user
    if order.entry_id is not None:
        return _second_payment(order, notice, delivery=delivery)
    return _credit(order, notice)


def _second_payment(
    order: PayosOrder, notice: _Notice, *, delivery: str
) -> tuple[str, str, User | None]:
    first = PayosWebhook.objects.filter(
        order_code=order.order_code, outcome=PayosWebhook.Outcome.CREDITED
    ).first()
    if first is None or first.delivery == delivery:
        return PayosWebhook.Outcome.ALREADY_CREDITED, "order already credited", order.user
    note = (
        f"a second payment of {format_vnd(notice.amount)} (reference {notice.reference}) "
        f"for an order already credited: refund it or credit it by hand"
    )
    PayosOrder.objects.filter(pk=order.pk).update(needs_review=True, review_note=note[:300])
    log.warning("payOS order %s: %s", order.order_code, note)
    return PayosWebhook.Outcome.REVIEW, note, order.user


def _credit(order: PayosOrder, notice: _Notice) -> tuple[str, str, User | None]:
    rate = current_rate()
    assert rate is not None  # is_configured() said so before the checksum was checked
    credits = rate.credits_for(notice.amount)
    entry, _ = ledger_post(
        user=order.user,
        kind=LedgerEntry.Kind.TOPUP,
        amount=credits,
        reference=order.reference,
        description=f"VietQR (payOS) {format_vnd(notice.amount)}",
        paid=Paid(amount=notice.amount, currency=VND, rate=rate),
    )
    notes = []
    if notice.amount != order.amount:
        notes.append(f"paid {format_vnd(notice.amount)} for an order of {format_vnd(order.amount)}")
    if order.status != PayosOrder.Status.PENDING:
        notes.append(f"paid after the link was {order.status}")
    order.status = PayosOrder.Status.PAID
    order.paid_amount, order.paid_at, order.entry = notice.amount, timezone.now(), entry
    if notes:
        order.needs_review, order.review_note = True, "; ".join(notes)[:300]
    order.save()
    transaction.on_commit(
        lambda: live.payment_changed(
            user_id=order.user_id, reference=order.reference, status=order.status
        )
    )
    action = f"credited {credits:,} credits ({format_vnd(notice.amount)}) to user {order.user_id}"
    return PayosWebhook.Outcome.CREDITED, action + (f"; {notes[0]}" if notes else ""), order.user
