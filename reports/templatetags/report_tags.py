from __future__ import annotations

from django import template

from billing.exchange import VND, format_vnd
from billing.money import cents_to_usd, credits_to_usd_brief

register = template.Library()


@register.filter
def pct(permille: int | None) -> str:
    """Tenths of a percent as "12.3%" (integers, no floats)."""
    if permille is None:
        return "—"
    sign = "-" if permille < 0 else ""
    return f"{sign}{abs(permille) // 10}.{abs(permille) % 10}%"


@register.filter
def brief(credits: int | None) -> str:
    return "" if credits is None else credits_to_usd_brief(credits)


@register.filter
def ms(value: int | None) -> str:
    if value is None:
        return "—"
    return f"≤{value / 1000:g} s" if value >= 1000 else f"≤{value} ms"


@register.filter
def paid_in(row: object) -> str:
    """What customers paid on a rail, in its currency: "1,250,000 ₫", "$25.00"."""
    paid, currency = getattr(row, "paid", None), getattr(row, "currency", "")
    if paid is None:
        return "—"
    return format_vnd(paid, language="en") if currency == VND else cents_to_usd(paid)
