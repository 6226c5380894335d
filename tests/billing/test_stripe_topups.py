"""Top-ups through Stripe Checkout: the stripe SDK against a fake Stripe on 127.0.0.1,
and webhooks signed with a test secret through Stripe's own signature scheme."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from billing.models import LedgerEntry, StripeEvent
from billing.services import wallet_for
from billing.stripe_topups import (
    TopupAmountError,
    credits_for_cents,
    topup_checkout_create,
)
from tests.factories import make_user
from tests.fakes.stripe import FakeStripe, checkout_completed_event, signed_webhook

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
WEBHOOK_URL = "/stripe/webhook/"


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:  # type: ignore[no-untyped-def]
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = fake.expected_key
        settings.STRIPE_API_BASE = fake.base_url
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        yield fake


@pytest.fixture
def webhook_secret(settings) -> str:  # type: ignore[no-untyped-def]
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET


def deliver(event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):  # type: ignore[no-untyped-def]
    body, signature = signed_webhook(event, secret, timestamp)
    return Client().post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def paid_event(user, cents: int, session_id: str = "cs_test_a1session", **kw):  # type: ignore[no-untyped-def]
    return checkout_completed_event(
        session_id, cents, str(user.pk), {"user_id": str(user.pk)}, kw.pop("event_id", None), **kw
    )


def balance(user) -> int:  # type: ignore[no-untyped-def]
    return wallet_for(user=user).balance


# ---- checkout session creation --------------------------------------------------------------


def test_a_checkout_session_is_created_through_the_sdk_for_the_amount_and_customer(
    fake_stripe: FakeStripe,
) -> None:
    user = make_user()
    url = topup_checkout_create(
        user=user,
        amount_usd_cents=2500,
        success_url="http://testserver/dashboard/billing/?topup=success",
        cancel_url="http://testserver/dashboard/billing/?topup=cancelled",
    )
    session = fake_stripe.last_session
    assert url == session["url"] and url.startswith(fake_stripe.base_url)
    [params] = fake_stripe.created_params
    assert params["mode"] == "payment"
    [item] = params["line_items"]
    assert item["price_data"]["unit_amount"] == "2500"
    assert item["price_data"]["currency"] == "usd"
    assert session["amount_total"] == 2500
    assert session["client_reference_id"] == str(user.pk)
    assert session["metadata"] == {"user_id": str(user.pk), "credits": "25000000"}
    assert session["success_url"] == "http://testserver/dashboard/billing/?topup=success"
    assert session["cancel_url"] == "http://testserver/dashboard/billing/?topup=cancelled"
    assert fake_stripe.last_request.headers["authorization"] == "Bearer sk_test_fake"
    # Creating a session credits nothing: only the signed webhook does.
    assert balance(user) == 0


@pytest.mark.parametrize("cents", [0, 499, 100_001, -500])
def test_amounts_outside_5_to_1000_dollars_are_refused_before_calling_stripe(
    fake_stripe: FakeStripe, cents: int
) -> None:
    with pytest.raises(TopupAmountError):
        topup_checkout_create(
            user=make_user(),
            amount_usd_cents=cents,
            success_url="http://x/",
            cancel_url="http://x/",
        )
    assert fake_stripe.requests == []


def test_the_billing_page_sends_the_customer_to_stripe_checkout(
    fake_stripe: FakeStripe, client: Client
) -> None:
    user = make_user()
    client.force_login(user)
    response = client.post("/dashboard/billing/topup/", {"preset": "1000"})
    session = fake_stripe.last_session
    assert response.status_code == 302 and response["Location"] == session["url"]
    assert session["amount_total"] == 1000
    assert session["success_url"].startswith("http://testserver/dashboard/billing/?topup=success")
    assert "{CHECKOUT_SESSION_ID}" in session["success_url"]
    assert session["cancel_url"] == "http://testserver/dashboard/billing/?topup=cancelled"


@pytest.mark.parametrize(
    ("form", "cents"),
    [({"preset": "custom", "custom_usd": "12.34"}, 1234), ({"preset": "5000"}, 5000)],
)
def test_a_custom_or_preset_amount_opens_checkout_for_that_amount(
    fake_stripe: FakeStripe, client: Client, form: dict, cents: int
) -> None:
    client.force_login(make_user())
    client.post("/dashboard/billing/topup/", form)
    assert fake_stripe.last_session["amount_total"] == cents


@pytest.mark.parametrize(
    "form",
    [
        {"preset": "custom", "custom_usd": "4.99"},
        {"preset": "custom", "custom_usd": "1000.01"},
        {"preset": "custom", "custom_usd": ""},
        {"preset": "777"},
    ],
)
def test_invalid_amounts_are_refused_with_a_message(
    fake_stripe: FakeStripe, client: Client, form: dict
) -> None:
    client.force_login(make_user())
    response = client.post("/dashboard/billing/topup/", form, follow=True)
    assert fake_stripe.created_params == []
    assert response.redirect_chain[-1][0] == "/dashboard/billing/"
    assert list(response.context["messages"])


def test_a_stripe_outage_shows_a_message_instead_of_an_error_page(
    fake_stripe: FakeStripe, client: Client
) -> None:
    client.force_login(make_user())
    fake_stripe.stop()  # nothing listens any more: a connection error
    response = client.post("/dashboard/billing/topup/", {"preset": "500"}, follow=True)
    assert response.status_code == 200
    assert "could not be opened" in response.content.decode()


def test_the_billing_page_says_plainly_when_stripe_is_not_configured(
    client: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(make_user())
    page = client.get("/dashboard/billing/").content.decode()
    assert "Card payments are not set up on this server yet." in page
    assert 'action="/dashboard/billing/topup/"' not in page
    response = client.post("/dashboard/billing/topup/", {"preset": "500"}, follow=True)
    assert "not available" in response.content.decode()


# ---- webhooks -----------------------------------------------------------------------------------


def test_a_10_dollar_top_up_credits_10_million_credits_once(webhook_secret: str) -> None:
    user = make_user()
    response = deliver(paid_event(user, 1000, event_id="evt_1"))
    assert response.status_code == 200
    entry = LedgerEntry.objects.get(wallet__user=user)
    assert (entry.kind, entry.amount, entry.reference) == (
        "topup",
        10_000_000,
        "stripe:cs_test_a1session",
    )
    assert balance(user) == 10_000_000 == credits_for_cents(1000)
    # A top-up moves the account to the paid plan.
    assert wallet_for(user=user).paid
    event = StripeEvent.objects.get(event_id="evt_1")
    assert event.outcome == "credited" and event.user == user and not event.error
    assert event.session_id == "cs_test_a1session" and event.type == "checkout.session.completed"


def test_a_replayed_event_credits_nothing_more(webhook_secret: str) -> None:
    user = make_user()
    event = paid_event(user, 1000, event_id="evt_replayed")
    assert deliver(event).status_code == 200
    assert deliver(event).status_code == 200
    assert deliver(event).status_code == 200
    assert balance(user) == 10_000_000
    assert LedgerEntry.objects.filter(wallet__user=user).count() == 1
    assert StripeEvent.objects.filter(event_id="evt_replayed").count() == 1


def test_another_event_for_the_same_session_credits_nothing_more(webhook_secret: str) -> None:
    user = make_user()
    deliver(paid_event(user, 2500, event_id="evt_a"))
    # Stripe may send a second, different event for the same payment.
    deliver(paid_event(user, 2500, event_id="evt_b"))
    succeeded = paid_event(user, 2500, event_id="evt_c")
    succeeded["type"] = "checkout.session.async_payment_succeeded"
    deliver(succeeded)
    assert balance(user) == 25_000_000
    assert LedgerEntry.objects.filter(wallet__user=user).count() == 1
    outcomes = dict(StripeEvent.objects.values_list("event_id", "outcome"))
    assert outcomes == {
        "evt_a": "credited",
        "evt_b": "already_credited",
        "evt_c": "already_credited",
    }


def test_events_in_any_order_credit_once_and_ignore_the_rest(webhook_secret: str) -> None:
    user = make_user()
    # A delayed payment method: the session completes unpaid, something we ignore
    # arrives, then the payment succeeds; Stripe does not promise this order.
    unpaid = paid_event(user, 500, event_id="evt_unpaid", payment_status="unpaid")
    ignored = {**paid_event(user, 500, event_id="evt_other"), "type": "payment_intent.created"}
    succeeded = {
        **paid_event(user, 500, event_id="evt_ok"),
        "type": "checkout.session.async_payment_succeeded",
    }
    for event in (ignored, succeeded, unpaid):
        assert deliver(event).status_code == 200
    assert balance(user) == 5_000_000
    outcomes = dict(StripeEvent.objects.values_list("event_id", "outcome"))
    assert outcomes == {"evt_other": "ignored", "evt_ok": "credited", "evt_unpaid": "ignored"}


def test_an_unpaid_completion_credits_nothing(webhook_secret: str) -> None:
    user = make_user()
    assert deliver(paid_event(user, 500, payment_status="unpaid")).status_code == 200
    assert balance(user) == 0


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "edited_body", "missing_header", "old_timestamp", "not_json"],
)
def test_a_bad_signature_is_refused_with_400_and_changes_nothing(
    webhook_secret: str, tamper: str
) -> None:
    user = make_user()
    event = paid_event(user, 1000)
    body, signature = signed_webhook(event, WEBHOOK_SECRET)
    headers = {"HTTP_STRIPE_SIGNATURE": signature}
    if tamper == "wrong_secret":
        body, signature = signed_webhook(event, "whsec_someone_else")
        headers = {"HTTP_STRIPE_SIGNATURE": signature}
    elif tamper == "edited_body":
        body = body.replace(b'"amount_total": 1000', b'"amount_total": 99999')
    elif tamper == "missing_header":
        headers = {}
    elif tamper == "old_timestamp":
        body, signature = signed_webhook(event, WEBHOOK_SECRET, timestamp=1_600_000_000)
        headers = {"HTTP_STRIPE_SIGNATURE": signature}
    elif tamper == "not_json":
        body, signature = b"not json", signed_webhook({}, WEBHOOK_SECRET)[1]
        headers = {"HTTP_STRIPE_SIGNATURE": signature}
    response = Client().post(WEBHOOK_URL, data=body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert balance(user) == 0
    assert not LedgerEntry.objects.exists()
    assert not StripeEvent.objects.exists()


def test_ignored_event_types_are_answered_200_and_recorded(webhook_secret: str) -> None:
    event = {
        "id": "evt_cust",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {}},
    }
    response = deliver(event)
    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id="evt_cust").outcome == "ignored"


def test_an_event_for_an_unknown_customer_is_recorded_as_failed_not_credited(
    webhook_secret: str,
) -> None:
    event = checkout_completed_event("cs_test_nobody", 1000, "999999", {}, "evt_nobody")
    assert deliver(event).status_code == 200
    record = StripeEvent.objects.get(event_id="evt_nobody")
    assert record.outcome == "failed" and "999999" in record.error
    assert not LedgerEntry.objects.exists()


def test_a_foreign_currency_is_not_credited(webhook_secret: str) -> None:
    user = make_user()
    deliver(paid_event(user, 1000, event_id="evt_eur", currency="eur"))
    assert balance(user) == 0
    assert StripeEvent.objects.get(event_id="evt_eur").outcome == "failed"


def test_without_a_webhook_secret_deliveries_are_refused_for_stripe_to_retry(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STRIPE_WEBHOOK_SECRET = ""
    user = make_user()
    assert deliver(paid_event(user, 1000)).status_code == 503
    assert balance(user) == 0


def test_the_webhook_needs_no_csrf_token_but_only_accepts_post(webhook_secret: str) -> None:
    user = make_user()
    body, signature = signed_webhook(paid_event(user, 1000), WEBHOOK_SECRET)
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )
    assert response.status_code == 200
    assert strict.get(WEBHOOK_URL).status_code == 405


def test_a_completed_fake_checkout_round_trip_credits_the_customer(
    fake_stripe: FakeStripe, client: Client
) -> None:
    """The whole path: the billing page opens a session at (fake) Stripe, the customer
    pays there, Stripe sends the signed event, the wallet is credited."""
    user = make_user()
    client.force_login(user)
    client.post("/dashboard/billing/topup/", {"preset": "1000"})
    session = fake_stripe.last_session
    event = fake_stripe.complete_session(session["id"])
    assert deliver(event).status_code == 200
    assert balance(user) == 10_000_000
    page = client.get("/dashboard/billing/").content.decode()
    assert f"stripe:{session['id']}"[:30] in page
    assert "+$10.00" in page


def test_staff_see_every_webhook_delivery_in_admin(webhook_secret: str, client: Client) -> None:
    from accounts.models import User

    user = make_user()
    deliver(paid_event(user, 1000, event_id="evt_admin"))
    staff = User.objects.create_superuser(email="ops@example.com", password="x")
    client.force_login(staff)
    page = client.get("/admin/billing/stripeevent/").content.decode()
    assert "evt_admin" in page and "Credited" in page
