"""Every change of a balance goes through `ledger_post` (or its batch twin for usage),
so that balance == sum(entries) always holds and a reference is applied at most once."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import ApiKey, User
from billing import balances, live
from billing.models import LedgerEntry, Wallet

# Credits that move an account to the paid plan: anything but the signup gift.
_PAID_KINDS = {
    LedgerEntry.Kind.TOPUP,
    LedgerEntry.Kind.ADJUSTMENT,
    LedgerEntry.Kind.REDEMPTION,
}


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
    counts_as_paid: bool | None = None,
) -> tuple[LedgerEntry, bool]:
    """Apply one balance change. Returns (entry, created); a reference already applied
    returns its original entry with created=False and changes nothing. Whether a credit
    moves the account to the paid plan follows its kind unless `counts_as_paid` says."""
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
            _apply(
                wallet=wallet,
                kind=kind,
                amount=amount,
                api_key_id=api_key and api_key.pk,
                counts_as_paid=counts_as_paid,
            )
            return entry, True
    except IntegrityError:
        # Same reference posted concurrently to another wallet: the constraint won.
        existing = LedgerEntry.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return existing, False


def _apply(
    *,
    wallet: Wallet,
    kind: str,
    amount: int,
    api_key_id: int | None,
    counts_as_paid: bool | None = None,
) -> None:
    changes: dict[str, object] = {
        "balance": F("balance") + amount,
        "version": F("version") + 1,
        "updated_at": timezone.now(),
    }
    spent = wallet.total_spent
    if kind in (LedgerEntry.Kind.USAGE, LedgerEntry.Kind.REFUND):
        # Usage is negative and a refund positive: both move lifetime spend the other way.
        changes["total_spent"] = F("total_spent") - amount
        spent -= amount
        if api_key_id:
            ApiKey.objects.filter(pk=api_key_id).update(spent=F("spent") - amount)
    if counts_as_paid is None:
        counts_as_paid = kind in _PAID_KINDS
    paid = wallet.paid or (counts_as_paid and amount > 0)
    if paid and not wallet.paid:
        changes["paid"] = True
    Wallet.objects.filter(pk=wallet.pk).update(**changes)
    _after_commit(
        user_id=wallet.user_id,
        balance=wallet.balance + amount,
        version=wallet.version + 1,
        paid=paid,
        total_spent=spent,
    )


def _after_commit(
    *, user_id: int, balance: int, version: int, paid: bool, total_spent: int, applied: int = 0
) -> None:
    """Once committed: refresh the gateway's copy of the wallet, and tell open dashboards."""

    def run() -> None:
        balances.publish(
            user_id=user_id, balance=balance, version=version, paid=paid, applied=applied
        )
        live.balance_changed(user_id=user_id, balance=balance, total_spent=total_spent)

    transaction.on_commit(run)


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
    counts_as_paid: bool = True,
) -> LedgerEntry:
    """A staff grant or correction (negative amounts allowed). `counts_as_paid=False`
    grants credits without moving the account to the paid plan (a goodwill gesture)."""
    entry, _ = ledger_post(
        user=user,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        reference=reference,
        description=description,
        created_by=created_by,
        counts_as_paid=counts_as_paid,
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


@dataclass(frozen=True)
class UsageCharge:
    """One request's charge, as the gateway settled it."""

    reference: str  # the request id
    user_id: int
    api_key_id: int | None
    amount: int  # credits, >= 0
    description: str = ""


@dataclass(frozen=True)
class WalletState:
    balance: int
    version: int
    paid: bool
    total_spent: int
    applied: int  # the batch's charges for this wallet, all now in the ledger


def usage_post_batch(charges: list[UsageCharge]) -> dict[int, WalletState]:
    """Write many usage charges at once: one entry per charge with a positive amount,
    one update per wallet and per key. References already in the ledger (a batch
    replayed after a crash) are skipped. Must run inside a transaction; the caller
    refreshes the wallet copies with the returned states once it has committed."""
    by_user: dict[int, list[UsageCharge]] = {}
    for charge in charges:
        by_user.setdefault(charge.user_id, []).append(charge)
    existing = set(
        LedgerEntry.objects.filter(reference__in=[c.reference for c in charges]).values_list(
            "reference", flat=True
        )
    )
    missing = set(by_user) - set(
        Wallet.objects.filter(user_id__in=by_user).values_list("user_id", flat=True)
    )
    Wallet.objects.bulk_create([Wallet(user_id=u) for u in missing], ignore_conflicts=True)
    # Lock wallets in id order so two writers can never deadlock.
    wallets = Wallet.objects.select_for_update().filter(user_id__in=by_user).order_by("pk")
    states: dict[int, WalletState] = {}
    for wallet in wallets:
        batch = by_user[wallet.user_id]
        new = [c for c in batch if c.amount > 0 and c.reference not in existing]
        states[wallet.user_id] = _post_usage(wallet, new, applied=sum(c.amount for c in batch))
    return states


def _post_usage(wallet: Wallet, new: list[UsageCharge], *, applied: int) -> WalletState:
    balance = wallet.balance
    entries: list[LedgerEntry] = []
    per_key: dict[int, int] = {}
    for charge in new:
        balance -= charge.amount
        entries.append(
            LedgerEntry(
                wallet=wallet,
                kind=LedgerEntry.Kind.USAGE,
                amount=-charge.amount,
                balance_after=balance,
                reference=charge.reference,
                api_key_id=charge.api_key_id,
                description=charge.description[:300],
            )
        )
        if charge.api_key_id:
            per_key[charge.api_key_id] = per_key.get(charge.api_key_id, 0) + charge.amount
    spent = wallet.balance - balance
    version = wallet.version + (1 if entries else 0)
    if entries:
        LedgerEntry.objects.bulk_create(entries)
        Wallet.objects.filter(pk=wallet.pk).update(
            balance=balance,
            total_spent=F("total_spent") + spent,
            version=version,
            updated_at=timezone.now(),
        )
        for key_id, amount in per_key.items():
            ApiKey.objects.filter(pk=key_id).update(spent=F("spent") + amount)
    return WalletState(
        balance=balance,
        version=version,
        paid=wallet.paid,
        total_spent=wallet.total_spent + spent,
        applied=applied,
    )
