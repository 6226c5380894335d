"""Recomputing the daily rollups from the usage table (see reports.models)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from gateway.models import UsageRecord
from reports.models import DailyCustomerStat, DailyModelStat, RollupRun

# Upper bounds (ms) of the latency buckets; a last bucket holds everything slower.
LATENCY_BUCKETS_MS = (
    25, 50, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000,
    3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000, 120000,
)  # fmt: skip


def _bucket() -> Case:
    whens = [
        When(latency_ms__lte=bound, then=Value(i)) for i, bound in enumerate(LATENCY_BUCKETS_MS)
    ]
    return Case(*whens, default=Value(len(LATENCY_BUCKETS_MS)), output_field=IntegerField())


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def rollup_day(day: date) -> int:
    """Replace the rollups of one UTC day (one transaction, three grouped queries).
    Returns the number of usage records it covered."""
    start, end = day_bounds(day)
    records = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
    sums = {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status__gte=400)),
        "charge": Sum("charge"),
        "cost": Sum("cost"),
    }
    per_model = list(
        records.values("model", "provider")
        .annotate(**sums, input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
        .order_by()
    )
    hist_rows = (
        records.annotate(bucket=_bucket())
        .values("model", "provider", "bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    hists: dict[tuple[str, str], list[int]] = {}
    for row in hist_rows:
        hist = hists.setdefault(
            (row["model"], row["provider"]), [0] * (len(LATENCY_BUCKETS_MS) + 1)
        )
        hist[row["bucket"]] += row["n"]
    per_customer = records.values("user_id").annotate(**sums).order_by()
    with transaction.atomic():
        DailyModelStat.objects.filter(day=day).delete()
        DailyCustomerStat.objects.filter(day=day).delete()
        DailyModelStat.objects.bulk_create(
            DailyModelStat(
                day=day,
                model=r["model"],
                provider=r["provider"],
                requests=r["requests"],
                errors=r["errors"],
                input_tokens=r["input_tokens"] or 0,
                output_tokens=r["output_tokens"] or 0,
                charge=r["charge"] or 0,
                cost=r["cost"] or 0,
                latency_hist=hists.get((r["model"], r["provider"]), []),
            )
            for r in per_model
        )
        DailyCustomerStat.objects.bulk_create(
            DailyCustomerStat(
                day=day,
                user_id=r["user_id"],
                requests=r["requests"],
                errors=r["errors"],
                charge=r["charge"] or 0,
                cost=r["cost"] or 0,
            )
            for r in per_customer
        )
        RollupRun.objects.update_or_create(day=day, defaults={"rolled_up_at": timezone.now()})
    return sum(r["requests"] for r in per_model)


def rollup_days(days: list[date]) -> int:
    return sum(rollup_day(day) for day in days)


def recent_days(*, count: int = 2, today: date | None = None) -> list[date]:
    """Today and the days before it (UTC): what the periodic task refreshes."""
    today = today or timezone.now().astimezone(UTC).date()
    return [today - timedelta(days=i) for i in range(count)]


def percentile(hist: list[int], fraction: float) -> int | None:
    """The latency (ms) at `fraction` of the requests, read from a merged histogram as
    the upper bound of the bucket it falls in (so p95 is never understated)."""
    total = sum(hist)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return LATENCY_BUCKETS_MS[i] if i < len(LATENCY_BUCKETS_MS) else None
    return None


def merge(hists: list[list[int]]) -> list[int]:
    merged = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for hist in hists:
        for i, n in enumerate(hist):
            merged[i] += n
    return merged
