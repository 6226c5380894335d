"""Low-balance alerts (one email per crossing) and automatic top-ups with a card
saved through Stripe Checkout in setup mode, against the fake Stripe on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from billing.alerts import alert_for, balance_crossed, balances_changed
from billing.autotopup import auto_topup_charge
from billing.models import BalanceAlert, LedgerEntry
from billing.services import UsageCharges, ledger_post, usage_post_batch, wallet_for
from tests.factories import make_user
from tests.fakes.stripe import FakeStripe

# Transactional: emails and the top-up task run on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

USD = 1_000_000


@pytest.fixture
def fake_stripe(settings) -> Iterator[FakeStripe]:  # type: ignore[no-untyped-def]
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = fake.expected_key
        settings.STRIPE_API_BASE = fake.base_url
        yield fake


def _spend(user, amount: int, ref: str) -> bool:  # type: ignore[no-untyped-def]
    """A usage batch as the writer posts it, then the one call the writer makes once
    the batch has committed. True when it made a new crossing."""
    before = wallet_for(user=user).balance
    crossings = BalanceAlert.objects.get(user=user).crossings
    with transaction.atomic():
        batch = usage_post_batch(
            batch_id=ref,
            charges=UsageCharges.of([(user.pk, None, amount, 0.0)]),
            applied={user.pk: 0},
        )
    balances_changed([(user.pk, before, batch.states[user.pk].balance)])
    return BalanceAlert.objects.get(user=user).crossings > crossings


def _customer_with_alert(client: Client, *, balance: int, **form: str):  # type: ignore[no-untyped-def]
    user = make_user(credits=balance)
    client.force_login(user)
    data = {
        "threshold_usd": "5",
        "email_enabled": "on",
        "topup_usd": "20",
        "min_interval_minutes": "60",
        **form,
    }
    response = client.post(reverse("billing_pages:alerts"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    return user


def test_the_customer_sets_a_threshold_in_dollars(client: Client) -> None:
    user = _customer_with_alert(client, balance=10 * USD, threshold_usd="7.50")
    alert = alert_for(user=user)
    assert (alert.threshold, alert.armed, alert.auto_topup) == (7_500_000, True, False)
    page = client.get(reverse("dashboard:billing")).content.decode()
    assert "falls below <strong>$7.50</strong>" in page
    form = client.get(reverse("billing_pages:alerts")).content.decode()
    assert 'value="7.50"' in form


def test_auto_topup_needs_a_threshold(client: Client) -> None:
    client.force_login(make_user())
    response = client.post(
        reverse("billing_pages:alerts"),
        {"threshold_usd": "", "auto_topup": "on", "topup_usd": "20", "min_interval_minutes": "60"},
    )
    assert "Auto top-up needs a threshold." in response.content.decode()


def test_one_email_per_crossing_not_one_per_request(client: Client) -> None:  # type: ignore[no-untyped-def]
    user = _customer_with_alert(client, balance=6 * USD)
    assert not _spend(user, USD // 2, "r1")  # $5.50: still above
    assert _spend(user, USD, "r2")  # $4.50: crossed
    assert not _spend(user, USD, "r3")  # $3.50: same crossing, no new email
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert "below $5.00" in mail.outbox[0].subject
    assert "it is now $4.50" in mail.outbox[0].body
    # Back above the threshold re-arms it; the next fall is a new crossing.
    ledger_post(user=user, kind="adjustment", amount=10 * USD, reference="grant-back")
    assert not _spend(user, 5 * USD, "r4")  # $8.50
    assert _spend(user, 4 * USD, "r5")  # $4.50
    assert len(mail.outbox) == 2
    assert alert_for(user=user).crossings == 2


def test_the_hook_claims_a_crossing_once_however_often_it_is_called(client: Client) -> None:
    user = _customer_with_alert(client, balance=6 * USD)
    ledger_post(user=user, kind="usage", amount=-2 * USD, reference="fall")  # $4
    assert balance_crossed(user_id=user.pk, balance_before=6 * USD, balance_after=4 * USD)
    # A retry, a second writer, a stale caller: none of them makes a second crossing.
    for before in (6 * USD, 4 * USD, 10 * USD):
        assert not balance_crossed(user_id=user.pk, balance_before=before, balance_after=4 * USD)
    assert alert_for(user=user).crossings == 1
    assert len(mail.outbox) == 1


def test_a_threshold_set_above_the_balance_is_not_a_crossing(client: Client) -> None:  # type: ignore[no-untyped-def]
    user = _customer_with_alert(client, balance=2 * USD)
    assert not _spend(user, USD, "r1")
    assert mail.outbox == []


def _save_card(client: Client, fake: FakeStripe, method: str) -> None:
    response = client.post(reverse("billing_pages:card_setup"))
    session = fake.last_session
    assert response["Location"] == session["url"]
    assert session["mode"] == "setup"
    fake.complete_setup_session(session["id"], payment_method=method)
    back = client.get(reverse("billing_pages:card_saved"), {"session_id": session["id"]})
    assert back.status_code == 302


def _auto_customer(client: Client, fake: FakeStripe, method: str = "pm_card_visa"):  # type: ignore[no-untyped-def]
    user = _customer_with_alert(client, balance=6 * USD, auto_topup="on")
    _save_card(client, fake, method)
    return user


def test_saving_a_card_in_setup_mode_keeps_only_its_label(
    client: Client, fake_stripe: FakeStripe
) -> None:
    user = _auto_customer(client, fake_stripe)
    alert = alert_for(user=user)
    assert alert.stripe_payment_method == "pm_card_visa"
    assert alert.stripe_customer.startswith("cus_")
    assert alert.card_label == "Visa •••• 4242"
    page = client.get(reverse("billing_pages:alerts")).content.decode()
    assert "Visa •••• 4242" in page


def test_another_customers_session_is_not_saved(client: Client, fake_stripe: FakeStripe) -> None:
    _auto_customer(client, fake_stripe)
    session_id = fake_stripe.last_session["id"]
    intruder = Client()
    victim_alert_user = make_user()
    intruder.force_login(victim_alert_user)
    intruder.get(reverse("billing_pages:card_saved"), {"session_id": session_id})
    assert alert_for(user=victim_alert_user).stripe_payment_method == ""


def test_auto_topup_charges_once_per_crossing_and_credits_once(
    client: Client, fake_stripe: FakeStripe
) -> None:  # type: ignore[no-untyped-def]
    user = _auto_customer(client, fake_stripe)
    assert _spend(user, 2 * USD, "r1")  # $4.00: crossed, top-up of $20
    assert not _spend(user, USD, "r2")  # same crossing
    assert auto_topup_charge(user_id=user.pk, crossing=1) == "skipped"  # a retried task
    [intent] = fake_stripe.payment_intents.values()
    assert (intent["amount"], intent["customer"], intent["off_session"]) == (
        2000,
        alert_for(user=user).stripe_customer,
        True,
    )
    topups = LedgerEntry.objects.filter(wallet__user=user, kind="topup")
    assert [(e.amount, e.reference) for e in topups] == [(20 * USD, f"stripe:{intent['id']}")]
    assert wallet_for(user=user).balance == 6 * USD - 3 * USD + 20 * USD
    alert = alert_for(user=user)
    assert alert.last_topup_status == "succeeded"
    assert "topping it up automatically by $20.00" in mail.outbox[0].body


def test_no_second_topup_within_the_interval(client: Client, fake_stripe: FakeStripe) -> None:  # type: ignore[no-untyped-def]
    user = _auto_customer(client, fake_stripe)
    _spend(user, 2 * USD, "r1")  # crossed: +$20 -> $24
    assert _spend(user, 20 * USD, "r2")  # $4: a new crossing, but within 60 minutes
    assert len(fake_stripe.payment_intents) == 1
    assert wallet_for(user=user).balance == 4 * USD


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("pm_card_chargeDeclined", "declined"),
        ("pm_card_authenticationRequired", "requires_action"),
    ],
)
def test_a_declined_or_unconfirmed_card_credits_nothing_and_tells_the_customer(
    client: Client, fake_stripe: FakeStripe, method: str, status: str
) -> None:  # type: ignore[no-untyped-def]
    user = _auto_customer(client, fake_stripe, method)
    assert _spend(user, 2 * USD, "r1")
    assert len(fake_stripe.payment_intents) == 1
    assert not LedgerEntry.objects.filter(wallet__user=user, kind="topup").exists()
    assert wallet_for(user=user).balance == 4 * USD
    alert = BalanceAlert.objects.get(user=user)
    assert alert.last_topup_status == status
    assert [m.subject for m in mail.outbox] == [
        "Your nexai balance is below $5.00",
        "Your automatic nexai top-up did not go through",
    ]
    page = client.get(reverse("billing_pages:alerts")).content.decode()
    assert alert.get_last_topup_status_display() in page


@pytest.mark.postgres
def test_two_writers_seeing_the_same_fall_send_one_email(client: Client) -> None:
    user = _customer_with_alert(client, balance=6 * USD)
    ledger_post(user=user, kind="usage", amount=-2 * USD, reference="fall")
    barrier = threading.Barrier(4)
    won: list[bool] = []

    def check() -> None:
        try:
            barrier.wait(timeout=10)
            won.append(
                balance_crossed(user_id=user.pk, balance_before=6 * USD, balance_after=4 * USD)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(won) == [False, False, False, True]
    assert len(mail.outbox) == 1
    assert alert_for(user=user).crossings == 1
