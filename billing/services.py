"""Every change of a balance goes through `ledger_post` (or its batch twin for usage),
so that balance == sum(entries) always holds and a reference is applied at most once."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import ApiKey, User
from billing.models import LedgerEntry, Wallet

# Credits that move an account to the paid plan: anything but the signup gift.
_PAID_KINDS = {LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.ADJUSTMENT}


class InsufficientFunds(Exception):
    pass


class BadAmount(ValueError):
    pass


def wallet_for(*, user: User) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user=user)
    return wallet


def ledger_post(
    *,
    user: User,
    kind: str,
    amount: int,
    reference: str,
    api_key: ApiKey | None = None,
    description: str = "",
    created_by: User | None = None,
    allow_negative: bool = True,
) -> tuple[LedgerEntry, bool]:
    """Apply one balance change. Returns (entry, created); a reference already applied
    returns its original entry with created=False and changes nothing."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise BadAmount("amounts are whole credits")
    if not reference:
        raise BadAmount("every ledger entry needs a reference")
    wallet_id = wallet_for(user=user).pk
    try:
        with transaction.atomic():
            # The row lock serialises concurrent posts to one wallet, so each entry's
            # balance_after is exact and the cached balance never drifts.
            wallet = Wallet.objects.select_for_update().get(pk=wallet_id)
            existing = LedgerEntry.objects.filter(reference=reference).first()
            if existing:
                return existing, False
            new_balance = wallet.balance + amount
            if not allow_negative and amount < 0 and new_balance < 0:
                raise InsufficientFunds(f"balance {wallet.balance} cannot cover {-amount}")
            entry = LedgerEntry.objects.create(
                wallet=wallet,
                kind=kind,
                amount=amount,
                balance_after=new_balance,
                reference=reference,
                api_key=api_key,
                description=description[:300],
                created_by=created_by,
            )
            _apply(wallet=wallet, kind=kind, amount=amount, api_key_id=api_key and api_key.pk)
            return entry, True
    except IntegrityError:
        # Same reference posted concurrently to another wallet: the constraint won.
        existing = LedgerEntry.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return existing, False


def _apply(*, wallet: Wallet, kind: str, amount: int, api_key_id: int | None) -> None:
    changes: dict[str, object] = {"balance": F("balance") + amount, "updated_at": timezone.now()}
    if kind in (LedgerEntry.Kind.USAGE, LedgerEntry.Kind.REFUND):
        # Usage is negative and a refund positive: both move lifetime spend the other way.
        changes["total_spent"] = F("total_spent") - amount
        if api_key_id:
            ApiKey.objects.filter(pk=api_key_id).update(spent=F("spent") - amount)
    if kind in _PAID_KINDS and amount > 0:
        changes["paid"] = True
    Wallet.objects.filter(pk=wallet.pk).update(**changes)


def signup_grant(*, user: User) -> LedgerEntry | None:
    """The signup gift, once per user however often this runs."""
    amount = settings.NEXAI_SIGNUP_CREDITS
    if amount <= 0:
        return None
    entry, _ = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.SIGNUP_GRANT,
        amount=amount,
        reference=f"signup:{user.pk}",
        description="Welcome credits",
    )
    return entry


def credits_grant(
    *,
    user: User,
    amount: int,
    reference: str,
    description: str = "",
    created_by: User | None = None,
) -> LedgerEntry:
    """A staff grant or correction (negative amounts allowed)."""
    entry, _ = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        reference=reference,
        description=description,
        created_by=created_by,
    )
    return entry


@dataclass(frozen=True)
class Drift:
    wallet_id: int
    balance: int
    ledger_sum: int


def wallets_verify() -> list[Drift]:
    """Every wallet whose cached balance differs from the sum of its entries."""
    sums = dict(
        LedgerEntry.objects.values("wallet_id")
        .annotate(total=Sum("amount"))
        .values_list("wallet_id", "total")
    )
    drifts = []
    for wallet_id, balance in Wallet.objects.values_list("pk", "balance").iterator():
        total = sums.get(wallet_id) or 0
        if total != balance:
            drifts.append(Drift(wallet_id=wallet_id, balance=balance, ledger_sum=total))
    return drifts
