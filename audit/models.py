"""The audit trail: one append-only row per staff action on money, keys, prices,
providers or a customer's state (Zulip's RealmAuditLog is the model). A leaf app: it
imports nothing of ours but nexai, so every app, including providers' callers, may write to it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.append_only import AppendOnly, AppendOnlyError


class ImmutableAudit(AppendOnlyError):
    pass


class AuditEntry(AppendOnly):
    # The staff member who acted; null for a command run from the shell (actor_label
    # says "command") or for a customer acting on their own account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text too, so the entry still reads right if the account is renamed.
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=64, db_index=True, help_text=_("e.g. credits.adjust"))
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    # The customer whose money or state changed, for their admin page.
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_entries",
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    refusal = ImmutableAudit
    edit_refusal = "Audit entries cannot be edited."
    delete_refusal = "Audit entries cannot be deleted."

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("audit entries")
        indexes = [models.Index(fields=["customer", "-created_at"])]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_repr}"
        )
