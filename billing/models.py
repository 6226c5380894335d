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
