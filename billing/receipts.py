"""Receipts for money received: a top-up (Stripe, automatic or not) or a redeemed code.
Printable HTML (the browser's "Save as PDF" makes the PDF), with the operator's
details from settings (NEXAI_OPERATOR_*)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from billing.models import LedgerEntry
from billing.money import credits_to_usd

RECEIPT_KINDS = (LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.REDEMPTION)


def receipt_number(entry: LedgerEntry) -> str:
    # Stable and unique: the ledger entry's id, dated, so receipts sort by time.
    return f"R-{entry.created_at:%Y%m%d}-{entry.pk:06d}"


def receipt_context(*, entry: LedgerEntry) -> dict[str, Any]:
    if entry.kind == LedgerEntry.Kind.REDEMPTION:
        method, item = "Redemption code", f"Credits from code {entry.reference}"
    elif entry.reference.startswith("stripe:pi_"):
        method, item = "Card (automatic top-up, Stripe)", "Prepaid API credits"
    else:
        method, item = "Card (Stripe Checkout)", "Prepaid API credits"
    return {
        "entry": entry,
        "number": receipt_number(entry),
        "customer": entry.wallet.user,
        "method": method,
        "item": item,
        "amount_usd": credits_to_usd(entry.amount),
        "credits": f"{entry.amount:,}",
        "operator": {
            "name": settings.NEXAI_OPERATOR_NAME,
            "address": settings.NEXAI_OPERATOR_ADDRESS,
            "email": settings.NEXAI_OPERATOR_EMAIL,
            "tax_id": settings.NEXAI_OPERATOR_TAX_ID,
        },
    }
