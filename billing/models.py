from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.append_only import AppendOnly, AppendOnlyError


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


class ImmutableLedger(AppendOnlyError):
    pass


class LedgerEntry(AppendOnly):
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
    # For a top-up: what the customer paid, in the smallest unit of `paid_currency`
    # (whole đồng for VND, cents for USD), and for đồng the rate that made the credits.
    paid_amount = models.BigIntegerField(null=True, blank=True)
    paid_currency = models.CharField(max_length=3, blank=True)
    rate = models.PositiveIntegerField(null=True, blank=True, help_text=_("đồng per US$"))
    rate_date = models.DateField(null=True, blank=True, help_text=_("the day the rate was set"))

    refusal = ImmutableLedger
    edit_refusal = "Ledger entries cannot be edited; post an adjustment instead."
    delete_refusal = "Ledger entries cannot be deleted; post an adjustment instead."

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["wallet", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.reference})"


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


class RedemptionBatch(models.Model):
    """Codes generated together by staff (sold by resellers, handed out in promotions).
    Each code of the batch is worth `value` credits and credits exactly once."""

    value = models.BigIntegerField(help_text=_("credits per code"))
    count = models.PositiveIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # How many codes of this batch one customer may redeem; empty = no limit.
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True)
    # A sold code moves the customer to the paid plan; a free promotion may not.
    counts_as_paid = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("redemption code batch")
        verbose_name_plural = _("redemption code batches")

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.count} codes of {self.value:,} credits" + (
            f" ({self.note})" if self.note else ""
        )


class RedemptionCode(models.Model):
    batch = models.ForeignKey(RedemptionBatch, on_delete=models.PROTECT, related_name="codes")
    # "NX-XXXX-XXXX-XXXX-XXXX": 80 random bits, the ledger reference once redeemed.
    code = models.CharField(max_length=32, unique=True)
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redeemed_codes",
    )
    redeemed_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["batch", "redeemed_by"])]

    def __str__(self) -> str:
        return self.code


class BalanceAlert(models.Model):
    """A customer's low-balance settings, and the auto top-up that goes with them.

    `armed` makes each crossing count once: it is cleared (conditionally, so only one
    process wins) when the balance falls below the threshold, and set again when the
    balance rises back to it."""

    class TopupStatus(models.TextChoices):
        NONE = "", _("never")
        SUCCEEDED = "succeeded", _("succeeded")
        DECLINED = "declined", _("declined")
        REQUIRES_ACTION = "requires_action", _("needs your confirmation")
        FAILED = "failed", _("failed")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="balance_alert"
    )
    threshold = models.BigIntegerField(null=True, blank=True, help_text=_("credits; empty = off"))
    email_enabled = models.BooleanField(default=True)
    armed = models.BooleanField(default=True)
    crossings = models.PositiveIntegerField(default=0, help_text=_("times the balance fell below"))
    last_alert_at = models.DateTimeField(null=True, blank=True)
    # Auto top-up: a card saved through Stripe Checkout in setup mode.
    auto_topup = models.BooleanField(default=False)
    topup_cents = models.PositiveIntegerField(default=2000)
    min_interval_minutes = models.PositiveIntegerField(default=60)
    stripe_customer = models.CharField(max_length=255, blank=True)
    stripe_payment_method = models.CharField(max_length=255, blank=True)
    card_label = models.CharField(max_length=64, blank=True, help_text=_("e.g. visa •••• 4242"))
    last_topup_at = models.DateTimeField(null=True, blank=True)
    # The crossing the last top-up was attempted for: one attempt per crossing.
    last_topup_crossing = models.PositiveIntegerField(default=0)
    last_topup_status = models.CharField(
        max_length=20, choices=TopupStatus.choices, blank=True, default=""
    )
    last_topup_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"balance alert of {self.user}"


