"""Money in by rail and currency, and what waits for staff, on the reports page."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from billing import memos
from billing.services import ledger_post
from reports.admin import period_from
from reports.selectors import usage_report
from tests.factories import Personas, make_user
from tests.rails import RATE, post_payos, post_sepay

pytestmark = pytest.mark.django_db


def test_money_in_is_reported_by_rail_and_currency_as_the_ledger_recorded_it(
    personas: Personas, fake_payos, fake_sepay
) -> None:  # type: ignore[no-untyped-def]
    from billing.exchange import USD, Paid

    customer = make_user()
    client = Client()
    client.force_login(customer)
    for amount in ("100000", "200000"):
        client.post("/dashboard/billing/vietqr/", {"preset": amount})
        post_payos(fake_payos.webhook(fake_payos.last_link["orderCode"]))
    post_sepay(fake_sepay.transfer(memos.memo_for(user=customer), 500_000, deliver=False))
    post_sepay(fake_sepay.transfer("no memo", 70_000, deliver=False))  # waits for staff
    ledger_post(
        user=customer, kind="topup", amount=10_000_000, reference="stripe:cs_rail",
        paid=Paid(amount=1000, currency=USD),
    )  # fmt: skip
    ledger_post(user=customer, kind="redemption", amount=2_000_000, reference="NX-RAIL-CODE")
    report = usage_report(period_from({"days": "1"}))
    rows = {(r.rail, r.currency): (r.payments, r.paid, r.credits) for r in report.by_rail}
    vnd = lambda d: d * 1_000_000 // RATE  # noqa: E731
    assert rows == {
        ("payos", "VND"): (2, 300_000, vnd(100_000) + vnd(200_000)),
        ("sepay", "VND"): (1, 500_000, vnd(500_000)),
        ("stripe", "USD"): (1, 1000, 10_000_000),
        ("code", "credits"): (1, None, 2_000_000),
    }
    assert (report.queues.unmatched_transfers, report.queues.unmatched_vnd) == (1, 70_000)

    staff = Client()
    staff.force_login(personas.staff)
    url = reverse("admin:reports_dailymodelstat_changelist")
    page = staff.get(url, {"days": "1"}).content.decode()
    for text in ("VietQR (payOS)", "300,000 ₫", "Bank transfer (SePay)", "500,000 ₫", "$10.00",
                 "1 unmatched bank transfer", "70,000 ₫"):  # fmt: skip
        assert text in page, text
    export = staff.get(url, {"days": "1", "export": "rails"}).content.decode()
    lines = list(csv.DictReader(io.StringIO(export)))
    assert {(r["rail"], r["currency"], r["paid_minor_units"]) for r in lines} >= {
        ("payos", "VND", "300000"),
        ("sepay", "VND", "500000"),
    }
