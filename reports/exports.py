"""CSV exports of each report table: credits as integers next to US$ figures, so a
spreadsheet can total them exactly."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from billing.money import credits_to_usd
from reports.selectors import MoneyInDay, RailRow, Report, Row


def _pct(permille: int | None) -> str:
    return "" if permille is None else f"{permille // 10}.{abs(permille) % 10}"


def _row_fields(row: Row) -> list[object]:
    return [
        row.requests,
        row.errors,
        _pct(row.error_permille),
        row.charge,
        credits_to_usd(row.charge),
        row.cost,
        credits_to_usd(row.cost),
        row.margin,
        credits_to_usd(row.margin),
        _pct(row.margin_permille),
    ]


_ROW_HEAD = [
    "requests",
    "errors",
    "error_rate_pct",
    "revenue_credits",
    "revenue_usd",
    "cost_credits",
    "cost_usd",
    "margin_credits",
    "margin_usd",
    "margin_pct",
]


def _rows(first: str, rows: list[Row], latency: bool = False) -> list[list[object]]:
    head = [first, *_ROW_HEAD, *(["p50_ms", "p95_ms"] if latency else [])]
    body = [
        [r.label, *_row_fields(r), *([r.p50 or "", r.p95 or ""] if latency else [])] for r in rows
    ]
    return [head, *body]


def _money_in(days: list[MoneyInDay]) -> list[list[object]]:
    head = ["day", "topups", "topup_credits", "topup_usd", "redemptions", "redemption_credits"]
    return [
        [*head, "redemption_usd"],
        *[
            [
                d.day.isoformat(),
                d.topup_count,
                d.topups,
                credits_to_usd(d.topups),
                d.redemption_count,
                d.redemptions,
                credits_to_usd(d.redemptions),
            ]
            for d in days
        ],
    ]


def _blank(value: int | None) -> object:
    return "" if value is None else value


def _rails(rows: list[RailRow]) -> list[list[object]]:
    head = ["rail", "currency", "payments", "paid_minor_units", "credits", "credits_usd"]
    return [
        head,
        *[
            [r.rail, r.currency, r.payments, _blank(r.paid), r.credits, credits_to_usd(r.credits)]
            for r in rows
        ],
    ]


EXPORTS: dict[str, Callable[[Report], list[list[object]]]] = {
    "daily": lambda r: _rows("day", r.by_day),
    "models": lambda r: _rows("model", r.by_model, latency=True),
    "providers": lambda r: _rows("provider", r.by_provider, latency=True),
    "customers": lambda r: _rows("customer", r.top_customers),
    "money_in": lambda r: _money_in(r.money_in),
    "rails": lambda r: _rails(r.by_rail),
}


def report_csv(report: Report, which: str) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(EXPORTS[which](report))
    return out.getvalue()
