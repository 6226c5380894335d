"""Controls on the signup gift: one gift per mailbox, no throwaway addresses, and an
optional captcha. The gift is real money, so these are the rules a careful operator
would otherwise enforce by hand."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.mailbox import canonical_email
from accounts.models import SignupGiftClaim, User

log = logging.getLogger(__name__)


@functools.cache
def _disposable_domains(path: str) -> frozenset[str]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        log.warning("disposable-domain list %s cannot be read; none are refused", path)
        return frozenset()
    return frozenset(
        line.split("#", 1)[0].strip().lower() for line in lines if line.split("#", 1)[0].strip()
    )


def is_disposable(email: str) -> bool:
    domain = email.strip().lower().rpartition("@")[2]
    listed = _disposable_domains(settings.NEXAI_DISPOSABLE_DOMAINS_FILE)
    # Subdomains of a listed domain count too (x.mailinator.com).
    return any(domain == d or domain.endswith("." + d) for d in listed)


def gift_claim(*, user: User) -> bool:
    """Claim the gift for the user's mailbox; True if it is (or already was) theirs."""
    canonical = canonical_email(user.email)
    claim = SignupGiftClaim.objects.filter(canonical_email=canonical).first()
    if claim is not None:
        return claim.user_id == user.pk
    try:
        with transaction.atomic():
            SignupGiftClaim.objects.create(canonical_email=canonical, user=user)
    except IntegrityError:  # claimed a moment ago by another account
        return SignupGiftClaim.objects.filter(canonical_email=canonical, user=user).exists()
    return True


def captcha_enabled() -> bool:
    return bool(settings.NEXAI_CAPTCHA_SECRET and settings.NEXAI_CAPTCHA_SITE_KEY)


def captcha_passed(*, token: str, ip: str) -> bool:
    """Ask the captcha service (Turnstile's siteverify protocol) whether the token the
    browser got is genuine. A service that cannot be reached refuses the sign-up: the
    operator switched the captcha on to keep bots out."""
    if not captcha_enabled():
        return True
    if not token:
        return False
    try:
        response = httpx.post(
            settings.NEXAI_CAPTCHA_VERIFY_URL,
            data={"secret": settings.NEXAI_CAPTCHA_SECRET, "response": token, "remoteip": ip},
            timeout=10,
        )
        return bool(response.json().get("success"))
    except (httpx.HTTPError, ValueError):
        log.warning("captcha verification failed to complete", exc_info=True)
        return False
