"""Top-ups in đồng through payOS: the official SDK against a fake payOS on 127.0.0.1,
and webhooks signed with the checksum key as payOS signs them."""

from __future__ import annotations

import itertools
import logging
import re

import pytest
from django.test import Client

from billing.models import LedgerEntry, PayosOrder, PayosWebhook
from billing.payos_topups import TOPUP_MAX_VND
from billing.services import wallet_for
from tests.factories import make_user
from tests.fakes.payos import FakePayOS, sign
from tests.rails import RATE, RATE_DATE, post_payos

pytestmark = pytest.mark.django_db

# 100,000 ₫ at 25,400 ₫ a dollar: 100,000 * 1,000,000 // 25,400, rounded down.
CREDITS_100K = 3_937_007


def balance(user) -> int:  # type: ignore[no-untyped-def]
    return wallet_for(user=user).balance


def open_order(client: Client, amount: str = "100000") -> PayosOrder:
    """The billing page's VietQR form, as a customer submits it."""
    response = client.post("/dashboard/billing/vietqr/", {"preset": amount})
    assert response.status_code == 302, response
    code = int(re.search(r"/vietqr/(\d+)/", response["Location"]).group(1))
    return PayosOrder.objects.get(order_code=code)


@pytest.fixture
def customer(fake_payos: FakePayOS):  # type: ignore[no-untyped-def]
    user = make_user()
    client = Client()
    client.force_login(user)
    return user, client


# ---- the payment page ------------------------------------------------------------------------


