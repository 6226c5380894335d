"""Redemption codes: staff generate batches; each code credits exactly once."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from billing.models import LedgerEntry, RedemptionBatch, RedemptionCode
from billing.redemptions import (
    RedeemError,
    TooManyAttempts,
    batch_create,
    code_normalize,
    code_redeem,
)
from billing.services import wallet_for
from tests.factories import Personas, make_key, make_user


def _batch(staff, **options) -> RedemptionBatch:  # type: ignore[no-untyped-def]
    values = {"value": 10_000_000, "count": 3, **options}
    return batch_create(staff=staff, **values)


def _balance(user) -> int:  # type: ignore[no-untyped-def]
    return wallet_for(user=user).balance


@pytest.mark.django_db
def test_staff_generate_a_batch_after_confirming_its_total_and_export_it(
    personas: Personas,
) -> None:
    client = Client()
    client.force_login(personas.staff)
    url = reverse("admin:billing_redemptionbatch_add")
    form = {
        "value_usd": "10",
        "count": "25",
        "expires_on": (timezone.now() + timedelta(days=30)).date().isoformat(),
        "per_customer_limit": "1",
        "counts_as_paid": "yes",
        "note": "reseller Minh, December",
    }
    confirm = client.post(url, form)
    assert "$250.00 (250,000,000 credits)" in confirm.content.decode()
    assert not RedemptionBatch.objects.exists()
    done = client.post(url, {**form, "confirm": "1"})
    batch = RedemptionBatch.objects.get()
    assert done["Location"] == reverse("admin:billing_redemptionbatch_change", args=[batch.pk])
    assert batch.codes.count() == 25 and batch.per_customer_limit == 1
    page = client.get(done["Location"]).content.decode()
    assert "reseller Minh, December" in page and "0 / 25" in page
    audit = AuditEntry.objects.get(action="redemption.batch_create")
    assert audit.actor == personas.staff and audit.after["total"] == 250_000_000
    exported = client.get(reverse("admin:billing_redemptionbatch_csv", args=[batch.pk]))
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert sorted(r["code"] for r in rows) == sorted(batch.codes.values_list("code", flat=True))
    assert {(r["value_usd"], r["credits"], r["status"]) for r in rows} == {
        ("$10.00", "10000000", "unused")
    }


@pytest.mark.django_db
def test_a_customer_redeems_a_code_on_the_billing_page_once(personas: Personas) -> None:
    code = _batch(personas.staff).codes.first().code
    customer = make_user()
    client = Client()
    client.force_login(customer)
    page = client.get(reverse("dashboard:billing"))
    assert 'data-testid="redeem"' in page.content.decode()
    typed = code.lower().replace("-", " ")  # case, spaces and dashes do not matter
    response = client.post(reverse("billing_pages:redeem"), {"code": typed}, follow=True)
    assert f"Code {code} redeemed: $10.00 added" in response.content.decode()
    entry = LedgerEntry.objects.get(wallet__user=customer, kind="redemption")
    assert (entry.amount, entry.reference) == (10_000_000, code)
    assert _balance(customer) == 10_000_000
    assert wallet_for(user=customer).paid  # a sold code counts as paid
    again = client.post(reverse("billing_pages:redeem"), {"code": code}, follow=True)
    assert "You have already redeemed this code." in again.content.decode()
    assert _balance(customer) == 10_000_000


@pytest.mark.django_db
def test_a_customer_redeems_through_the_api_with_an_api_key(personas: Personas) -> None:
    code = _batch(personas.staff, counts_as_paid=False).codes.first().code
    customer = make_user()
    secret = make_key(customer).secret
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    response = client.post("/api/redeem/", {"code": code}, content_type="application/json", **auth)
    assert response.status_code == 201
    assert response.json()["credits"] == 10_000_000
    assert response.json()["balance"] == 10_000_000
    assert not wallet_for(user=customer).paid  # a free promotion leaves the plan alone
    other = make_user()
    response = Client().post(
        "/api/redeem/",
        {"code": code},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_key(other).secret}",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "This code has already been used."
    assert _balance(other) == 0


@pytest.mark.django_db
def test_expired_unknown_and_over_the_limit_codes_credit_nothing(personas: Personas) -> None:
    customer = make_user()
    expired = _batch(personas.staff)
    RedemptionBatch.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    limited = _batch(personas.staff, per_customer_limit=1)
    first, second = limited.codes.all()[:2]
    code_redeem(user=customer, code=first.code, ip="10.0.0.1")
    cases = [
        (expired.codes.first().code, "This code has expired."),
        ("NX-0000-0000-0000-0000", "This code is not valid."),
        (second.code, "You have redeemed as many codes of this kind as allowed."),
    ]
    for code, message in cases:
        with pytest.raises(RedeemError, match=message):
            code_redeem(user=customer, code=code, ip="10.0.0.1")
    assert _balance(customer) == 10_000_000
    assert RedemptionCode.objects.filter(redeemed_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_guessing_is_rate_limited_per_user_and_per_ip(
    personas: Personas, settings: pytest.FixtureRequest
) -> None:
    settings.NEXAI_REDEEM_ATTEMPTS = 3  # type: ignore[attr-defined]
    good = _batch(personas.staff).codes.all()
    guesser = make_user()
    for _ in range(3):
        with pytest.raises(RedeemError, match="not valid"):
            code_redeem(user=guesser, code="NX-AAAA-AAAA-AAAA-AAAA", ip="10.0.0.1")
    # Now even a real code is refused for this user, from any address...
    with pytest.raises(TooManyAttempts):
        code_redeem(user=guesser, code=good[0].code, ip="10.9.9.9")
    # ...and any user from the guesser's address.
    with pytest.raises(TooManyAttempts):
        code_redeem(user=make_user(), code=good[0].code, ip="10.0.0.1")
    # Working codes are not guesses: an honest customer can redeem several.
    honest = make_user()
    for code in good:
        code_redeem(user=honest, code=code.code, ip="10.5.5.5")
    assert _balance(honest) == 30_000_000


@pytest.mark.django_db
def test_the_api_answers_429_with_retry_after_when_rate_limited(
    personas: Personas, settings: pytest.FixtureRequest
) -> None:
    settings.NEXAI_REDEEM_ATTEMPTS = 1  # type: ignore[attr-defined]
    client = Client()
    client.force_login(make_user())
    client.post("/api/redeem/", {"code": "NX-1"}, content_type="application/json")
    response = client.post("/api/redeem/", {"code": "NX-2"}, content_type="application/json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_codes_are_normalised_from_what_customers_type() -> None:
    assert code_normalize(" nx-abcd efgh-jkmn-pqrs ") == "NX-ABCD-EFGH-JKMN-PQRS"
    assert code_normalize("NXABCDEFGHJKMNPQ0O") == "NX-ABCD-EFGH-JKMN-PQ00"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sessions_redeeming_one_code_at_once_credit_it_once() -> None:
    staff = make_user(email="staff-redeem@example.com")
    with transaction.atomic():
        code = _batch(staff, count=1).codes.get().code
    users = [make_user(), make_user()]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def redeem(user) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=10)
            code_redeem(user=user, code=code, ip=f"10.0.0.{user.pk}")
            outcomes.append("credited")
        except RedeemError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["This code has already been used.", "credited"]
    assert LedgerEntry.objects.filter(kind="redemption", reference=code).count() == 1
    assert sum(_balance(u) for u in users) == 10_000_000
