"""Bank transfers to the operator's own account, matched through SePay.

Each customer transfers with their own memo (billing/memos.py). SePay watches the
account and posts every transaction to our webhook (authenticated by the API key
header, `Authorization: Apikey KEY`); the reconciliation job can also read SePay's
transaction list for any webhook that never arrived. Either way a transaction is
stored under SePay's transaction id (unique), so it is applied once, and credited
under the ledger reference `sepay:<transaction id>`.

An incoming transfer whose memo names a customer credits them at the rate of the
moment it arrived. One with no memo, a memo that fails its check character, or a memo
that belongs to nobody waits in the staff queue (admin, "Unmatched bank transfers")
until staff assign it to a customer or dismiss it, each audited. Outgoing transfers
are recorded and ignored.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from billing import live, memos, vietqr
from billing.exchange import VND, Paid, Rate, current_rate, format_vnd
from billing.models import BankTransfer, LedgerEntry, TransferMemo
from billing.services import ledger_post

log = logging.getLogger(__name__)

SYNC_DAYS = 3  # how far back the reconciliation job reads SePay's transactions


class SepayNotConfigured(Exception):
    pass


class WebhookRejected(Exception):
    """Not SePay (wrong API key) or not a transaction; the message says which."""


class TransferStateError(Exception):
    """Staff acted on a transfer that is no longer waiting for them."""


def is_configured() -> bool:
    return bool(
        settings.SEPAY_API_KEY
        and settings.SEPAY_BANK_BIN
        and settings.SEPAY_ACCOUNT_NUMBER
        and settings.SEPAY_ACCOUNT_NAME
        and current_rate()
    )


@dataclass(frozen=True)
class BankDetails:
    """What a customer needs to pay by bank transfer."""

    bank: str
    bin: str
    account_number: str
    account_name: str
    memo: str

    @property
    def qr_payload(self) -> str:
        return vietqr.transfer_payload(
            bin_code=self.bin, account=self.account_number, memo=self.memo
        )


def bank_details_for(*, user: User) -> BankDetails:
    if not is_configured():
        raise SepayNotConfigured("SEPAY_* or NEXAI_VND_PER_USD is not set")
    return BankDetails(
        bank=vietqr.bank_name(settings.SEPAY_BANK_BIN),
        bin=settings.SEPAY_BANK_BIN,
        account_number=settings.SEPAY_ACCOUNT_NUMBER,
        account_name=settings.SEPAY_ACCOUNT_NAME,
        memo=memos.memo_for(user=user),
    )


# ---- receiving -------------------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """One transaction on the account, from a webhook or from SePay's list."""

    sepay_id: str
    direction: str  # "in" or "out"
    amount: int  # đồng
    content: str
    code: str = ""
    gateway: str = ""
    transaction_date: str = ""
    account_number: str = ""
    reference_code: str = ""


