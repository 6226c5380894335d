"""Writing the audit trail. Callers write the entry inside the transaction that makes
the change, so the change and its record commit together or not at all."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from audit.models import AuditEntry

COMMAND = "command"


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    before: Any = None,
    after: Any = None,
    customer: Any = None,
    reason: str = "",
) -> AuditEntry:
    """Record one action. `actor` is a staff user, or a label such as "command" for the
    shell. Refuses to run outside a transaction: an entry committed without its change
    (or a change without its entry) would make the trail lie."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change")
    is_user = isinstance(actor, models.Model)
    return AuditEntry.objects.create(
        actor=actor if is_user else None,
        actor_label=(str(actor) if actor is not None else COMMAND)[:254],
        action=action,
        target_type=target_type or (target._meta.label_lower if target is not None else ""),
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        customer=customer,
        before=before,
        after=after,
        reason=reason[:300],
    )


def model_state(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """A row's fields as JSON-safe values, for `before` and `after`."""
    state = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, models.Model):
            value = value.pk
        elif value is not None and not isinstance(value, (int, str, bool, float, list, dict)):
            value = str(value)
        state[name] = value
    return state
