from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Wallet(models.Model):
    """A user's credits. `balance` is a cache of the sum of the wallet's ledger entries,
    changed only in the same transaction as the entry that explains it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet"
    )
    balance = models.BigIntegerField(default=0, help_text=_("credits"))
    total_spent = models.BigIntegerField(default=0, help_text=_("lifetime usage, credits"))
    # Set once credits other than the signup gift arrive: the account is on the paid plan.
    paid = models.BooleanField(default=False)
    # Bumped by every entry, under the row lock: orders snapshots of the balance.
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"wallet of {self.user}"


class ImmutableLedger(Exception):
    pass


class LedgerQuerySet(models.QuerySet["LedgerEntry"]):
    # The ledger is append-only: bulk edits are refused as loudly as single ones.
    def update(self, **kwargs: object) -> int:
        raise ImmutableLedger("Ledger entries cannot be edited; post an adjustment instead.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableLedger("Ledger entries cannot be deleted; post an adjustment instead.")


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        SIGNUP_GRANT = "signup_grant", _("Signup grant")
        TOPUP = "topup", _("Top-up")
        USAGE = "usage", _("Usage")
        REFUND = "refund", _("Refund")
        ADJUSTMENT = "adjustment", _("Adjustment")
        REDEMPTION = "redemption", _("Redemption")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(help_text=_("credits; negative for debits"))
    balance_after = models.BigIntegerField(help_text=_("credits"))
    # Unique, enforced by the database: a replayed request id or Stripe event id can
    # never be applied twice.
    reference = models.CharField(max_length=200, unique=True)
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["wallet", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.reference})"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableLedger("Ledger entries cannot be edited; post an adjustment instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ImmutableLedger("Ledger entries cannot be deleted; post an adjustment instead.")


class StripeEvent(models.Model):
    """A webhook delivery from Stripe, stored under its event id so that a replay is
    recognised, with what the handler did (or why it failed) for support."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")  # stored, handler not finished
        CREDITED = "credited", _("Credited")
        ALREADY_CREDITED = "already_credited", _("Already credited")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    action = models.CharField(max_length=300, blank=True, help_text=_("what the handler did"))
    error = models.TextField(blank=True)
    session_id = models.CharField(max_length=255, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.outcome})"
