from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class UsageRecord(models.Model):
    """One /v1 request as metered: what it asked, where it went, what it cost.
    Written in batches after the response (the hot path never waits for it)."""

    # Unique by a constraint, not `unique=True`: that would add a second index for
    # LIKE queries, which nothing runs. Every index is paid on every row the writer
    # COPYs, so the user and key have none of their own either: the (user, created_at)
    # and (key, created_at) indexes below serve their lookups.
    request_id = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="usage_records",
        db_index=False,
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
        db_index=False,
    )
    endpoint = models.CharField(max_length=40)
    model = models.CharField(max_length=120)
    provider = models.CharField(max_length=64, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True)
    upstream_key_id = models.BigIntegerField(null=True, blank=True)
    stream = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    # The parts of input_tokens and output_tokens priced apart (billing.pricing), kept so
    # that a charge can be re-derived and shown component by component.
    cache_write_tokens = models.PositiveIntegerField(default=0, help_text="5-minute cache writes")
    cache_write_1h_tokens = models.PositiveIntegerField(default=0, help_text="1-hour cache writes")
    reasoning_tokens = models.PositiveIntegerField(default=0, help_text="inside output_tokens")
    audio_input_tokens = models.PositiveIntegerField(default=0)
    audio_output_tokens = models.PositiveIntegerField(default=0)
    image_input_tokens = models.PositiveIntegerField(default=0)
    image_output_tokens = models.PositiveIntegerField(default=0)
    # [[component, tokens, credits per 1M tokens], ...] as charged: the charge is
    # ceil(sum(tokens * price) / 1,000,000) whatever the prices are today.
    charge_lines = models.JSONField(default=list, blank=True)
    # Non-token units: images, characters of speech, seconds of audio.
    units = models.PositiveIntegerField(default=0)
    charge = models.BigIntegerField(default=0, help_text="credits")
    # What the upstream charged us for it (billing.costs.route_cost); 0 when unknown.
    cost = models.BigIntegerField(default=0, help_text="credits")
    estimated = models.BooleanField(default=False, help_text="tokens counted by nexai")
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    client_disconnected = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The usage entry that charged this record: one per wallet per writer batch, equal
    # to the sum of its records' charges. Null when nothing was charged.
    ledger_entry = models.ForeignKey(
        "billing.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="usage_records",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["api_key", "-created_at"]),
            # Staff reports roll usage up a day at a time (reports.rollup).
            models.Index(fields=["created_at"], name="usage_created_at"),
        ]
        constraints = [
            # One record per request: a batch written twice is refused, not doubled.
            models.UniqueConstraint(fields=["request_id"], name="usage_request_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.status}"


class StoredResponse(models.Model):
    """A Responses API result kept for `previous_response_id` and GET/DELETE, per owner."""

    response_id = models.CharField(max_length=80, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stored_responses"
    )
    model = models.CharField(max_length=120)
    body = models.JSONField()
    # The whole conversation up to and including this response, as chat messages; null
    # for a forwarded response chat cannot express (item references, files by id...):
    # kept only to say whose it is, so that its owner, and no one else, can continue it
    # on the upstream that made it.
    messages = models.JSONField(default=list, null=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.response_id
