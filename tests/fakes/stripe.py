"""Fake Stripe API (Checkout Sessions) and webhook signing exactly as Stripe does it.

Point the SDK at the fake with `stripe.StripeClient(key, base_addresses={"api": fake.base_url})`
or the global `stripe.api_base = fake.base_url`. Requests are form-encoded with Stripe's
bracket syntax (`line_items[0][price_data][unit_amount]=500`, `metadata[user_id]=7`); the
fake decodes them (kept in `fake.created_params`) and stores real-shaped session objects
in `fake.sessions`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from .base import _UNSET, FakeServer, RecordedRequest, Response, Route, json_response, random_id

API_VERSION = "2026-02-25.clover"
# Stripe's test payment methods that fail off-session: (status, error code, message).
_CARD_FAILURES = {
    "pm_card_chargeDeclined": (
        "requires_payment_method",
        "card_declined",
        "Your card was declined.",
    ),
    "pm_card_authenticationRequired": (
        "requires_payment_method",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}
_CARD_LAST4 = {"pm_card_chargeDeclined": "0002", "pm_card_authenticationRequired": "3184"}
SESSION_TTL = 24 * 3600

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    402: "card_error",
    404: "invalid_request_error",
    409: "idempotency_error",
    429: "invalid_request_error",
}


def stripe_error(
    status: int, message: str | None = None, *, code: str | None = None, param: str | None = None
) -> dict:
    error: dict[str, Any] = {
        "message": message or ("An unknown error occurred" if status >= 500 else f"Error {status}"),
        "type": _ERROR_TYPES.get(status, "api_error"),
        "request_log_url": "https://dashboard.stripe.com/test/logs/" + random_id("req_", 14),
    }
    if status == 429 and code is None:
        code = "rate_limit"
        error["message"] = message or "Too many requests hit the API too quickly."
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return {"error": error}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracketed form keys into nested dicts; all-integer keys become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        names = re.findall(r"[^\[\]]+", key)
        node = root
        for name in names[:-1]:
            node = node.setdefault(name, {})
        if names:
            node[names[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def signed_webhook(payload: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """(body, Stripe-Signature header): v1 = hex HMAC-SHA256 of "{t}.{body}" keyed by the
    endpoint secret, as Stripe signs webhook deliveries."""
    body = json.dumps(payload, indent=2).encode()
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={signature}"


def checkout_session_object(
    session_id: str,
    *,
    amount_total: int,
    currency: str = "usd",
    client_reference_id: str | None = None,
    metadata: dict[str, str] | None = None,
    status: str = "open",
    payment_status: str = "unpaid",
    success_url: str | None = None,
    cancel_url: str | None = None,
    url: str | None = None,
    customer_email: str | None = None,
    created: int | None = None,
    mode: str = "payment",
    payment_intent: str | None = None,
) -> dict[str, Any]:
    created = int(time.time()) if created is None else created
    complete = status == "complete"
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": True},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": (
            {
                "address": None,
                "email": customer_email or "customer@example.com",
                "name": "Test Customer",
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            if complete
            else None
        ),
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": created + SESSION_TTL,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {}},
        "livemode": False,
        "locale": None,
        "metadata": dict(metadata or {}),
        "mode": mode,
        "payment_intent": payment_intent or (random_id("pi_3", 24) if complete else None),
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": status,
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None if complete else url,
    }


def checkout_completed_event(
    session_id: str,
    amount_total: int,
    client_reference_id: str | None,
    metadata: dict[str, str] | None,
    event_id: str | None = None,
    *,
    currency: str = "usd",
    payment_status: str = "paid",
    created: int | None = None,
    session: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `checkout.session.completed` event as Stripe delivers it. `session` (a stored
    session object) overrides the session fields built from the other arguments."""
    created = int(time.time()) if created is None else created
    obj = checkout_session_object(
        session_id,
        amount_total=amount_total,
        currency=currency,
        client_reference_id=client_reference_id,
        metadata=metadata,
        status="complete",
        payment_status=payment_status,
        created=created,
    )
    if session is not None:
        kept = {
            k: v
            for k, v in session.items()
            if v is not None and k not in ("status", "payment_status", "url")
        }
        obj.update(kept)
    return {
        "id": event_id or random_id("evt_1", 23),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
    }


