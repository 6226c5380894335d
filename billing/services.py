"""Every change of a balance goes through `ledger_post` (or its batch twin for usage),
so that balance == sum(entries) always holds and a reference is applied at most once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import ApiKey, User
from billing import balances, live
from billing.balances import WalletSnapshot
from billing.exchange import Paid
from billing.models import LedgerEntry, Wallet
from core.db import update_each

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
    paid: Paid | None = None,
) -> tuple[LedgerEntry, bool]:
    """Apply one balance change. Returns (entry, created); a reference already applied
    returns its original entry with created=False and changes nothing. Whether a credit
    moves the account to the paid plan follows its kind unless `counts_as_paid` says.
    `paid` is what the customer paid for a top-up (amount, currency, rate), kept on
    the entry."""
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
                **_paid_fields(paid),
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


def _paid_fields(paid: Paid | None) -> dict[str, object]:
    if paid is None:
        return {}
    return {
        "paid_amount": paid.amount,
        "paid_currency": paid.currency,
        "rate": paid.rate.vnd_per_usd if paid.rate else None,
        "rate_date": paid.rate.set_on if paid.rate else None,
    }


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
    *, user_id: int, balance: int, version: int, paid: bool, total_spent: int
) -> None:
    """Once committed: refresh the gateway's copy of the wallet, and tell open dashboards."""
    snapshot = WalletSnapshot(
        user_id=user_id, balance=balance, version=version, paid=paid, total_spent=total_spent
    )

    def run() -> None:
        balances.publish(snapshot)
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


@dataclass(slots=True)
class UsageCharges:
    """A batch's charges summed: what posting them needs, without an object per
    request (a batch holds thousands)."""

    per_user: dict[int, tuple[int, int]]  # user id -> (credits, requests)
    per_key: dict[int, tuple[int, datetime]]  # key id -> (credits, last request's time)

    @classmethod
    def of(cls, charges: Iterable[tuple[int, int | None, int, float]]) -> UsageCharges:
        """From (user id, key id or None, credits >= 0, unix time) per request."""
        per_user: dict[int, tuple[int, int]] = {}
        keys: dict[int, tuple[int, float]] = {}
        for user_id, key_id, amount, at in charges:
            credits, requests = per_user.get(user_id, (0, 0))
            per_user[user_id] = (credits + amount, requests + 1)
            if key_id is not None:
                spent, last = keys.get(key_id, (0, 0.0))
                keys[key_id] = (spent + amount, at if at > last else last)
        per_key = {k: (c, datetime.fromtimestamp(at, tz=UTC)) for k, (c, at) in keys.items()}
        return cls(per_user, per_key)


@dataclass(frozen=True)
class UsageBatch:
    entries: dict[int, LedgerEntry]  # user id -> the entry that charged the batch's usage
    states: dict[int, WalletSnapshot]  # user id -> the wallet as committed


def usage_reference(*, batch_id: str, user_id: int) -> str:
    return f"usage:{batch_id}:{user_id}"


def usage_post_batch(
    *, batch_id: str, charges: UsageCharges, applied: dict[int, int]
) -> UsageBatch:
    """Write a batch of usage charges: ONE ledger entry per wallet (reference
    `usage:BATCH:USER`, amount = minus the sum of its charges), one update of all the
    wallets and one of all the keys (what they spent, when they were last used),
    whatever the batch's size. The caller has dropped charges already written (it
    keeps one per request id) and makes every usage record name its wallet's entry,
    so each entry equals the sum of its records.

    `applied` is, per user, what the fast copy holds as pending for this batch (every
    queued charge, written now or before); it is released when the caller publishes
    the returned states. Must run inside a transaction."""
    users = set(applied) | set(charges.per_user)
    missing = users - set(
        Wallet.objects.filter(user_id__in=users).values_list("user_id", flat=True)
    )
    Wallet.objects.bulk_create([Wallet(user_id=u) for u in missing], ignore_conflicts=True)
    # Lock wallets in id order so two writers can never deadlock.
    wallets = list(Wallet.objects.select_for_update().filter(user_id__in=users).order_by("pk"))
    entries: dict[int, LedgerEntry] = {}
    states: dict[int, WalletSnapshot] = {}
    for wallet in wallets:
        total, requests = charges.per_user.get(wallet.user_id, (0, 0))
        if total:
            entries[wallet.user_id] = LedgerEntry(
                wallet=wallet,
                kind=LedgerEntry.Kind.USAGE,
                amount=-total,
                balance_after=wallet.balance - total,
                reference=usage_reference(batch_id=batch_id, user_id=wallet.user_id),
                description=f"{requests} request{'s' if requests != 1 else ''}",
            )
        states[wallet.user_id] = WalletSnapshot(
            user_id=wallet.user_id,
            balance=wallet.balance - total,
            version=wallet.version + (1 if total else 0),
            paid=wallet.paid,
            total_spent=wallet.total_spent + total,
            applied=applied.get(wallet.user_id, 0),
            debited=total,
        )
    if entries:
        LedgerEntry.objects.bulk_create(entries.values())
        _apply_batch([w for w in wallets if w.user_id in entries], entries)
    adapt = connection.ops.adapt_datetimefield_value
    update_each(
        ApiKey,
        {k: (spent, adapt(at)) for k, (spent, at) in charges.per_key.items()},
        names=["credits", "used_at"],
        assignments={"spent": "spent + v.credits", "last_used_at": "v.used_at"},
    )
    return UsageBatch(entries=entries, states=states)


def _apply_batch(wallets: list[Wallet], entries: dict[int, LedgerEntry]) -> None:
    """One UPDATE for every wallet the batch charged, under the row locks taken."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    update_each(
        Wallet,
        {w.pk: (-entries[w.user_id].amount, now) for w in wallets},
        names=["debit", "now"],
        assignments={
            "balance": "balance - v.debit",
            "total_spent": "total_spent + v.debit",
            "version": "version + 1",
            "updated_at": "v.now",
        },
    )
