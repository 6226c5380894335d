"""Customer operations that cross apps: signing up (accounts) with the gift granted at
verification (billing), and key creation gated on a verified email. They live here
because accounts may not import billing, and the gate is a dashboard policy."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import CreatedKey, api_key_create
from billing.services import signup_grant, wallet_for

_VERIFY_SALT = "nexai.email-verification"
VERIFY_MAX_AGE = 7 * 24 * 3600  # seconds a verification link stays valid
RESEND_INTERVAL = 60  # seconds between two verification emails to one account


class SignupError(ValueError):
    """The message is for the customer."""


class VerificationError(ValueError):
    """The link is malformed, expired or for an address that has since changed."""


class EmailNotVerified(PermissionError):
    pass


def customer_signup(*, email: str, password: str) -> User:
    email = User.objects.normalize_email(email).strip().lower()
    taken = SignupError(_("An account with this email address already exists."))
    if User.objects.filter(email=email).exists():
        raise taken
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            # The wallet exists from the start (balance 0) so every page can show it;
            # the gift waits for the verified address.
            wallet_for(user=user)
    except IntegrityError:
        raise taken from None  # the same address signed up a moment ago
    return user


def email_verification_token(*, user: User) -> str:
    # The address is signed too: a link mailed to an old address stops working if the
    # account's address changes.
    return signing.dumps({"u": user.pk, "e": user.email}, salt=_VERIFY_SALT, compress=True)


def email_verification_send(*, user: User, base_url: str) -> bool:
    """Mail the verification link; returns False when one was sent moments ago."""
    if user.email_verified:
        return False
    if not cache.add(f"verify-mail:{user.pk}", 1, RESEND_INTERVAL):
        return False
    link = base_url.rstrip("/") + reverse(
        "verify_email", args=[email_verification_token(user=user)]
    )
    context = {"user": user, "link": link, "days": VERIFY_MAX_AGE // 86400}
    send_mail(
        subject=render_to_string("emails/verify_email_subject.txt", context).strip(),
        message=render_to_string("emails/verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True


def email_verify(*, token: str) -> User:
    """Mark the address verified and grant the signup gift (once, however often the
    link is opened: the grant's ledger reference is unique per user)."""
    try:
        data = signing.loads(token, salt=_VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.SignatureExpired:
        raise VerificationError(_("This verification link has expired.")) from None
    except signing.BadSignature:
        raise VerificationError(_("This verification link is not valid.")) from None
    user = User.objects.filter(pk=data.get("u"), email=data.get("e"), is_active=True).first()
    if user is None:
        raise VerificationError(_("This verification link is not valid."))
    with transaction.atomic():
        if not user.email_verified:
            user.email_verified = True
            user.save(update_fields=["email_verified"])
        signup_grant(user=user)
    return user


def customer_api_key_create(
    *,
    user: User,
    name: str = "",
    rpm: int | None = None,
    spend_limit: int | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A customer creating their own key: only once their address is verified, so every
    account that can call /v1 has an address that reaches its owner (billing notices,
    abuse reports)."""
    if not user.email_verified:
        raise EmailNotVerified(_("Verify your email address before creating API keys."))
    return api_key_create(
        user=user,
        name=name,
        rpm=rpm,
        spend_limit=spend_limit,
        allowed_models=allowed_models,
        expires_at=expires_at,
    )
