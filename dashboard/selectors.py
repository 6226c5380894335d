"""Reads behind the dashboard pages and the management API. Every function takes the
customer and filters by them first, so no caller can forget the owner."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiKey, User
from billing.models import LedgerEntry
from billing.money import credits_to_usd
from dashboard.capabilities import model_capabilities
from gateway import metering
from gateway.models import StoredResponse, UsageRecord
from providers.catalogue import get_catalogue
from providers.models import AiModel


@dataclass(frozen=True)
class DayPoint:
    day: date
    requests: int
    charge: int  # credits


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def daily_series(*, user: User, days: int = 30, today: date | None = None) -> list[DayPoint]:
    """Requests and spend per UTC day for the last `days` days, today included, with
    the quiet days present as zeros so a chart has one point per day."""
    today = today or timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        UsageRecord.objects.filter(user=user, created_at__gte=_day_start(start))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(requests=Count("id"), charge=Sum("charge"))
    )
    by_day = {row["day"]: row for row in rows}
    points = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row = by_day.get(day, {})
        points.append(DayPoint(day, row.get("requests", 0), row.get("charge") or 0))
    return points


def recent_requests(*, user: User, limit: int = 8) -> list[UsageRecord]:
    return list(
        UsageRecord.objects.filter(user=user)
        .select_related("api_key")
        .order_by("-created_at")[:limit]
    )


@dataclass(frozen=True)
class Capacity:
    model: str
    requests: int  # how many such requests the balance admits at once
    output_tokens: int


def concurrent_capacity(*, user: User, balance: int) -> Capacity | None:
    """What the balance can run at once: requests of 4,096 output tokens on the model
    the customer used most in the last 30 days (else the cheapest chat model), each
    holding the most it could cost until it ends (gateway.metering)."""
    models = get_catalogue().models
    since = timezone.now() - timedelta(days=30)
    used = (
        UsageRecord.objects.filter(user=user, created_at__gte=since, model__in=list(models))
        .values("model")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    chat = [m for m in models.values() if m.type == "chat" and m.routes]
    model = models[used["model"]] if used and models[used["model"]].type == "chat" else None
    if model is None and chat:
        model = min(chat, key=lambda m: (m.prices.output_per_mtok, m.public_id))
    if model is None:
        return None
    output = metering.DEFAULT_MAX_OUTPUT
    return Capacity(model.public_id, metering.concurrent_capacity(balance, model), output)


def usage_filtered(
    *,
    user: User,
    api_key: ApiKey | None = None,
    model: str = "",
    status: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[UsageRecord]:
    """The customer's request log, newest first. `status` is "ok" (2xx), "error"
    (anything else) or one HTTP status code; dates are inclusive UTC days."""
    records = UsageRecord.objects.filter(user=user).select_related("api_key")
    if api_key is not None:
        records = records.filter(api_key=api_key)
    if model:
        records = records.filter(model=model)
    if status == "ok":
        records = records.filter(status__gte=200, status__lt=300)
    elif status == "error":
        records = records.filter(Q(status__lt=200) | Q(status__gte=300))
    elif status.isdigit():
        records = records.filter(status=int(status))
    if date_from:
        records = records.filter(created_at__gte=_day_start(date_from))
    if date_to:
        records = records.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return records.order_by("-created_at", "-id")


@dataclass(frozen=True)
class ModelTotal:
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    charge: int  # credits


def model_totals(*, records: QuerySet[UsageRecord]) -> list[ModelTotal]:
    rows = (
        records.order_by()
        .values("model")
        .annotate(
            requests=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            charge=Sum("charge"),
        )
        .order_by("-charge", "model")
    )
    return [
        ModelTotal(
            model=row["model"],
            requests=row["requests"],
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            charge=row["charge"] or 0,
        )
        for row in rows
    ]


def models_used(*, user: User) -> list[str]:
    return list(
        UsageRecord.objects.filter(user=user)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


CSV_HEADER = [
    "created_at",
    "request_id",
    "api_key",
    "endpoint",
    "model",
    "provider",
    "stream",
    "status",
    "error_code",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "units",
    "charge_credits",
    "charge_usd",
    "estimated",
    "latency_ms",
    "ttft_ms",
]


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer."""

    def write(self, value: str) -> str:
        return value


