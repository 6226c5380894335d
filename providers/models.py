from __future__ import annotations

import hashlib
from dataclasses import fields

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from providers.prices import Prices


class Origin(models.TextChoices):
    """Where a catalogue entry came from. load_providers only ever disables (with
    --prune) what the file created; what staff created in the admin stays theirs."""

    FILE = "file", _("providers file")
    ADMIN = "admin", _("admin")


class Provider(models.Model):
    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        AZURE = "azure", "Azure OpenAI"
        ANTHROPIC = "anthropic", "Anthropic"
        GEMINI = "gemini", "Google Gemini"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    base_url = models.CharField(max_length=300)
    timeout = models.PositiveIntegerField(default=300, help_text=_("seconds for a whole call"))
    settings = models.JSONField(default=dict, blank=True, help_text=_("e.g. api_version"))
    enabled = models.BooleanField(default=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.ADMIN)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProviderKey(models.Model):
    """One upstream secret in a provider's pool. The secret is needed in clear to call
    the upstream, so it is kept out of every display: admin shows `fingerprint`."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="keys")
    secret = models.TextField()
    fingerprint = models.CharField(max_length=16, editable=False)
    label = models.CharField(max_length=100, blank=True)
    weight = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    # The last upstream failure that used this key (its kind; the detail, secrets
    # removed, is on the admin's health page).
    last_error = models.CharField(max_length=300, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Set when the gateway disabled the key itself (refused by its upstream for an
    # hour): shown to staff until someone enables the key again.
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.ADMIN)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "fingerprint"], name="uniq_provider_key")
        ]

    def __str__(self) -> str:
        return f"{self.provider.name} key …{self.fingerprint}"

    def __repr__(self) -> str:
        return f"<ProviderKey {self.pk} {self.provider_id} …{self.fingerprint}>"

    def save(self, *args: object, **kwargs: object) -> None:
        self.fingerprint = self.fingerprint_of(self.secret)
        super().save(*args, **kwargs)

    @staticmethod
    def fingerprint_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()[:12]


class AiModel(models.Model):
    """A model as customers see it, with its prices (integers, credits) and routes."""

    class Type(models.TextChoices):
        CHAT = "chat", _("Chat")
        EMBEDDING = "embedding", _("Embedding")
        IMAGE = "image", _("Image")
        SPEECH = "speech", _("Speech")
        TRANSCRIPTION = "transcription", _("Transcription")

    public_id = models.CharField(max_length=120, unique=True)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.CHAT)
    owned_by = models.CharField(max_length=64, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("reserved on admission when a request sets no limit")
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Prices in credits (1 credit = US$0.000001).
    input_per_mtok = models.BigIntegerField(default=0, help_text=_("credits per 1M input tokens"))
    output_per_mtok = models.BigIntegerField(default=0, help_text=_("credits per 1M output tokens"))
    cached_input_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M cached input tokens")
    )
    cache_write_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M tokens written to a 5-minute cache")
    )
    cache_write_1h_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M tokens written to a 1-hour cache")
    )
    audio_input_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M audio input tokens")
    )
    audio_output_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M audio output tokens")
    )
    image_input_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M image input tokens")
    )
    image_output_per_mtok = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per 1M image output tokens")
    )
    per_image = models.JSONField(
        null=True, blank=True, help_text=_("credits per image, or a map size -> credits")
    )
    per_mchar = models.BigIntegerField(null=True, blank=True, help_text=_("credits per 1M chars"))
    per_minute = models.BigIntegerField(
        null=True, blank=True, help_text=_("credits per minute of audio")
    )
    # Set when the prices above were computed as cost + this percentage (the file's
    # `price: {markup_percent: N}`); shown so staff know where a price came from.
    markup_percent = models.PositiveIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.ADMIN)

    class Meta:
        ordering = ["public_id"]
        verbose_name = _("model")

    def __str__(self) -> str:
        return self.public_id


class Route(models.Model):
    model = models.ForeignKey(AiModel, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveSmallIntegerField(default=0)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="routes")
    upstream_model = models.CharField(max_length=200)
    # What the upstream charges us, in credits: the model's price fields with their
    # values, e.g. {"input_per_mtok": 2000000, "output_per_mtok": 8000000}; empty when
    # unknown (no margin can be reported for the route then). A mapping rather than a
    # column per field, so it follows `Prices` whatever fields prices gain.
    cost = models.JSONField(null=True, blank=True, help_text=_("the upstream's prices to us"))
    # Selling below cost is refused unless staff say so here (a loss leader).
    allow_below_cost = models.BooleanField(default=False)

    class Meta:
        ordering = ["model", "position"]
        constraints = [
            models.UniqueConstraint(fields=["model", "position"], name="uniq_route_position")
        ]

    def __str__(self) -> str:
        return f"{self.model} -> {self.provider}/{self.upstream_model}"

    @property
    def cost_prices(self) -> Prices | None:
        """The upstream's prices to us, or None when the route has no cost set."""
        return prices_from(self.cost) if self.cost else None


def prices_from(values: dict) -> Prices:
    """`Prices` from a mapping of price fields (unknown keys are refused by whoever
    wrote the mapping: the loader and the admin)."""
    known = {f.name for f in fields(Prices)}
    kept = {k: v for k, v in values.items() if k in known and v is not None}
    kept.setdefault("input_per_mtok", 0)
    kept.setdefault("output_per_mtok", 0)
    return Prices(**kept)
