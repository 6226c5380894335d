"""Stripe's webhook endpoint. The only view in billing: the customer pages are in the
dashboard app."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.stripe_topups import StripeNotConfigured, WebhookRejected, stripe_event_receive

log = logging.getLogger(__name__)


# Stripe cannot send a CSRF token; the signature check below is what authenticates it.
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except WebhookRejected as exc:
        log.warning("stripe webhook rejected: %s", exc)
        return JsonResponse({"error": "invalid signature or payload"}, status=400)
    except StripeNotConfigured:
        # 503 rather than 400: Stripe keeps retrying for days, so payments made while
        # the endpoint secret is missing are still credited once it is set.
        return JsonResponse({"error": "webhooks are not configured"}, status=503)
    return JsonResponse({"received": True, "outcome": event.outcome})