def usage_csv_lines(*, records: QuerySet[UsageRecord]) -> Iterator[str]:
    """The request log as CSV lines, read in chunks so an export of a busy account
    streams in constant memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for r in records.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                r.created_at.isoformat(),
                r.request_id,
                r.api_key.prefix if r.api_key else "",
                r.endpoint,
                _csv_safe(r.model),
                r.provider,
                int(r.stream),
                r.status,
                r.error_code,
                r.input_tokens,
                r.cached_input_tokens,
                r.output_tokens,
                r.units,
                r.charge,
                credits_to_usd(r.charge).replace("$", "").replace(",", ""),
                int(r.estimated),
                r.latency_ms,
                "" if r.ttft_ms is None else r.ttft_ms,
            ]
        )


def _csv_safe(value: str) -> str:
    # A model id is the client's own text: one starting with = + - @ would run as a
    # formula when the export is opened in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def ledger_entries(*, user: User, kind: str = "") -> QuerySet[LedgerEntry]:
    """The customer's ledger, newest first; `kind` "usage" keeps the charges, "credits"
    everything else (gifts, top-ups, refunds, staff adjustments)."""
    entries = LedgerEntry.objects.filter(wallet__user=user).select_related("api_key")
    if kind == "usage":
        entries = entries.filter(kind=LedgerEntry.Kind.USAGE)
    elif kind == "credits":
        entries = entries.exclude(kind=LedgerEntry.Kind.USAGE)
    return entries


def stored_responses(*, user: User) -> QuerySet[StoredResponse]:
    return StoredResponse.objects.filter(user=user).order_by("-created_at", "-id")


def api_keys(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.owned_by(user)


_CATALOGUE_SORTS = {
    "name": lambda m: m.public_id,
    "price": lambda m: (m.input_per_mtok + m.output_per_mtok, m.public_id),
    "context": lambda m: (-(m.context_window or 0), m.public_id),
}


def catalogue_groups(
    *, models: list[AiModel], query: str = "", kind: str = "", capability: str = "", sort: str = ""
) -> dict[str, list[dict]]:
    """The catalogue's rows ({"m": model, "caps": capabilities}) by type, searched by id
    or maker, filtered by type and capability, sorted by name, price or context."""
    rows = [(m, model_capabilities(m)) for m in models]
    needle = query.strip().lower()
    if needle:
        rows = [
            (m, c) for m, c in rows if needle in m.public_id.lower() or needle in m.owned_by.lower()
        ]
    if kind:
        rows = [(m, c) for m, c in rows if m.type == kind]
    if capability in ("vision", "tools", "reasoning"):
        rows = [(m, c) for m, c in rows if getattr(c, capability)]
    rows.sort(key=lambda row: _CATALOGUE_SORTS.get(sort, _CATALOGUE_SORTS["name"])(row[0]))
    groups: dict[str, list[dict]] = {}
    for model, caps in rows:
        groups.setdefault(str(model.get_type_display()), []).append({"m": model, "caps": caps})
    return groups


def public_models(*, types: Iterable[str] | None = None) -> list[AiModel]:
    models = AiModel.objects.filter(enabled=True)
    if types:
        models = models.filter(type__in=list(types))
    return list(models.order_by("type", "owned_by", "public_id"))


@dataclass(frozen=True)
class CostLine:
    label: str
    quantity: int  # tokens
    price_per_mtok: int  # credits per 1M tokens
    usd: str  # exact: quantity * price / 1M credits, in dollars


@dataclass(frozen=True)
class CostBreakdown:
    lines: list[CostLine]
    exact_credits: str  # before rounding up, e.g. "449.5"
    computed: int  # credits, rounded up as the gateway does
    charged: int  # credits, what the ledger took
    priced_now: bool  # the lines use today's prices, which may differ from then


def _exact_usd(micro_credits: int) -> str:
    # micro_credits = tokens * credits-per-1M-tokens; US$ = that / 10^12. Decimal, no float.
    value = (Decimal(micro_credits) / Decimal(10**12)).normalize()
    return f"${value:,f}" if value else "$0"


def _component_labels() -> dict[str, str]:
    return {
        "input": _("Input tokens"),
        "cache_read": _("Cached input tokens (read)"),
        "cache_write_5m": _("Cache writes (5 minutes)"),
        "cache_write_1h": _("Cache writes (1 hour)"),
        "audio_input": _("Audio input tokens"),
        "image_input": _("Image input tokens"),
        "output": _("Output tokens (reasoning included)"),
        "audio_output": _("Audio output tokens"),
        "image_output": _("Image output tokens"),
    }


def _charged_lines(record: UsageRecord) -> CostBreakdown:
    """The lines the gateway charged, at the prices of the day (billing.pricing)."""
    labels = _component_labels()
    lines = [
        CostLine(
            labels.get(str(name), str(name)), int(tokens), int(price), _exact_usd(tokens * price)
        )
        for name, tokens, price in record.charge_lines
    ]
    total = sum(line.quantity * line.price_per_mtok for line in lines)
    exact = (Decimal(total) / 1_000_000).normalize()
    return CostBreakdown(lines, f"{exact:,f}", -(-total // 1_000_000), record.charge, False)


def cost_breakdown(*, record: UsageRecord) -> CostBreakdown | None:
    """How a token request's charge is made up: the lines the gateway charged, kept on
    the record, or for older records the tokens priced with the model's current prices.
    None for non-token requests (images, speech, transcription) and unknown models."""
    if record.charge_lines:
        return _charged_lines(record)
    model = AiModel.objects.filter(public_id=record.model).first()
    if model is None or model.type not in ("chat", "embedding"):
        return None
    cached = min(record.cached_input_tokens, record.input_tokens)
    if model.cached_input_per_mtok is None:
        cached = 0
    parts = [
        (_("Input tokens"), record.input_tokens - cached, model.input_per_mtok),
        (_("Cached input tokens"), cached, model.cached_input_per_mtok or 0),
        (_("Output tokens"), record.output_tokens, model.output_per_mtok),
    ]
    # Input is always shown (even 0); the other kinds only when the request had some.
    lines = [
        CostLine(label, qty, price, _exact_usd(qty * price))
        for n, (label, qty, price) in enumerate(parts)
        if qty or n == 0
    ]
    total = sum(line.quantity * line.price_per_mtok for line in lines)
    exact = (Decimal(total) / 1_000_000).normalize()
    computed = -(-total // 1_000_000)
    return CostBreakdown(lines, f"{exact:,f}", computed, record.charge, True)
