"""What the staff reports show, read from the daily rollups (reports.models), the
ledger (money received) and the wallets (credits outstanding). Integers throughout:
credits, counts, and rates in tenths of a percent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Case, CharField, Count, Q, Sum, Value, When
from django.db.models.functions import TruncDate

from accounts.models import User
from billing.models import BankTransfer, LedgerEntry, PayosOrder, Wallet
from reports.models import DailyCustomerStat, DailyModelStat, RollupRun
from reports.rollup import merge, percentile


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.start, time.min, tzinfo=UTC)
        return start, datetime.combine(self.end, time.min, tzinfo=UTC) + timedelta(days=1)


def permille(part: int, whole: int) -> int | None:
    """part / whole in tenths of a percent, rounded down (no floats)."""
    return None if not whole else part * 1000 // whole


@dataclass
class Row:
    """One line of a report table: a day, a model, a provider or a customer."""

    key: object
    label: str
    requests: int = 0
    errors: int = 0
    charge: int = 0
    cost: int = 0
    p50: int | None = None
    p95: int | None = None

    @property
    def margin(self) -> int:
        return self.charge - self.cost

    @property
    def margin_permille(self) -> int | None:
        return permille(self.margin, self.charge)

    @property
    def error_permille(self) -> int | None:
        return permille(self.errors, self.requests)


@dataclass
class MoneyInDay:
    day: date
    topups: int = 0
    topup_count: int = 0
    redemptions: int = 0
    redemption_count: int = 0

    @property
    def total(self) -> int:
        return self.topups + self.redemptions


@dataclass(frozen=True)
class RailRow:
    """Money in through one rail in one currency: what customers paid (in the
    currency's smallest unit: đồng, US cents) and the credits it bought."""

    rail: str
    currency: str
    payments: int
    paid: int | None  # None where the entries do not record it (codes, older top-ups)
    credits: int

    @property
    def label(self) -> str:
        return RAIL_LABELS.get(self.rail, self.rail)


RAIL_LABELS = {
    "payos": "VietQR (payOS)",
    "sepay": "Bank transfer (SePay)",
    "stripe": "Card (Stripe)",
    "code": "Redemption codes",
    "other": "Other top-ups",
}


@dataclass(frozen=True)
class PaymentQueues:
    """What waits for staff on the đồng rails."""

    unmatched_transfers: int
    unmatched_vnd: int
    payos_to_review: int


@dataclass
class Report:
    period: Period
    totals: Row
    by_day: list[Row]
    by_model: list[Row]
    by_provider: list[Row]
    top_customers: list[Row]
    money_in: list[MoneyInDay]
    by_rail: list[RailRow]
    queues: PaymentQueues
    outstanding: int  # credits: the sum of every wallet's balance (what we owe)
    funded_wallets: int
    rolled_up_at: datetime | None
    money_in_total: MoneyInDay = field(init=False)

    def __post_init__(self) -> None:
        total = MoneyInDay(self.period.end)
        for d in self.money_in:
            total.topups += d.topups
            total.topup_count += d.topup_count
            total.redemptions += d.redemptions
            total.redemption_count += d.redemption_count
        self.money_in_total = total


_SUMS = {
    "requests": Sum("requests"),
    "errors": Sum("errors"),
    "charge": Sum("charge"),
    "cost": Sum("cost"),
}


def _row(key: object, label: str, values: dict) -> Row:
    return Row(
        key=key,
        label=label,
        requests=values["requests"] or 0,
        errors=values["errors"] or 0,
        charge=values["charge"] or 0,
        cost=values["cost"] or 0,
    )


def _grouped(stats: object, field_name: str) -> list[Row]:
    """Rows per model or provider, with latency percentiles from merged histograms."""
    rows: dict[str, Row] = {}
    hists: dict[str, list[list[int]]] = {}
    for stat in stats.values(field_name, "requests", "errors", "charge", "cost", "latency_hist"):  # type: ignore[attr-defined]
        key = stat[field_name] or "-"
        row = rows.setdefault(key, Row(key=key, label=key))
        row.requests += stat["requests"]
        row.errors += stat["errors"]
        row.charge += stat["charge"]
        row.cost += stat["cost"]
        hists.setdefault(key, []).append(stat["latency_hist"])
    for key, row in rows.items():
        merged = merge(hists[key])
        row.p50, row.p95 = percentile(merged, 0.50), percentile(merged, 0.95)
    return sorted(rows.values(), key=lambda r: (-r.charge, -r.requests, r.label))


def usage_report(period: Period, *, top: int = 20) -> Report:
    stats = DailyModelStat.objects.filter(day__gte=period.start, day__lte=period.end)
    totals = _row("total", "Total", stats.aggregate(**_SUMS))
    per_day = {r["day"]: r for r in stats.values("day").annotate(**_SUMS).order_by()}
    by_day = [
        _row(day, day.isoformat(), per_day.get(day, dict.fromkeys(_SUMS, 0))) for day in period.days
    ]
    customers = (
        DailyCustomerStat.objects.filter(day__gte=period.start, day__lte=period.end)
        .values("user_id")
        .annotate(**_SUMS)
        .order_by("-charge", "user_id")[:top]
    )
    emails = dict(
        User.objects.filter(pk__in=[c["user_id"] for c in customers]).values_list("pk", "email")
    )
    top_customers = [_row(c["user_id"], emails.get(c["user_id"], "?"), c) for c in customers]
    wallets = Wallet.objects.aggregate(
        total=Sum("balance"), funded=Count("id", filter=Q(balance__gt=0))
    )
    last_run = RollupRun.objects.filter(day__lte=period.end).order_by("-day").first()
    return Report(
        period=period,
        totals=totals,
        by_day=by_day,
        by_model=_grouped(stats, "model"),
        by_provider=_grouped(stats, "provider"),
        top_customers=top_customers,
        money_in=money_in(period),
        by_rail=money_by_rail(period),
        queues=payment_queues(),
        outstanding=wallets["total"] or 0,
        funded_wallets=wallets["funded"] or 0,
        rolled_up_at=last_run.rolled_up_at if last_run else None,
    )


def money_in(period: Period) -> list[MoneyInDay]:
    """Top-ups and redemptions per day, straight from the ledger (indexed by date)."""
    start, end = period.bounds()
    rows = (
        LedgerEntry.objects.filter(
            created_at__gte=start,
            created_at__lt=end,
            kind__in=[LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.REDEMPTION],
        )
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "kind")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by()
    )
    days = {day: MoneyInDay(day) for day in period.days}
    for r in rows:
        day = days.get(r["day"])
        if day is None:
            continue
        if r["kind"] == LedgerEntry.Kind.TOPUP:
            day.topups, day.topup_count = r["total"], r["n"]
        else:
            day.redemptions, day.redemption_count = r["total"], r["n"]
    return list(days.values())


