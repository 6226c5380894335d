"""Receipts for money received: a top-up (Stripe, automatic or not, VietQR through
payOS, a bank transfer) or a redeemed code. Printable HTML (the browser's "Save as PDF"
makes the PDF), in the customer's language, with the operator's details from settings
(NEXAI_OPERATOR_*). A payment in đồng shows what was paid, the rate used and the
credits it bought, all as recorded on the ledger entry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from billing.exchange import VND, format_vnd
from billing.models import LedgerEntry
from billing.money import cents_to_usd, credits_to_usd

RECEIPT_KINDS = (LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.REDEMPTION)


def receipt_number(entry: LedgerEntry) -> str:
    # Stable and unique: the ledger entry's id, dated, so receipts sort by time.
    return f"R-{entry.created_at:%Y%m%d}-{entry.pk:06d}"


def _method(entry: LedgerEntry) -> tuple[str, str]:
    if entry.kind == LedgerEntry.Kind.REDEMPTION:
        return _("Redemption code"), _("Credits from code %(code)s") % {"code": entry.reference}
    item = _("Prepaid API credits")
    if entry.reference.startswith("payos:"):
        return _("VietQR (payOS)"), item
    if entry.reference.startswith("sepay:"):
        return _("Bank transfer"), item
    if entry.reference.startswith("stripe:pi_"):
        return _("Card (automatic top-up, Stripe)"), item
    return _("Card (Stripe Checkout)"), item


def _paid(entry: LedgerEntry) -> str:
    """What the customer paid, in the currency they paid in."""
    if entry.paid_amount is None:
        return credits_to_usd(entry.amount)
    if entry.paid_currency == VND:
        return format_vnd(entry.paid_amount)
    return cents_to_usd(entry.paid_amount)


def receipt_context(*, entry: LedgerEntry) -> dict[str, Any]:
    method, item = _method(entry)
    in_dong = entry.paid_currency == VND and entry.rate is not None
    return {
        "entry": entry,
        "number": receipt_number(entry),
        "customer": entry.wallet.user,
        "method": method,
        "item": item,
        "amount_usd": credits_to_usd(entry.amount),
        "credits": f"{entry.amount:,}",
        "paid": _paid(entry),
        "in_dong": in_dong,
        "rate": format_vnd(entry.rate) if in_dong else "",
        "operator": {
            "name": settings.NEXAI_OPERATOR_NAME,
            "address": settings.NEXAI_OPERATOR_ADDRESS,
            "email": settings.NEXAI_OPERATOR_EMAIL,
            "tax_id": settings.NEXAI_OPERATOR_TAX_ID,
        },
    }
