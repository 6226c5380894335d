"""Customer operations that cross apps: signing up (accounts) with the gift granted at
verification (billing), and key creation gated on a verified email. They live here
because accounts may not import billing, and the gate is a dashboard policy."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import ApiKey, User
from accounts.scopes import api_key_scope_set
from accounts.services import CreatedKey, api_key_create
from billing.models import LedgerEntry
from billing.services import signup_grant, wallet_for
from dashboard.abuse import gift_claim

_VERIFY_SALT = "nexai.email-verification"
VERIFY_MAX_AGE = 7 * 24 * 3600  # seconds a verification link stays valid
RESEND_INTERVAL = 60  # seconds between two verification emails to one account


class KeyNameTaken(ValueError):
    """The message is for the customer."""


class VerificationError(ValueError):
    """The link is malformed, expired or for an address that has since changed."""


class EmailNotVerified(PermissionError):
    pass


def customer_signup(*, email: str, password: str, base_url: str) -> User | None:
    """Sign up, answering the same whether or not the address has an account (no
    enumeration): a new address gets an account and a verification link; a taken one
    gets a note saying so, with links to log in or reset the password. Returns the new
    user, or None when the address was taken."""
    email = User.objects.normalize_email(email).strip().lower()
    try:
        with transaction.atomic():
            if User.objects.filter(email=email).exists():
                raise IntegrityError("taken")
            user = User.objects.create_user(email=email, password=password)
            # The wallet exists from the start (balance 0) so every page can show it;
            # the gift waits for the verified address.
            wallet_for(user=user)
    except IntegrityError:  # taken, possibly a moment ago by a parallel sign-up
        # Hash anyway, so a taken address answers no faster than a new one.
        make_password(password)
        owner = User.objects.filter(email=email).first()
        if owner is not None and not owner.email_verified:
            # Signing up again is how a customer who lost the first link asks for one.
            email_verification_send(user=owner, base_url=base_url)
        else:
            account_exists_notify(email=email, base_url=base_url)
        return None
    email_verification_send(user=user, base_url=base_url)
    return user


def account_exists_notify(*, email: str, base_url: str) -> None:
    """Tell the owner of a taken address that someone tried to sign up with it (at most
    once per RESEND_INTERVAL, so the form cannot flood their inbox)."""
    if not cache.add(f"exists-mail:{email}", 1, RESEND_INTERVAL):
        return
    root = base_url.rstrip("/")
    context = {"login": root + reverse("login"), "reset": root + reverse("password_reset")}
    send_mail(
        subject=render_to_string("emails/account_exists_subject.txt", context).strip(),
        message=render_to_string("emails/account_exists.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


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
        # One gift per mailbox: a second account on a.b+2@gmail.com gets none.
        if gift_claim(user=user):
            signup_grant(user=user)
    return user


def gift_received(*, user: User) -> bool:
    return LedgerEntry.objects.filter(
        wallet__user=user, kind=LedgerEntry.Kind.SIGNUP_GRANT
    ).exists()


def customer_api_key_create(
    *,
    user: User,
    name: str = "",
    rpm: int | None = None,
    concurrency: int | None = None,
    spend_limit: int | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    scope: str = ApiKey.Scope.INFERENCE,
) -> CreatedKey:
    """A customer creating their own key: only once their address is verified, so every
    account that can call /v1 has an address that reaches its owner (billing notices,
    abuse reports). Names are unique among the customer's keys that still work, so
    "Production" always means one key; a revoked key's name can be reused."""
    if not user.email_verified:
        raise EmailNotVerified(_("Verify your email address before creating API keys."))
    with transaction.atomic():
        # The user row serialises two creations racing for one name.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if name and key_name_taken(user=user, name=name):
            raise KeyNameTaken(_("You already have a key named “%s”. Pick another name.") % name)
        created = api_key_create(
            user=user,
            name=name,
            rpm=rpm,
            concurrency=concurrency,
            spend_limit=spend_limit,
            allowed_models=allowed_models,
            expires_at=expires_at,
        )
        api_key_scope_set(key=created.key, scope=scope)
    return created


def key_name_taken(*, user: User, name: str, exclude_id: int | None = None) -> bool:
    keys = ApiKey.objects.owned_by(user).exclude(status=ApiKey.Status.REVOKED)
    if exclude_id is not None:
        keys = keys.exclude(pk=exclude_id)
    return keys.filter(name__iexact=name.strip()).exists()