def test_choosing_100k_opens_a_signed_payment_link_and_shows_its_qr_and_bank_details(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    [body] = fake_payos.created
    assert body["amount"] == 100_000 and body["orderCode"] == order.order_code
    # Signed as payOS checks it: over amount, cancelUrl, description, orderCode, returnUrl.
    fields = {k: body[k] for k in ("amount", "cancelUrl", "description", "orderCode", "returnUrl")}
    assert body["signature"] == sign(fields, fake_payos.checksum_key)
    assert body["returnUrl"] == "http://testserver/dashboard/billing/vietqr/return/"
    assert len(body["description"]) <= 9  # payOS's limit for accounts not linked to it
    assert fake_payos.last_request.headers["x-client-id"] == fake_payos.client_id
    link = fake_payos.last_link
    page = client.get(f"/dashboard/billing/vietqr/{order.order_code}/").content.decode()
    assert 'data-testid="qr"' in page and "<svg" in page and "<img" not in page
    assert "MB Bank" in page and link["_account"] in page
    assert "100,000 ₫" in page and f"{CREDITS_100K:,}" in page
    assert order.qr_code.startswith("000201") and order.status == "pending"
    # Opening a link credits nothing: only the signed webhook does.
    assert balance(user) == 0


def test_the_qr_is_drawn_from_payos_payload_on_our_side(fake_payos: FakePayOS, customer) -> None:  # type: ignore[no-untyped-def]
    import segno

    _, client = customer
    order = open_order(client)
    page = client.get(f"/dashboard/billing/vietqr/{order.order_code}/").content.decode()
    drawn = segno.make(order.qr_code, error="m", micro=False)
    path = re.search(r'<path[^>]* d="([^"]+)"', drawn.svg_inline(scale=1, border=3)).group(1)
    assert path in page


@pytest.mark.parametrize(
    "form", [{"preset": "custom", "custom_vnd": "150.000"}, {"preset": "200000"}]
)
def test_a_custom_or_preset_amount_opens_a_link_for_that_amount(
    fake_payos: FakePayOS, customer, form: dict
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    client.post("/dashboard/billing/vietqr/", form)
    assert fake_payos.last_link["amount"] == (150_000 if "custom_vnd" in form else 200_000)


@pytest.mark.parametrize(
    "form",
    [
        {"preset": "custom", "custom_vnd": "9.999"},
        {"preset": "custom", "custom_vnd": f"{TOPUP_MAX_VND + 1}"},
        {"preset": "custom", "custom_vnd": "100.5"},
        {"preset": "custom", "custom_vnd": ""},
        {"preset": "777"},
    ],
)
def test_amounts_outside_what_we_sell_are_refused_with_a_message(
    fake_payos: FakePayOS, customer, form: dict
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    response = client.post("/dashboard/billing/vietqr/", form, follow=True)
    assert fake_payos.created == [] and not PayosOrder.objects.exists()
    assert response.redirect_chain[-1][0] == "/dashboard/billing/"
    assert list(response.context["messages"])


def test_a_payos_outage_shows_a_message_instead_of_an_error_page(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    fake_payos.fail_next(
        200, {"code": "20", "desc": "Thông tin truyền lên không đúng.", "data": None}
    )
    response = client.post("/dashboard/billing/vietqr/", {"preset": "100000"}, follow=True)
    assert response.status_code == 200
    assert "could not be made" in response.content.decode()


def test_another_customers_order_is_not_found(fake_payos: FakePayOS, customer) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.get(f"/dashboard/billing/vietqr/{order.order_code}/").status_code == 404
    assert stranger.post(f"/dashboard/billing/vietqr/{order.order_code}/cancel/").status_code == 404


# ---- webhooks: exactly once per order code ------------------------------------------------------


@pytest.mark.parametrize("order_of", list(itertools.permutations(["paid", "replay", "second"])))
def test_three_deliveries_in_any_order_after_the_return_page_credit_the_order_once(
    fake_payos: FakePayOS, customer, order_of: tuple[str, ...]
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    # The browser comes back first: that alone credits nothing.
    back = f"/dashboard/billing/vietqr/return/?code=00&id={fake_payos.last_link['id']}&cancel=false&status=PAID&orderCode={order.order_code}"
    assert client.get(back, follow=True).status_code == 200
    assert balance(user) == 0
    paid = fake_payos.webhook(order.order_code, reference="FT25120112345")
    deliveries = {
        "paid": paid,
        "replay": paid,  # payOS delivers the same notice again
        "second": fake_payos.webhook(order.order_code, reference="FT25120199999"),
    }
    for name in order_of:
        assert post_payos(deliveries[name]).status_code == 200
    [entry] = LedgerEntry.objects.filter(wallet__user=user, kind="topup")
    assert entry.reference == f"payos:{order.order_code}" and entry.amount == CREDITS_100K
    assert (entry.paid_amount, entry.paid_currency) == (100_000, "VND")
    assert (entry.rate, entry.rate_date) == (RATE, RATE_DATE)
    assert balance(user) == CREDITS_100K
    assert PayosWebhook.objects.count() == 2
    outcomes = sorted(PayosWebhook.objects.values_list("outcome", flat=True))
    assert outcomes == ["credited", "review"]
    order.refresh_from_db()
    assert order.status == "paid" and order.entry == entry
    # The second bank transaction was not credited: staff see it.
    assert order.needs_review and "second payment" in order.review_note
    page = client.get(f"/dashboard/billing/vietqr/{order.order_code}/").content.decode()
    assert "Payment received" in page and f"/dashboard/billing/receipts/{entry.pk}/" in page


def test_a_webhook_arriving_before_the_return_page_is_shown_as_paid_there(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    assert post_payos(fake_payos.webhook(order.order_code)).json()["outcome"] == "credited"
    back = client.get(
        f"/dashboard/billing/vietqr/return/?code=00&cancel=false&status=PAID&orderCode={order.order_code}",
        follow=True,
    )
    assert "Payment received" in back.content.decode()
    assert balance(user) == CREDITS_100K
    assert LedgerEntry.objects.filter(wallet__user=user, kind="topup").count() == 1


@pytest.mark.parametrize("tamper", ["wrong_key", "edited_amount", "no_signature", "not_json"])
def test_a_webhook_with_a_bad_checksum_credits_nothing_and_is_logged(
    fake_payos: FakePayOS, customer, tamper: str, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    body: dict | bytes = fake_payos.webhook(order.order_code)
    if tamper == "wrong_key":
        body = fake_payos.webhook(order.order_code, checksum_key="someone-elses-checksum-key")
    elif tamper == "edited_amount":
        body["data"]["amount"] = 10_000_000  # type: ignore[index]
    elif tamper == "no_signature":
        body.pop("signature")  # type: ignore[union-attr]
    else:
        body = b"not json"
    with caplog.at_level(logging.WARNING, logger="billing.views"):
        response = post_payos(body)
    assert response.status_code == 400
    assert balance(user) == 0 and not LedgerEntry.objects.filter(kind="topup").exists()
    assert not PayosWebhook.objects.exists()
    assert PayosOrder.objects.get(pk=order.pk).status == "pending"
    assert "payOS webhook rejected" in caplog.text
    assert fake_payos.checksum_key not in caplog.text


@pytest.mark.parametrize(("paid", "note"), [(150_000, "paid 150,000 ₫"), (50_000, "paid 50,000 ₫")])
def test_an_amount_that_differs_from_the_order_is_credited_as_paid_and_flagged_for_staff(
    fake_payos: FakePayOS, customer, paid: int, note: str
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    assert post_payos(fake_payos.webhook(order.order_code, amount=paid)).status_code == 200
    assert balance(user) == paid * 1_000_000 // RATE
    order.refresh_from_db()
    assert order.status == "paid" and order.paid_amount == paid
    assert order.needs_review and note in order.review_note
    page = client.get(f"/dashboard/billing/vietqr/{order.order_code}/").content.decode()
    assert "we credited what you paid" in page


def test_a_cancelled_link_credits_nothing(fake_payos: FakePayOS, customer) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    response = client.post(f"/dashboard/billing/vietqr/{order.order_code}/cancel/", follow=True)
    assert "Payment cancelled" in response.content.decode()
    assert fake_payos.links[order.order_code]["status"] == "CANCELLED"
    order.refresh_from_db()
    assert order.status == "cancelled" and balance(user) == 0
    # payOS reports a failed transaction for it: still nothing.
    failed = fake_payos.webhook(order.order_code, code="01")
    assert post_payos(failed).json()["outcome"] == "ignored"
    assert balance(user) == 0 and not LedgerEntry.objects.filter(kind="topup").exists()


def test_an_expired_link_credits_nothing(fake_payos: FakePayOS, customer) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    fake_payos.expire(order.order_code)
    PayosOrder.objects.filter(pk=order.pk).update(expires_at=order.created_at)
    page = client.get(f"/dashboard/billing/vietqr/{order.order_code}/").content.decode()
    assert "This code has expired" in page and 'data-testid="qr"' not in page
    assert PayosOrder.objects.get(pk=order.pk).status == "expired"
    assert balance(user) == 0


def test_the_cancel_url_asks_payos_rather_than_trusting_the_browser(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    forged = f"/dashboard/billing/vietqr/return/?code=00&cancel=true&status=CANCELLED&orderCode={order.order_code}"
    client.get(forged)
    assert PayosOrder.objects.get(pk=order.pk).status == "pending"  # payOS says pending
    fake_payos.links[order.order_code]["status"] = "CANCELLED"  # cancelled on payOS's page
    client.get(forged)
    assert PayosOrder.objects.get(pk=order.pk).status == "cancelled"


def test_a_payment_arriving_after_a_cancel_is_credited_and_flagged(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    """Money that reached the bank is never kept without credits: staff look at it."""
    user, client = customer
    order = open_order(client)
    client.post(f"/dashboard/billing/vietqr/{order.order_code}/cancel/")
    post_payos(fake_payos.webhook(order.order_code))
    order.refresh_from_db()
    assert balance(user) == CREDITS_100K
    assert order.needs_review and "after the link was cancelled" in order.review_note


def test_payos_test_delivery_for_an_order_not_ours_is_answered_200_and_credits_nothing(
    fake_payos: FakePayOS,
) -> None:
    # What payOS sends when the webhook URL is saved in its dashboard.
    response = post_payos(fake_payos.webhook(123))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert not LedgerEntry.objects.filter(kind="topup").exists()


def test_without_payos_configured_deliveries_are_refused_for_payos_to_retry(
    fake_payos: FakePayOS, settings, customer
) -> None:  # type: ignore[no-untyped-def]
    user, client = customer
    order = open_order(client)
    settings.PAYOS_CHECKSUM_KEY = ""
    assert post_payos(fake_payos.webhook(order.order_code)).status_code == 503
    assert balance(user) == 0


def test_the_webhook_needs_no_csrf_token_but_only_accepts_post(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    strict = Client(enforce_csrf_checks=True)
    assert post_payos(fake_payos.webhook(order.order_code), strict).status_code == 200
    assert strict.get("/payos/webhook/").status_code == 405


# ---- after the payment -----------------------------------------------------------------------


def test_the_receipt_shows_the_dong_paid_the_rate_and_the_credits(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    post_payos(fake_payos.webhook(order.order_code))
    entry = LedgerEntry.objects.get(reference=f"payos:{order.order_code}")
    page = client.get(f"/dashboard/billing/receipts/{entry.pk}/").content.decode()
    for text in (
        "VietQR (payOS)",
        "100,000 ₫",
        "25,400 ₫ = US$1",
        f"{CREDITS_100K:,}",
        "$3.937007",
    ):
        assert text in page, text
    client.post("/i18n/setlang/", {"language": "vi", "next": "/"})
    page = client.get(f"/dashboard/billing/receipts/{entry.pk}/").content.decode()
    for text in ('lang="vi"', "Biên nhận", "100.000 ₫", "25.400 ₫ = US$1", f"{CREDITS_100K:,}"):
        assert text in page, text


def test_the_reconciliation_job_closes_expired_links_and_flags_paid_ones_without_a_webhook(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from billing.reconcile import payments_reconcile

    _, client = customer
    expired, paid = open_order(client), open_order(client)
    fake_payos.expire(expired.order_code)
    fake_payos.pay(paid.order_code)  # no webhook_url: the webhook never reaches us
    long_ago = timezone.now() - timedelta(hours=1)
    PayosOrder.objects.update(expires_at=long_ago)
    counts = payments_reconcile()
    assert counts["payos_closed"] == 1 and counts["payos_flagged"] == 1
    assert PayosOrder.objects.get(pk=expired.pk).status == "expired"
    flagged = PayosOrder.objects.get(pk=paid.pk)
    assert flagged.status == "pending" and flagged.needs_review
    assert "webhook never arrived" in flagged.review_note


def test_staff_see_orders_to_review_and_every_webhook_in_admin(
    fake_payos: FakePayOS, customer, personas
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    post_payos(fake_payos.webhook(order.order_code, amount=120_000))
    staff = Client()
    staff.force_login(personas.staff)
    page = staff.get("/admin/billing/payosorder/?needs_review__exact=1").content.decode()
    assert str(order.order_code) in page and "paid 120,000 ₫ for an order of 100,000 ₫" in page
    page = staff.get("/admin/billing/payoswebhook/").content.decode()
    assert str(order.order_code) in page and "Credited" in page
    assert fake_payos.checksum_key not in page


def test_the_management_api_lists_what_was_paid_for_each_top_up(
    fake_payos: FakePayOS, customer
) -> None:  # type: ignore[no-untyped-def]
    _, client = customer
    order = open_order(client)
    post_payos(fake_payos.webhook(order.order_code))
    [entry] = [e for e in client.get("/api/ledger/").json()["results"] if e["kind"] == "topup"]
    assert entry["amount"] == CREDITS_100K and entry["reference"] == f"payos:{order.order_code}"
    assert (entry["paid_amount"], entry["paid_currency"]) == (100_000, "VND")
    assert (entry["rate"], entry["rate_date"]) == (RATE, RATE_DATE.isoformat())
