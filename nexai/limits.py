"""Request body limits for every path of the site, enforced before a body is read
(core.bodylimit): /v1 by its endpoint (gateway.limits), everything else by what it
needs. Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone cannot do this: the ASGI handler
reads (and spools) the whole body before Django checks anything."""

from __future__ import annotations

import orjson

from core.bodylimit import Headers, Limit
from gateway import limits as v1

KIB = 1024
# Stripe's events are a few KB (a checkout session, a payment intent); Stripe publishes
# no maximum, and an event ten times the largest we handle is still far below this.
STRIPE_WEBHOOK = 1024 * KIB
# payOS and SePay post one payment each, in well under a kilobyte of JSON.
DONG_WEBHOOKS = 64 * KIB
MANAGEMENT_API = 256 * KIB  # /api/: keys, usage filters, redemption codes
ADMIN = 2048 * KIB  # staff forms, bulk actions over many selected rows
FORMS = 256 * KIB  # log-in, sign-up, the dashboard's forms

_PREFIXES = (
    ("/stripe/webhook/", STRIPE_WEBHOOK),
    ("/payos/webhook/", DONG_WEBHOOKS),
    ("/sepay/webhook/", DONG_WEBHOOKS),
    ("/api/", MANAGEMENT_API),
    ("/admin/", ADMIN),
)


def _site_limit(path: str) -> int:
    for prefix, limit in _PREFIXES:
        if path.startswith(prefix):
            return limit
    return FORMS


def _refusal(path: str, limit: int) -> tuple[Headers, bytes]:
    message = f"The request body is larger than {limit // KIB} KiB, the limit of this page."
    if path.startswith("/api/"):
        # The management API's error shape (djangorestframework's).
        return [(b"content-type", b"application/json")], orjson.dumps({"detail": message})
    return [(b"content-type", b"text/plain; charset=utf-8")], message.encode()


def policy(path: str) -> Limit:
    found = v1.policy(path)
    if found is not None:
        return found
    limit = _site_limit(path)
    return Limit(limit, lambda: _refusal(path, limit))
