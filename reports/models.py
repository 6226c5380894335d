"""Daily rollups of usage for staff reports.

Reports read these small tables instead of scanning the usage table: a month is a
few thousand rows whatever the traffic. They are recomputed, a whole day at a time,
from `gateway.UsageRecord` by `reports.rollup.rollup_days` (a Celery beat task every
few minutes for today and yesterday, and `manage.py rollup_usage` for any range), so a
rerun is harmless and a late record (a reservation settled after its process died)
is counted the next time its day is rolled up.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DailyModelStat(models.Model):
    """One day of one model through one provider."""

    day = models.DateField()
    model = models.CharField(max_length=120)
    provider = models.CharField(max_length=64)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)  # status >= 400
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    charge = models.BigIntegerField(default=0, help_text="credits: revenue")
    cost = models.BigIntegerField(default=0, help_text="credits: what upstreams charged us")
    # Requests per latency bucket (reports.rollup.LATENCY_BUCKETS_MS), so percentiles
    # can be read for any set of days, models or providers.
    latency_hist = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "model", "provider"], name="uniq_daily_model")
        ]
        indexes = [models.Index(fields=["day"])]
        verbose_name = "usage report"
        verbose_name_plural = "usage reports: revenue, cost, margin, latency"

    def __str__(self) -> str:
        return f"{self.day} {self.model} via {self.provider or '-'}"


class DailyCustomerStat(models.Model):
    day = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    charge = models.BigIntegerField(default=0, help_text="credits")
    cost = models.BigIntegerField(default=0, help_text="credits")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "user"], name="uniq_daily_customer")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.day} user {self.user_id}"


class RollupRun(models.Model):
    """When each day was last rolled up, so the report can say how fresh it is."""

    day = models.DateField(unique=True)
    rolled_up_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.day} at {self.rolled_up_at:%H:%M}"
