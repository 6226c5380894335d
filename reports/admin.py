"""The staff reports page: Django admin, under Reports. One page, one period, every
table exportable as CSV (`?export=daily|models|providers|customers|money_in|rails`)."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from billing.money import credits_to_usd, usd_and_credits
from reports.charts import Series, chart_pair
from reports.exports import EXPORTS, report_csv
from reports.models import DailyModelStat
from reports.selectors import Period, Report, usage_report

PRESETS = (7, 30, 90)
MAX_DAYS = 366


def period_from(params: dict[str, str], *, today: date | None = None) -> Period:
    """?days=30, or ?start=YYYY-MM-DD&end=YYYY-MM-DD; anything unreadable falls back to
    the last 30 days rather than an error page."""
    today = today or timezone.now().astimezone(UTC).date()
    try:
        start = date.fromisoformat(params["start"])
        end = date.fromisoformat(params["end"])
    except (KeyError, ValueError):
        days = int(params["days"]) if params.get("days", "").isdigit() else 30
        days = min(max(days, 1), MAX_DAYS)
        return Period(today - timedelta(days=days - 1), today)
    start, end = min(start, end), max(start, end)
    return Period(max(start, end - timedelta(days=MAX_DAYS - 1)), end)


def _charts(report: Report) -> dict[str, Any]:
    days = report.period.days
    usage = chart_pair(
        days,
        [
            Series("Revenue", [r.charge for r in report.by_day], "#4f46e5"),
            Series("Cost", [r.cost for r in report.by_day], "#f59e0b"),
        ],
        Series("Margin", [r.margin for r in report.by_day], "#059669"),
    )
    money = chart_pair(
        days,
        [
            Series("Top-ups", [d.topups for d in report.money_in], "#0ea5e9"),
            Series("Redemptions", [d.redemptions for d in report.money_in], "#a855f7"),
        ],
    )
    return {"usage_chart": usage, "money_chart": money}


@admin.register(DailyModelStat)
class UsageReportAdmin(admin.ModelAdmin):
    """The rollup model's changelist is the report page itself."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)
        period = period_from(request.GET.dict())
        report = usage_report(period)
        which = request.GET.get("export")
        if which in EXPORTS:
            response = HttpResponse(
                report_csv(report, which), content_type="text/csv; charset=utf-8"
            )
            name = f"nexai-{which}-{period.start}-{period.end}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Revenue, cost and margin",
            "report": report,
            "period": period,
            "presets": PRESETS,
            "days_param": request.GET.get("days", "" if "start" in request.GET else "30"),
            "outstanding": usd_and_credits(report.outstanding),
            "revenue": credits_to_usd(report.totals.charge),
            **_charts(report),
        }
        return TemplateResponse(request, "admin/reports/report.html", context)
