"""Redemption codes: staff generate batches; a customer redeems a code once.

A code credits exactly once: its row is locked (`select_for_update`) while it is
checked and marked redeemed, and the ledger entry's reference is the code itself, unique
in the database, so even a path that skipped the lock could not credit it twice.
Guessing is rate-limited per user and per IP address in the shared cache.
"""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from billing.models import LedgerEntry, RedemptionBatch, RedemptionCode
from billing.money import credits_to_usd
from billing.services import ledger_post

# Crockford's base32 without I, L, O, U: nothing a customer can misread when typing.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUPS, _GROUP_LEN = 4, 4  # 16 characters, 80 random bits
PREFIX = "NX"
MAX_BATCH = 10_000


class RedeemError(Exception):
    """Why a code was not credited; the message is for the customer."""


class TooManyAttempts(RedeemError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many attempts. Try again in {max(1, retry_after // 60)} minutes.")
        self.retry_after = retry_after


def code_generate() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    groups = [chars[i : i + _GROUP_LEN] for i in range(0, len(chars), _GROUP_LEN)]
    return "-".join([PREFIX, *groups])


def code_normalize(text: str) -> str:
    """What the customer typed, in the stored form: case, spaces and dashes do not
    matter, and the letters Crockford reads as digits are read as them."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    raw = raw.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    if raw.startswith(PREFIX):
        raw = raw[len(PREFIX) :]
    groups = [raw[i : i + _GROUP_LEN] for i in range(0, len(raw), _GROUP_LEN)]
    return "-".join([PREFIX, *groups])


@transaction.atomic
def batch_create(
    *,
    staff: User,
    value: int,
    count: int,
    expires_at: datetime | None = None,
    per_customer_limit: int | None = None,
    counts_as_paid: bool = True,
    note: str = "",
) -> RedemptionBatch:
    if value <= 0 or not 1 <= count <= MAX_BATCH:
        raise ValueError(f"a batch is 1 to {MAX_BATCH:,} codes of a positive value")
    batch = RedemptionBatch.objects.create(
        value=value,
        count=count,
        expires_at=expires_at,
        per_customer_limit=per_customer_limit,
        counts_as_paid=counts_as_paid,
        note=note,
        created_by=staff,
    )
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(code_generate())
    RedemptionCode.objects.bulk_create(RedemptionCode(batch=batch, code=c) for c in codes)
    audit_record(
        actor=staff,
        action="redemption.batch_create",
        target=batch,
        after={
            "value": value,
            "count": count,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "per_customer_limit": per_customer_limit,
            "counts_as_paid": counts_as_paid,
            "total": value * count,
        },
        reason=note,
    )
    return batch


def batch_csv(batch: RedemptionBatch) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["code", "value_usd", "credits", "expires_at", "status", "redeemed_by", "redeemed_at"]
    )
    expires = batch.expires_at.isoformat() if batch.expires_at else ""
    for code in batch.codes.select_related("redeemed_by").order_by("id"):
        writer.writerow(
            [
                code.code,
                credits_to_usd(batch.value),
                batch.value,
                expires,
                code_status(code, batch),
                code.redeemed_by.email if code.redeemed_by else "",
                code.redeemed_at.isoformat() if code.redeemed_at else "",
            ]
        )
    return out.getvalue()


def code_status(code: RedemptionCode, batch: RedemptionBatch) -> str:
    if code.redeemed_at:
        return "redeemed"
    if batch.expires_at and batch.expires_at <= timezone.now():
        return "expired"
    return "unused"


# ---- redeeming -------------------------------------------------------------------------


def _attempt_keys(user: User, ip: str) -> list[str]:
    return [f"redeem-attempts:user:{user.pk}", f"redeem-attempts:ip:{ip}"]


def _count_attempt(keys: list[str]) -> None:
    """Count this attempt first, then refuse beyond the limit: concurrent guesses can
    never all slip through between a check and an increment."""
    limit = settings.NEXAI_REDEEM_ATTEMPTS
    window = settings.NEXAI_REDEEM_WINDOW_SECONDS
    over = False
    for key in keys:
        cache.add(key, 0, timeout=window)
        try:
            over |= cache.incr(key) > limit
        except ValueError:  # expired between add and incr: a fresh window
            cache.set(key, 1, timeout=window)
    if over:
        raise TooManyAttempts(window)


def _forgive_attempt(keys: list[str]) -> None:
    # A code that worked is not a guess: a reseller's customer may redeem many.
    for key in keys:
        with contextlib.suppress(ValueError):
            cache.decr(key)


@dataclass(frozen=True)
class Redeemed:
    entry: LedgerEntry
    code: str
    value: int


def code_redeem(*, user: User, code: str, ip: str) -> Redeemed:
    """Credit `code` to `user`, exactly once however many sessions try at the same time.
    Raises RedeemError (or TooManyAttempts) with a message for the customer."""
    keys = _attempt_keys(user, ip or "unknown")
    _count_attempt(keys)
    normalized = code_normalize(code)
    redeemed = _redeem(user=user, code=normalized)
    _forgive_attempt(keys)
    return redeemed


@transaction.atomic
def _redeem(*, user: User, code: str) -> Redeemed:
    # Lock order: code, batch, wallet (ledger_post), the same for every redemption.
    row = RedemptionCode.objects.select_for_update().filter(code=code).first()
    if row is None:
        raise RedeemError("This code is not valid. Check it and try again.")
    if row.redeemed_at is not None:
        if row.redeemed_by_id == user.pk:
            raise RedeemError("You have already redeemed this code.")
        raise RedeemError("This code has already been used.")
    batch = RedemptionBatch.objects.select_for_update().get(pk=row.batch_id)
    if batch.expires_at and batch.expires_at <= timezone.now():
        raise RedeemError("This code has expired.")
    if batch.per_customer_limit is not None:
        used = batch.codes.filter(redeemed_by=user).count()
        if used >= batch.per_customer_limit:
            raise RedeemError("You have redeemed as many codes of this kind as allowed.")
    entry, created = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.REDEMPTION,
        amount=batch.value,
        reference=code,
        description=f"Redemption code {code}",
        counts_as_paid=batch.counts_as_paid,
    )
    if not created:  # cannot happen behind the row lock; the constraint is the backstop
        raise RedeemError("This code has already been used.")
    row.redeemed_by, row.redeemed_at, row.entry = user, entry.created_at, entry
    row.save(update_fields=["redeemed_by", "redeemed_at", "entry"])
    return Redeemed(entry=entry, code=code, value=batch.value)
