"""Money in đồng, credits inside.

Customers in Vietnam pay in đồng (VND, whole numbers: the đồng has no smaller unit in
use); the wallet holds credits (1 credit = US$0.000001). The operator sets the rate,
`NEXAI_VND_PER_USD` whole đồng per US$, with the day it was set
(`NEXAI_VND_PER_USD_DATE`). A payment becomes credits at the rate of the moment it is
received, and its ledger entry keeps the amount, the currency and that rate.

Rounding: credits = floor(đồng * 1,000,000 / rate), toward the operator, by less than
one credit (US$0.000001, about 0.03 ₫ at 25,000 ₫ a dollar, far below the 1 ₫ a bank
can move). So the credits issued never exceed what was paid at the stated rate, which
is what the books reconcile against, and a customer could only tell the difference by
paying the same amount a few million times. Charges round the same way (up, DESIGN.md),
so every rounding in nexai favours the operator by under a credit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.utils.translation import get_language

from billing.money import CREDITS_PER_USD

VND = "VND"
USD = "USD"


@dataclass(frozen=True)
class Rate:
    vnd_per_usd: int  # whole đồng for one US$
    set_on: date

    def credits_for(self, vnd: int) -> int:
        """Credits bought by `vnd` đồng, rounded down (see the module's docstring)."""
        if not isinstance(vnd, int) or isinstance(vnd, bool) or vnd < 0:
            raise ValueError(f"đồng are whole and not negative, not {vnd!r}")
        return vnd * CREDITS_PER_USD // self.vnd_per_usd

    def vnd_for(self, credits: int) -> int:
        """What `credits` are worth in đồng, to the nearest đồng (for showing only:
        nothing is ever paid or credited from this figure)."""
        sign = -1 if credits < 0 else 1
        return sign * (
            (abs(int(credits)) * self.vnd_per_usd + CREDITS_PER_USD // 2) // CREDITS_PER_USD
        )


@dataclass(frozen=True)
class Paid:
    """What a customer paid for a top-up, as its ledger entry records it: the amount in
    the currency's smallest unit (đồng, or US cents), and for đồng the rate used."""

    amount: int
    currency: str
    rate: Rate | None = None


def current_rate() -> Rate | None:
    """The operator's rate now, or None when no rate is set (then nothing is sold in
    đồng and no đồng figure is shown)."""
    rate, day = settings.NEXAI_VND_PER_USD, settings.NEXAI_VND_PER_USD_DATE
    if not rate or day is None:
        return None
    return Rate(vnd_per_usd=int(rate), set_on=day)


def format_vnd(amount: int, *, language: str | None = None) -> str:
    """ "100.000 ₫" in Vietnamese (dots group thousands), "100,000 ₫" otherwise."""
    text = f"{int(amount):,}"
    if (language or get_language() or "").startswith("vi"):
        text = text.replace(",", ".")
    return f"{text} ₫"


def parse_vnd(text: str) -> int:
    """ "100.000", "100,000", "100 000 ₫", "100000" typed by a customer, to whole đồng.
    The đồng has no decimals, so dots and commas can only group thousands. Raises
    ValueError for anything else."""
    cleaned = text.strip().removesuffix("₫").removesuffix("đ").removesuffix("VND").strip()
    if not _VND_TEXT.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not an amount in đồng")
    return int(re.sub(r"\D", "", cleaned))


# Digits alone, or grouped by threes with one kind of separator ("100.5" is refused,
# rather than read as a hundred and five đồng).
_VND_TEXT = re.compile(r"\d{1,12}|\d{1,3}([.,\s\u00a0])\d{3}(?:\1\d{3}){0,2}")