class FakeStripe(FakeServer):
    """Stripe at `base_url` (the SDK adds `/v1/...`). `prices` maps price ids to unit amounts
    for line items given as `price` rather than `price_data`."""

    name = "fake-stripe"
    default_key = "sk_test_fake"

    def __init__(self, *, expected_key: Any = _UNSET, prices: dict[str, int] | None = None) -> None:
        self.prices = dict(prices or {})
        super().__init__(expected_key=expected_key)

    def reset(self) -> None:
        super().reset()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.created_params: list[dict[str, Any]] = []  # decoded params of each create, in order
        self._idempotent: dict[str, Response] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        sid = r"(?P<sid>cs_[A-Za-z0-9_]+)"
        return [
            Route("POST", re.compile("/v1/customers"), self._idempotently(self._create_customer)),
            Route(
                "POST", re.compile("/v1/payment_intents"), self._idempotently(self._create_intent)
            ),
            Route("GET", re.compile(r"/v1/setup_intents/(?P<id>seti_\w+)"), self._get_setup),
            Route("GET", re.compile(r"/v1/payment_methods/(?P<id>pm_\w+)"), self._get_method),
            Route("POST", re.compile("/v1/checkout/sessions"), self._create),
            Route("GET", re.compile("/v1/checkout/sessions"), self._list),
            Route("GET", re.compile(f"/v1/checkout/sessions/{sid}"), self._retrieve),
            Route("POST", re.compile(f"/v1/checkout/sessions/{sid}/expire"), self._expire),
            Route("GET", re.compile(f"/c/pay/{sid}"), self._pay_page, auth=False),
        ]

    def check_auth(self, req: RecordedRequest) -> Response | None:
        key = self.credential(req)
        if self.valid_keys is None or key in self.valid_keys:
            return None
        if key is None:
            message = (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )
        else:
            message = f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}"
        return json_response(stripe_error(401, message), 401)

    def error_response(self, status: int, message: str | None = None) -> Response:
        return json_response(stripe_error(status, message), status)

    def not_found(self, req: RecordedRequest) -> Response:
        message = f"Unrecognized request URL ({req.method}: {req.path})."
        return json_response(stripe_error(404, message), 404)

    def response_headers(self) -> dict[str, str]:
        return {"Request-Id": random_id("req_", 14), "Stripe-Version": API_VERSION}

    # ---- endpoints -------------------------------------------------------------------

    def _create(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        idem = req.headers.get("idempotency-key")
        if idem and idem in self._idempotent:
            replay = self._idempotent[idem]
            return Response(
                replay.status, replay.body, replay.content_type, {"Idempotent-Replayed": "true"}
            )
        params = decode_form(urllib.parse.parse_qsl(req.body.decode(), keep_blank_values=True))
        response = self._create_session(params)
        if idem:
            self._idempotent[idem] = response
        return response

    # ---- saved cards and off-session payments (automatic top-ups) ----------------------

    def _idempotently(
        self, handler: Callable[[dict[str, Any]], Response]
    ) -> Callable[[RecordedRequest, re.Match[str]], Response]:
        """Stripe's idempotency: the same key replays the first answer, unchanged."""

        def route(req: RecordedRequest, match: re.Match[str]) -> Response:
            idem = req.headers.get("idempotency-key")
            if idem and idem in self._idempotent:
                replay = self._idempotent[idem]
                return Response(
                    replay.status, replay.body, replay.content_type, {"Idempotent-Replayed": "true"}
                )
            pairs = urllib.parse.parse_qsl(req.body.decode(), keep_blank_values=True)
            response = handler(decode_form(pairs))
            if idem:
                self._idempotent[idem] = response
            return response

        return route

    def _create_customer(self, params: dict[str, Any]) -> Response:
        customer = {
            "id": random_id("cus_", 14),
            "object": "customer",
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
        }
        with self._lock:
            self.customers[customer["id"]] = customer
        return json_response(customer)

    def _create_intent(self, params: dict[str, Any]) -> Response:
        """A PaymentIntent confirmed off-session, answering as Stripe does for its test
        cards: pm_card_visa succeeds, pm_card_chargeDeclined is declined (402
        card_declined), pm_card_authenticationRequired needs the cardholder (402
        authentication_required)."""
        method = params.get("payment_method", "")
        intent = {
            "id": random_id("pi_3", 24),
            "object": "payment_intent",
            "amount": int(params.get("amount", 0)),
            "currency": params.get("currency"),
            "customer": params.get("customer"),
            "payment_method": method,
            "metadata": params.get("metadata") or {},
            "off_session": params.get("off_session") == "true",
            "status": "succeeded",
        }
        failure = _CARD_FAILURES.get(method)
        if failure:
            intent["status"] = failure[0]
        with self._lock:
            self.payment_intents[intent["id"]] = intent
        if failure:
            _, code, message = failure
            body = stripe_error(402, message, code=code)
            body["error"]["payment_intent"] = intent
            if code == "card_declined":
                body["error"]["decline_code"] = "generic_decline"
            return json_response(body, 402)
        return json_response(intent)

    def _get_setup(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        intent = self.setup_intents.get(match.group("id"))
        if intent is None:
            return json_response(
                stripe_error(404, "No such setupintent", code="resource_missing"), 404
            )
        return json_response(intent)

    def _get_method(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        method = match.group("id")
        last4 = _CARD_LAST4.get(method, "4242")
        return json_response(
            {
                "id": method,
                "object": "payment_method",
                "type": "card",
                "card": {"brand": "visa", "last4": last4, "exp_month": 12, "exp_year": 2034},
            }
        )

    def complete_setup_session(
        self, session_id: str, payment_method: str = "pm_card_visa"
    ) -> dict[str, Any]:
        """The customer saved a card on the (setup mode) Checkout page."""
        session = self.sessions[session_id]
        intent = {
            "id": random_id("seti_", 24),
            "object": "setup_intent",
            "status": "succeeded",
            "customer": session.get("customer"),
            "payment_method": payment_method,
            "usage": "off_session",
        }
        self.setup_intents[intent["id"]] = intent
        session.update(status="complete", setup_intent=intent["id"], url=None)
        return intent

    def _create_session(self, params: dict[str, Any]) -> Response:
        mode = params.get("mode")
        if not mode:
            return json_response(
                stripe_error(
                    400, "Missing required param: mode.", code="parameter_missing", param="mode"
                ),
                400,
            )
        line_items = params.get("line_items") or []
        if mode == "payment" and not line_items:
            message = "You must provide at least one line item."
            return json_response(
                stripe_error(400, message, code="parameter_missing", param="line_items"), 400
            )
        amount = 0
        currency = params.get("currency")
        for index, item in enumerate(line_items):
            quantity = int(item.get("quantity", 1))
            if "price_data" in item:
                unit = item["price_data"].get("unit_amount")
                if unit is None or not str(unit).isdigit():
                    param = f"line_items[{index}][price_data][unit_amount]"
                    return json_response(
                        stripe_error(
                            400,
                            f"Invalid integer: {unit}",
                            code="parameter_invalid_integer",
                            param=param,
                        ),
                        400,
                    )
                amount += int(unit) * quantity
                currency = item["price_data"].get("currency", currency)
            elif item.get("price") in self.prices:
                amount += self.prices[item["price"]] * quantity
            else:
                message = f"No such price: '{item.get('price')}'"
                return json_response(
                    stripe_error(
                        400, message, code="resource_missing", param=f"line_items[{index}][price]"
                    ),
                    400,
                )
        session_id = random_id("cs_test_a1", 56)
        session = checkout_session_object(
            session_id,
            amount_total=amount,
            currency=(currency or "usd").lower(),
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            url=self.url(f"/c/pay/{session_id}"),
            customer_email=params.get("customer_email"),
            mode=mode,
        )
        session["customer"] = params.get("customer")
        with self._lock:
            self.sessions[session_id] = session
            self.created_params.append(params)
        return json_response(session)

    def _session_or_404(self, session_id: str) -> dict[str, Any] | Response:
        session = self.sessions.get(session_id)
        if session is None:
            message = f"No such checkout.session: '{session_id}'"
            return json_response(
                stripe_error(404, message, code="resource_missing", param="session"), 404
            )
        return session

    def _retrieve(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        found = self._session_or_404(match.group("sid"))
        return found if isinstance(found, Response) else json_response(found)

    def _list(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        data = list(reversed(self.sessions.values()))
        return json_response(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/checkout/sessions"}
        )

    def _expire(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        found = self._session_or_404(match.group("sid"))
        if isinstance(found, Response):
            return found
        if found["status"] != "open":
            message = f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "{found["status"]}".'
            return json_response(stripe_error(400, message), 400)
        found.update(status="expired", url=None)
        return json_response(found)

    def _pay_page(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        session = self.sessions.get(match.group("sid"))
        if session is None:
            return Response(404, b"<h1>Not found</h1>", "text/html; charset=utf-8")
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        page = (
            f"<!doctype html><title>Fake Stripe Checkout</title><h1>Pay {html.escape(amount)}</h1>"
        )
        return Response(200, page.encode(), "text/html; charset=utf-8")

    # ---- helpers for tests -----------------------------------------------------------

    @property
    def last_session(self) -> dict[str, Any]:
        assert self.sessions, "no checkout session was created"
        return list(self.sessions.values())[-1]

    def complete_session(self, session_id: str, event_id: str | None = None) -> dict[str, Any]:
        """Mark a created session paid and return its `checkout.session.completed` event."""
        session = self.sessions[session_id]
        event = checkout_completed_event(
            session_id,
            session["amount_total"],
            session["client_reference_id"],
            session["metadata"],
            event_id,
            currency=session["currency"],
            session=session,
        )
        session.update(event["data"]["object"])
        return event


__all__ = [
    "FakeStripe",
    "checkout_completed_event",
    "checkout_session_object",
    "decode_form",
    "signed_webhook",
    "stripe_error",
]
