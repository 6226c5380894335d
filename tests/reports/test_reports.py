"""Staff reports: the figures equal the ledger and the usage table they summarise."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from billing.costs import route_cost
from billing.models import LedgerEntry, Wallet
from billing.pricing import token_charge
from billing.services import ledger_post
from gateway.models import UsageRecord
from providers.prices import Prices
from reports.admin import period_from
from reports.rollup import LATENCY_BUCKETS_MS, percentile, rollup_days
from reports.selectors import Period, usage_report
from tests.factories import Personas, make_user

pytestmark = pytest.mark.django_db

DAY0 = date(2026, 11, 1)
CATALOGUE = {
    # model: (provider, selling prices, cost prices)
    "gpt-4o": ("openai", Prices(2_500_000, 10_000_000), Prices(2_000_000, 8_000_000)),
    "claude": ("anthropic", Prices(3_000_000, 15_000_000), Prices(3_000_000, 15_000_000)),
    "cheap": ("deepseek", Prices(100_000, 200_000), Prices(140_000, 280_000)),  # a loss
}


def _generate(seed: int = 7, days: int = 10, per_day: int = 40) -> list:
    """Usage over `days` days for three customers, priced as the gateway prices it."""
    rng = random.Random(seed)
    users = [make_user() for _ in range(3)]
    records = []
    for d in range(days):
        for i in range(per_day):
            model = rng.choice(list(CATALOGUE))
            provider, sell, cost = CATALOGUE[model]
            usage = {
                "endpoint": "chat.completions",
                "input_tokens": rng.randint(1, 5000),
                "output_tokens": rng.randint(0, 2000),
            }
            failed = rng.random() < 0.1
            charge = (
                0
                if failed
                else token_charge(
                    sell, input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]
                )
            )
            at = datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC) + timedelta(
                days=d, seconds=rng.randint(0, 86_399)
            )
            records.append(
                UsageRecord(
                    request_id=f"req_{seed}_{d}_{i}",
                    user=rng.choice(users),
                    endpoint="chat.completions",
                    model=model,
                    provider=provider,
                    status=502 if failed else 200,
                    charge=charge,
                    cost=0 if failed else route_cost(cost, usage),
                    latency_ms=rng.choice([40, 90, 180, 450, 900, 2500, 12000]),
                    created_at=at,
                    **{k: v for k, v in usage.items() if k != "endpoint"},
                )
            )
    UsageRecord.objects.bulk_create(records)
    return users


def test_report_totals_equal_the_usage_table(personas: Personas) -> None:
    _generate()
    period = Period(DAY0, DAY0 + timedelta(days=9))
    rollup_days(period.days)
    report = usage_report(period)
    table = UsageRecord.objects.aggregate(charge=Sum("charge"), cost=Sum("cost"))
    assert report.totals.requests == UsageRecord.objects.count() == 400
    assert report.totals.errors == UsageRecord.objects.filter(status__gte=400).count()
    assert (report.totals.charge, report.totals.cost) == (table["charge"], table["cost"])
    assert report.totals.margin == table["charge"] - table["cost"]
    # Every breakdown adds up to the same totals.
    for rows in (report.by_day, report.by_model, report.by_provider, report.top_customers):
        assert sum(r.charge for r in rows) == table["charge"]
        assert sum(r.cost for r in rows) == table["cost"]
        assert sum(r.requests for r in rows) == 400
    for row in report.by_model:
        mine = UsageRecord.objects.filter(model=row.label).aggregate(c=Sum("charge"), k=Sum("cost"))
        assert (row.charge, row.cost, row.margin) == (mine["c"], mine["k"], mine["c"] - mine["k"])
    cheap = next(r for r in report.by_model if r.label == "cheap")
    assert cheap.margin < 0  # selling below cost shows as a loss
    claude = next(r for r in report.by_model if r.label == "claude")
    assert claude.margin == 0


def test_margin_per_request_is_charge_minus_cost() -> None:
    _generate(seed=3, days=1, per_day=30)
    for record in UsageRecord.objects.filter(status=200):
        _, sell, cost = CATALOGUE[record.model]
        usage = {
            "endpoint": record.endpoint,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
        }
        assert record.charge - record.cost == token_charge(
            sell, input_tokens=record.input_tokens, output_tokens=record.output_tokens
        ) - route_cost(cost, usage)


def test_rolling_up_again_changes_nothing_and_picks_up_late_records() -> None:
    users = _generate(seed=5, days=2, per_day=10)
    period = Period(DAY0, DAY0 + timedelta(days=1))
    rollup_days(period.days)
    rollup_days(period.days)
    assert usage_report(period).totals.requests == 20
    UsageRecord.objects.create(
        request_id="late",
        user=users[0],
        endpoint="chat.completions",
        model="gpt-4o",
        provider="openai",
        status=200,
        charge=1234,
        cost=1000,
        created_at=datetime(2026, 11, 1, 23, 59, tzinfo=UTC),
    )
    rollup_days([DAY0])
    report = usage_report(period)
    assert report.totals.requests == 21
    assert report.totals.charge == UsageRecord.objects.aggregate(s=Sum("charge"))["s"]


def test_money_in_and_credits_outstanding_equal_the_ledger(personas: Personas) -> None:
    customer = make_user()
    posts = [("topup", 20_000_000), ("topup", 5_000_000), ("redemption", 10_000_000)]
    for i, (kind, amount) in enumerate(posts):
        ledger_post(user=customer, kind=kind, amount=amount, reference=f"money-in-{i}")
    report = usage_report(period_from({"days": "1"}))  # today, when they were posted
    assert (report.money_in_total.topups, report.money_in_total.topup_count) == (25_000_000, 2)
    assert report.money_in_total.redemptions == 10_000_000
    assert report.outstanding == Wallet.objects.aggregate(s=Sum("balance"))["s"]
    assert report.outstanding == LedgerEntry.objects.aggregate(s=Sum("amount"))["s"]
    november = Period(DAY0, DAY0 + timedelta(days=29))
    assert usage_report(november).money_in_total.total == 0


def test_latency_percentiles_read_from_the_histogram() -> None:
    hist = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    hist[LATENCY_BUCKETS_MS.index(100)] = 90
    hist[LATENCY_BUCKETS_MS.index(5000)] = 10
    assert percentile(hist, 0.5) == 100
    assert percentile(hist, 0.95) == 5000


def test_staff_see_the_report_page_and_export_each_table(personas: Personas) -> None:
    _generate(seed=11, days=5, per_day=20)
    rollup_days([DAY0 + timedelta(days=i) for i in range(5)])
    client = Client()
    client.force_login(personas.staff)
    url = reverse("admin:reports_dailymodelstat_changelist")
    query = {"start": "2026-11-01", "end": "2026-11-05"}
    page = client.get(url, query)
    text = page.content.decode()
    assert page.status_code == 200
    for heading in (
        "Revenue",
        "Upstream cost",
        "Margin",
        "Credits outstanding",
        "By model",
        "Top customers",
        "<svg",
    ):
        assert heading in text
    total = UsageRecord.objects.aggregate(s=Sum("charge"))["s"]
    for which, column in [
        ("daily", "revenue_credits"),
        ("models", "revenue_credits"),
        ("providers", "revenue_credits"),
        ("customers", "revenue_credits"),
    ]:
        export = client.get(url, {**query, "export": which})
        assert export["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.content.decode())))
        assert sum(int(r[column]) for r in rows) == total, which
    models = list(
        csv.DictReader(io.StringIO(client.get(url, {**query, "export": "models"}).content.decode()))
    )
    assert {"p50_ms", "p95_ms", "margin_pct"} <= set(models[0])


def test_customers_cannot_see_reports(personas: Personas) -> None:
    client = Client()
    client.force_login(personas.funded)
    response = client.get(reverse("admin:reports_dailymodelstat_changelist"))
    assert response.status_code == 302


def test_the_rollup_command_and_task(personas: Personas) -> None:
    from io import StringIO

    from django.core.management import call_command

    from reports.tasks import rollup_recent_usage

    _generate(seed=2, days=3, per_day=5)
    out = StringIO()
    call_command("rollup_usage", "--since", "2026-11-01", stdout=out)
    assert "15 usage records" in out.getvalue()
    assert rollup_recent_usage.delay().get() == 0  # nothing today


def test_a_bad_period_falls_back_to_thirty_days() -> None:
    today = date(2026, 12, 2)
    assert period_from({"start": "nope"}, today=today) == Period(date(2026, 11, 3), today)
    assert period_from({"days": "7"}, today=today).start == date(2026, 11, 26)
    swapped = period_from({"start": "2026-11-10", "end": "2026-11-01"}, today=today)
    assert (swapped.start, swapped.end) == (date(2026, 11, 1), date(2026, 11, 10))
