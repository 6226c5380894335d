from __future__ import annotations

import hashlib
import string

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Every secret starts with this, so a leaked key is recognisable (secret scanners,
# support tickets) and a string without it is rejected before any lookup.
KEY_PREFIX = "sk-nx-"
# How much of the secret is kept in clear for display ("sk-nx-Ab12Cd34").
DISPLAY_PREFIX_LEN = len(KEY_PREFIX) + 8


ALPHABET = string.ascii_letters + string.digits
SECRET_BODY_LEN = 43  # 43 base62 characters ~ 256 bits of entropy


def is_well_formed(secret: str) -> bool:
    """Shaped like a nexai key (checked before any lookup)."""
    body = secret[len(KEY_PREFIX) :]
    return (
        secret.startswith(KEY_PREFIX)
        and len(body) == SECRET_BODY_LEN
        and all(c in ALPHABET for c in body)
    )


def digest_secret(secret: str) -> str:
    """SHA-256 of a key secret. Secrets carry 256 bits of entropy, so a fast hash is
    safe here (no dictionary to attack) and keeps authentication cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A customer or staff member; the email address is the login."""

    username = None
    email = models.EmailField(_("email address"), unique=True)
    email_verified = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_secret(self, secret: str) -> ApiKey | None:
        return self.select_related("user").filter(digest=digest_secret(secret)).first()

    def owned_by(self, user: User) -> ApiKeyQuerySet:
        return self.filter(user=user)


class ApiKey(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")  # by staff; can be reactivated
        REVOKED = "revoked", _("Revoked")  # by the owner; final

    class Scope(models.TextChoices):
        # Every key may call /v1. Only a management key (made from a signed-in session)
        # may also list, create, change and revoke keys through /api/, so a leaked
        # inference key cannot mint keys that outlive its own revocation.
        INFERENCE = "inference", _("Inference (/v1)")
        MANAGEMENT = "management", _("Inference and key management (/v1 and /api/)")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=32, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.INFERENCE)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Optional per-key limits; null means "no limit of its own".
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text=_("Requests per minute"))
    concurrency = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Requests in flight at once")
    )
    spend_limit = models.BigIntegerField(
        null=True, blank=True, help_text=_("Lifetime spend cap, in credits")
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text=_("Model ids this key may use; empty means all")
    )
    spent = models.BigIntegerField(default=0, help_text=_("Lifetime spend, in credits"))

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    def is_expired(self, now: object | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def display_status(self) -> str:
        if self.status == self.Status.ACTIVE and self.is_expired():
            return "expired"
        return self.status

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.ACTIVE and not self.is_expired()

    def allows_model(self, model_id: str) -> bool:
        return not self.allowed_models or model_id in self.allowed_models


class SignupGiftClaim(models.Model):
    """The signup gift goes once to each mailbox, however many accounts it opens: the
    address is kept in its canonical form (lower case, no +tag, Gmail's dots removed)
    under a unique constraint, and the row outlives a deleted account."""

    canonical_email = models.CharField(max_length=254, unique=True)
    user = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.canonical_email