def _whole_dong(value: Any) -> int:
    """SePay's amounts: numbers in the webhook, "18067000.00" in the list."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if amount != amount.to_integral_value() or amount < 0:
        raise ValueError(f"not whole đồng: {value!r}")
    return int(amount)


def sepay_webhook_receive(*, payload: bytes, authorization: str) -> BankTransfer:
    """Check the API key SePay sends, then record and apply the transaction once."""
    if not is_configured():
        raise SepayNotConfigured("SEPAY_* or NEXAI_VND_PER_USD is not set")
    scheme, _, key = authorization.strip().partition(" ")
    expected = settings.SEPAY_API_KEY.encode()
    if scheme.lower() != "apikey" or not hmac.compare_digest(key.strip().encode(), expected):
        raise WebhookRejected("missing or wrong API key")
    try:
        body = json.loads(payload)
        item = Transaction(
            sepay_id=str(body["id"]),
            direction=str(body["transferType"]),
            amount=_whole_dong(body["transferAmount"]),
            content=str(body.get("content") or ""),
            code=str(body.get("code") or ""),
            gateway=str(body.get("gateway") or ""),
            transaction_date=str(body.get("transactionDate") or ""),
            account_number=str(body.get("accountNumber") or ""),
            reference_code=str(body.get("referenceCode") or ""),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookRejected(f"not a SePay transaction: {exc}") from None
    if not item.sepay_id or item.direction not in ("in", "out"):
        raise WebhookRejected("not a SePay transaction: no id or transferType")
    return transfer_record(item=item, payload=body, source="webhook")


def transfer_record(*, item: Transaction, payload: dict, source: str) -> BankTransfer:
    """Store the transaction under SePay's id and apply it; one seen before is returned
    as it stands (a replayed webhook, or the job finding one the webhook brought)."""
    rate = current_rate()
    record, _ = BankTransfer.objects.get_or_create(
        sepay_id=item.sepay_id,
        defaults={
            "direction": item.direction,
            "amount": item.amount,
            "content": item.content[:500],
            "code": item.code[:60],
            "gateway": item.gateway[:60],
            "transaction_date": item.transaction_date[:40],
            "account_number": item.account_number[:40],
            "reference_code": item.reference_code[:100],
            "rate": rate.vnd_per_usd if rate else None,
            "rate_date": rate.set_on if rate else None,
            "source": source,
            "payload": payload,
        },
    )
    with transaction.atomic():
        record = BankTransfer.objects.select_for_update().get(pk=record.pk)
        if record.outcome != BankTransfer.Outcome.RECEIVED:
            return record
        record.outcome, record.action = _apply(record)
        record.handled_at = timezone.now()
        record.save()
    return record


def _rate_of(record: BankTransfer) -> Rate:
    if record.rate and record.rate_date:
        return Rate(vnd_per_usd=record.rate, set_on=record.rate_date)
    rate = current_rate()
    if rate is None:
        raise SepayNotConfigured("NEXAI_VND_PER_USD is not set")
    return rate


def _apply(record: BankTransfer) -> tuple[str, str]:
    Outcome = BankTransfer.Outcome
    if record.direction != "in":
        return Outcome.IGNORED, "outgoing transfer"
    if record.amount <= 0:
        return Outcome.IGNORED, "no amount"
    reading = memos.read(record.code, record.content)
    owners = dict(
        TransferMemo.objects.filter(code__in=reading.valid).values_list("code", "user_id")
    )
    if len(set(owners.values())) > 1:
        return Outcome.UNMATCHED, f"memos of several customers: {', '.join(sorted(owners))}"
    if owners:
        code, user_id = next(iter(owners.items()))
        user = User.objects.get(pk=user_id)
        return Outcome.CREDITED, _credit(record, user=user, how=f"memo {code}")
    if reading.valid:
        return Outcome.UNMATCHED, f"memo {reading.valid[0]} belongs to no customer"
    if reading.broken:
        return Outcome.UNMATCHED, f"{reading.broken[0]} fails its check character (a typo?)"
    return Outcome.UNMATCHED, "no NX memo in the transfer"


def _credit(record: BankTransfer, *, user: User, how: str, staff: User | None = None) -> str:
    rate = _rate_of(record)
    credits = rate.credits_for(record.amount)
    entry, _ = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.TOPUP,
        amount=credits,
        reference=record.reference,
        description=f"Bank transfer {format_vnd(record.amount)}",
        created_by=staff,
        paid=Paid(amount=record.amount, currency=VND, rate=rate),
    )
    record.user, record.entry = user, entry
    reference, user_id = record.reference, user.pk
    transaction.on_commit(
        lambda: live.payment_changed(user_id=user_id, reference=reference, status="credited")
    )
    return f"credited {credits:,} credits ({format_vnd(record.amount)}) to user {user.pk} by {how}"


# ---- the staff queue -------------------------------------------------------------------


def _waiting(transfer: BankTransfer) -> BankTransfer:
    record = BankTransfer.objects.select_for_update().get(pk=transfer.pk)
    if record.outcome != BankTransfer.Outcome.UNMATCHED:
        raise TransferStateError(f"transfer {record.sepay_id} is {record.get_outcome_display()}")
    return record


@transaction.atomic
def transfer_assign(*, staff: User, transfer: BankTransfer, user: User, reason: str) -> LedgerEntry:
    """Staff credit an unmatched transfer to the customer it came from, at the rate of
    the day it arrived; audited with the change."""
    record = _waiting(transfer)
    action = _credit(record, user=user, how=f"staff {staff.email}", staff=staff)
    record.outcome, record.action = BankTransfer.Outcome.ASSIGNED, action[:300]
    record.handled_by, record.handled_at = staff, timezone.now()
    record.save()
    assert record.entry is not None
    audit_record(
        actor=staff,
        action="transfer.assign",
        target=record,
        customer=user,
        before={"outcome": BankTransfer.Outcome.UNMATCHED},
        after={
            "outcome": record.outcome,
            "credits": record.entry.amount,
            "vnd": record.amount,
            "rate": record.entry.rate,
            "entry": record.entry.pk,
        },
        reason=reason,
    )
    return record.entry


@transaction.atomic
def transfer_dismiss(*, staff: User, transfer: BankTransfer, reason: str) -> BankTransfer:
    """Staff close an unmatched transfer without crediting anyone (refunded to the
    sender, or not a top-up); audited."""
    record = _waiting(transfer)
    record.outcome, record.action = BankTransfer.Outcome.DISMISSED, f"dismissed: {reason}"[:300]
    record.handled_by, record.handled_at = staff, timezone.now()
    record.save()
    audit_record(
        actor=staff,
        action="transfer.dismiss",
        target=record,
        before={"outcome": BankTransfer.Outcome.UNMATCHED},
        after={"outcome": record.outcome},
        reason=reason,
    )
    return record


# ---- reconciliation against SePay's own list --------------------------------------------


def sepay_transactions_sync(*, days: int = SYNC_DAYS) -> dict[str, int]:
    """Read the account's transactions of the last `days` days from SePay's API and
    apply any we never received (a webhook SePay gave up on). Needs SEPAY_API_TOKEN;
    without it there is nothing to read."""
    if not (settings.SEPAY_API_TOKEN and is_configured()):
        return {}
    since = (timezone.now() - timedelta(days=days)).date().isoformat()
    response = httpx.get(
        settings.SEPAY_API_BASE.rstrip("/") + "/userapi/transactions/list",
        params={
            "account_number": settings.SEPAY_ACCOUNT_NUMBER,
            "transaction_date_min": since,
            "limit": 5000,
        },
        headers={"Authorization": f"Bearer {settings.SEPAY_API_TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    rows = response.json().get("transactions") or []
    known = set(
        BankTransfer.objects.filter(sepay_id__in=[str(r.get("id")) for r in rows]).values_list(
            "sepay_id", flat=True
        )
    )
    new = 0
    for row in rows:
        if str(row.get("id")) in known:
            continue
        transfer_record(item=_listed(row), payload=row, source="sync")
        new += 1
    if new:
        log.warning("SePay sync found %s transactions no webhook brought", new)
    return {"read": len(rows), "new": new}


def _listed(row: dict[str, Any]) -> Transaction:
    amount_in, amount_out = (
        _whole_dong(row.get("amount_in") or 0),
        _whole_dong(row.get("amount_out") or 0),
    )
    return Transaction(
        sepay_id=str(row["id"]),
        direction="in" if amount_in > 0 else "out",
        amount=amount_in or amount_out,
        content=str(row.get("transaction_content") or ""),
        code=str(row.get("code") or ""),
        gateway=str(row.get("bank_brand_name") or ""),
        transaction_date=str(row.get("transaction_date") or ""),
        account_number=str(row.get("account_number") or ""),
        reference_code=str(row.get("reference_number") or ""),
    )
