from __future__ import annotations

from django import template

from billing.money import credits_to_usd, usd_and_credits

register = template.Library()


@register.filter
def usd_credits(credits: int | None) -> str:
    """ "$10.00 (10,000,000 credits)" for staff pages."""
    return "" if credits is None else usd_and_credits(credits)


@register.filter
def usd(credits: int | None) -> str:
    return "" if credits is None else credits_to_usd(credits)
