"""Staff operations on a customer's money, each writing its audit entry in the same
transaction as the change (docs/operations.md, "Audit trail")."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from audit.services import audit_record
from billing.models import LedgerEntry
from billing.services import credits_grant, wallet_for


def _wallet_state(user: User) -> dict[str, int | bool]:
    wallet = wallet_for(user=user)
    wallet.refresh_from_db()
    return {"balance": wallet.balance, "paid": wallet.paid}


@transaction.atomic
def adjustment_post(
    *,
    staff: User,
    user: User,
    amount: int,
    reason: str,
    counts_as_paid: bool,
    reference: str,
) -> LedgerEntry:
    """Grant (or correct down) `amount` credits. A reference already posted (a resubmitted
    confirmation) returns its entry and records nothing new."""
    before = _wallet_state(user)
    existing = LedgerEntry.objects.filter(reference=reference).first()
    if existing is not None:
        return existing
    entry = credits_grant(
        user=user,
        amount=amount,
        reference=reference,
        description=reason,
        created_by=staff,
        counts_as_paid=counts_as_paid,
    )
    audit_record(
        actor=staff,
        action="credits.adjust",
        target=entry,
        customer=user,
        before=before,
        after={**_wallet_state(user), "amount": amount, "counts_as_paid": counts_as_paid},
        reason=reason,
    )
    return entry