_RAIL = Case(
    When(kind=LedgerEntry.Kind.REDEMPTION, then=Value("code")),
    When(reference__startswith="payos:", then=Value("payos")),
    When(reference__startswith="sepay:", then=Value("sepay")),
    When(reference__startswith="stripe:", then=Value("stripe")),
    default=Value("other"),
    output_field=CharField(),
)


def money_by_rail(period: Period) -> list[RailRow]:
    """Top-ups and redemptions in the period by rail and currency, from the ledger
    (each top-up's entry records what was paid, in which currency, at which rate)."""
    start, end = period.bounds()
    rows = (
        LedgerEntry.objects.filter(
            created_at__gte=start,
            created_at__lt=end,
            kind__in=[LedgerEntry.Kind.TOPUP, LedgerEntry.Kind.REDEMPTION],
        )
        .annotate(rail=_RAIL)
        .values("rail", "paid_currency")
        .annotate(n=Count("id"), paid=Sum("paid_amount"), credits=Sum("amount"))
        .order_by()
    )
    result = [
        RailRow(
            rail=r["rail"],
            currency=r["paid_currency"] or ("credits" if r["rail"] == "code" else ""),
            payments=r["n"],
            paid=r["paid"],
            credits=r["credits"] or 0,
        )
        for r in rows
    ]
    order = list(RAIL_LABELS)
    return sorted(result, key=lambda r: (order.index(r.rail), r.currency))


def payment_queues() -> PaymentQueues:
    waiting = BankTransfer.objects.filter(outcome=BankTransfer.Outcome.UNMATCHED).aggregate(
        n=Count("id"), vnd=Sum("amount")
    )
    return PaymentQueues(
        unmatched_transfers=waiting["n"] or 0,
        unmatched_vnd=waiting["vnd"] or 0,
        payos_to_review=PayosOrder.objects.filter(needs_review=True).count(),
    )