class PayosOrder(models.Model):
    """A VietQR payment link opened at payOS for one top-up. Credited only from payOS's
    signed webhook, once per order code (the ledger reference `payos:<order code>`)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    order_code = models.BigIntegerField(unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payos_orders"
    )
    amount = models.BigIntegerField(help_text=_("đồng asked for"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # What payOS answered when the link was made: the QR is drawn from `qr_code`.
    payment_link_id = models.CharField(max_length=64, blank=True)
    checkout_url = models.URLField(max_length=500, blank=True)
    qr_code = models.TextField(blank=True, help_text=_("VietQR (EMVCo) payload"))
    bank_bin = models.CharField(max_length=8, blank=True)
    account_number = models.CharField(max_length=40, blank=True)
    account_name = models.CharField(max_length=120, blank=True)
    description = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    paid_amount = models.BigIntegerField(null=True, blank=True, help_text=_("đồng received"))
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Paid, but not as asked (another amount, after cancelling, a second transfer):
    # credited as paid and left for staff to look at.
    needs_review = models.BooleanField(default=False, db_index=True)
    review_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payOS order")
        verbose_name_plural = _("payOS orders")

    def __str__(self) -> str:
        return f"payOS order {self.order_code} ({self.amount:,} ₫, {self.status})"

    @property
    def reference(self) -> str:
        return f"payos:{self.order_code}"


class PayosWebhook(models.Model):
    """One payment notice from payOS (verified), stored under its order code and bank
    reference so that a replay is recognised, with what the handler did."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")  # stored, handler not finished
        CREDITED = "credited", _("Credited")
        ALREADY_CREDITED = "already_credited", _("Already credited")
        REVIEW = "review", _("Credited, for staff to review")
        IGNORED = "ignored", _("Ignored")

    delivery = models.CharField(max_length=200, unique=True, help_text=_("order code:reference"))
    order_code = models.BigIntegerField(db_index=True)
    reference = models.CharField(max_length=100, blank=True)
    amount = models.BigIntegerField(default=0, help_text=_("đồng"))
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    action = models.CharField(max_length=300, blank=True, help_text=_("what the handler did"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("payOS webhook")
        verbose_name_plural = _("payOS webhooks")

    def __str__(self) -> str:
        return f"payOS {self.delivery} ({self.outcome})"


class TransferMemo(models.Model):
    """A customer's own bank-transfer memo, "NX" + six characters + a check character,
    the same for every transfer they make."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="transfer_memo"
    )
    code = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.code


class BankTransfer(models.Model):
    """A transaction on the operator's bank account, as SePay reported it (by webhook
    or by the reconciliation job), stored under SePay's transaction id so that it is
    applied once. Incoming transfers whose memo names no customer wait for staff."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")  # stored, handler not finished
        CREDITED = "credited", _("Credited")
        UNMATCHED = "unmatched", _("Waiting for staff")
        ASSIGNED = "assigned", _("Assigned by staff")
        DISMISSED = "dismissed", _("Dismissed by staff")
        IGNORED = "ignored", _("Ignored")

    sepay_id = models.CharField(max_length=40, unique=True)
    gateway = models.CharField(max_length=60, blank=True, help_text=_("the bank"))
    transaction_date = models.CharField(max_length=40, blank=True)
    account_number = models.CharField(max_length=40, blank=True)
    direction = models.CharField(max_length=3, help_text=_("in or out"))
    amount = models.BigIntegerField(help_text=_("đồng"))
    content = models.CharField(
        max_length=500, blank=True, help_text=_("the memo as the bank sent it")
    )
    code = models.CharField(max_length=60, blank=True, help_text=_("payment code SePay read"))
    reference_code = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RECEIVED)
    action = models.CharField(max_length=300, blank=True, help_text=_("what the handler did"))
    # The rate when the money arrived: a transfer staff assign later is converted at it.
    rate = models.PositiveIntegerField(null=True, blank=True, help_text=_("đồng per US$"))
    rate_date = models.DateField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bank_transfers",
    )
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=12, default="webhook", help_text=_("webhook or sync"))
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("bank transfer")
        verbose_name_plural = _("bank transfers")
        permissions = [("assign_banktransfer", "Can assign an unmatched bank transfer")]

    def __str__(self) -> str:
        return f"transfer {self.sepay_id} {self.direction} {self.amount:,} ₫ ({self.outcome})"

    @property
    def reference(self) -> str:
        return f"sepay:{self.sepay_id}"


class UnmatchedTransfer(BankTransfer):
    """The staff queue: incoming transfers no customer's memo matched (admin only)."""

    class Meta:
        proxy = True
        verbose_name = _("unmatched bank transfer")
        verbose_name_plural = _("unmatched bank transfers")
