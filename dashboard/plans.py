"""The customer's plan and how to move up, as the pages say it (DESIGN.md, "Plans and
rate limits"): free until credits other than the signup gift arrive, then paid."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from billing import rails
from billing.models import Wallet


@dataclass(frozen=True)
class PlanInfo:
    paid: bool
    rpm: int  # this plan's requests per minute, per account
    free_rpm: int
    paid_rpm: int
    can_top_up: bool  # a payment method is configured on this server
    support_email: str

    @property
    def upgrade_possible(self) -> bool:
        return not self.paid and (self.can_top_up or bool(self.support_email))


def plan_for(*, wallet: Wallet | None) -> PlanInfo:
    paid = bool(wallet and wallet.paid)
    return PlanInfo(
        paid=paid,
        rpm=settings.NEXAI_PAID_RPM if paid else settings.NEXAI_FREE_RPM,
        free_rpm=settings.NEXAI_FREE_RPM,
        paid_rpm=settings.NEXAI_PAID_RPM,
        can_top_up=rails.any_rail(),
        support_email=settings.NEXAI_SUPPORT_EMAIL,
    )
