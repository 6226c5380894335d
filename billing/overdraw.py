"""Telling staff when money did something it should not."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.core.mail import send_mail

from accounts.models import User

log = logging.getLogger(__name__)

ALERT_EVERY = 3600  # seconds: one email per wallet per hour, however often it happens


def overdraw_alert(*, user_id: int, request_id: str, reserved: int, charge: int) -> bool:
    """An upstream reported more than the reservation bound allowed (a provider bug):
    the request was charged in full, the wallet may be below zero, and admission
    refuses it until credits bring it back above. Logged at error every time; staff
    are emailed once per wallet per hour. Returns whether an email went out."""
    log.error(
        "request %s of user %s cost %s credits but reserved %s: charged in full; the "
        "wallet admits nothing until it is positive",
        request_id,
        user_id,
        charge,
        reserved,
    )
    # cache.add is atomic (SET NX on Redis): several processes alert once between them.
    if not cache.add(f"nexai:overdraw-alert:{user_id}", 1, timeout=ALERT_EVERY):
        return False
    staff = list(
        User.objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not staff:
        return False
    send_mail(
        subject=f"nexai: usage beyond its reservation (user {user_id})",
        message=(
            f"Request {request_id} of user {user_id} reported usage costing {charge} "
            f"credits, more than the {reserved} credits its reservation bounded. It was "
            "charged in full; the wallet may be negative and admits no request until it "
            "is positive again. Check the provider's usage report for this model.\n"
        ),
        from_email=None,
        recipient_list=staff,
        fail_silently=True,
    )
    return True
