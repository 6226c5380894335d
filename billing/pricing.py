"""Charges from usage, in integer credits (DESIGN.md, Money). Pure functions.

Every formula divides once, at the end, rounding up: a request never costs less
than its exact price, and never a whole credit more.
"""

from __future__ import annotations

from providers.prices import Prices

__all__ = [
    "Prices",
    "image_charge",
    "image_price",
    "speech_charge",
    "token_charge",
    "transcription_charge",
]

MTOK = 1_000_000


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def token_charge(
    prices: Prices, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> int:
    """ceil((in * input + out * output) / 1M); cached input tokens (part of `input_tokens`)
    are billed at the cached price when the model has one."""
    cached = (
        min(cached_input_tokens, input_tokens) if prices.cached_input_per_mtok is not None else 0
    )
    total = (
        (input_tokens - cached) * prices.input_per_mtok
        + cached * (prices.cached_input_per_mtok or 0)
        + output_tokens * prices.output_per_mtok
    )
    return _ceil_div(total, MTOK)


def image_price(prices: Prices, size: str | None) -> int | None:
    """Credits per image of `size`, or None when the model has no price for it."""
    if isinstance(prices.per_image, dict):
        if size is None:
            return min(prices.per_image.values()) if prices.per_image else None
        return prices.per_image.get(size)
    return prices.per_image


def image_charge(prices: Prices, *, size: str | None, count: int) -> int:
    return (image_price(prices, size) or 0) * count


def speech_charge(prices: Prices, *, characters: int) -> int:
    return _ceil_div(characters * (prices.per_mchar or 0), MTOK)


def transcription_charge(prices: Prices, *, seconds: float | int) -> int:
    """Billed on whole seconds, rounded up: ceil(ceil(seconds) * per_minute / 60).
    `seconds` may come from an upstream as a decimal; it is rounded up before any money
    arithmetic, so no float reaches the charge."""
    whole = int(seconds) + (0 if float(seconds).is_integer() else 1)
    return _ceil_div(whole * (prices.per_minute or 0), 60)
