"""Charges from usage, in integer credits (DESIGN.md, Money). Pure functions.

Every formula divides once, at the end, rounding up: a request never costs less
than its exact price, and never a whole credit more.

Token calls: the usage (providers.translation.usage.Usage, every provider's shape read
into one) is split into disjoint components, each priced per million tokens:

    charge = ceil(sum(tokens_i * per_mtok_i) / 1,000,000)

The sum is exact (integers); rounding happens once, on the total, never per
component. `usage_breakdown` returns the components so a customer can see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.money import micro_credits_to_usd
from providers.prices import Prices
from providers.translation.usage import Usage

__all__ = [
    "ChargeLine",
    "Prices",
    "breakdown_rows",
    "charge_from_lines",
    "image_charge",
    "image_price",
    "max_input_per_mtok",
    "max_output_per_mtok",
    "speech_charge",
    "token_charge",
    "transcription_charge",
    "usage_breakdown",
    "usage_charge",
]

MTOK = 1_000_000


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One priced component of a call: `tokens` at `per_mtok` credits per million.
    `micro_credits` is its exact cost in millionths of a credit (an integer)."""

    component: str
    tokens: int
    per_mtok: int

    @property
    def micro_credits(self) -> int:
        return self.tokens * self.per_mtok

    def as_list(self) -> list[str | int]:
        # The compact form a usage record keeps (JSON).
        return [self.component, self.tokens, self.per_mtok]


def _or(price: int | None, fallback: int) -> int:
    return fallback if price is None else price


def usage_breakdown(prices: Prices, usage: Usage) -> list[ChargeLine]:
    """The disjoint components of `usage` with the price each is charged at, in a fixed
    order, leaving out those with no tokens.

    Input: cache reads at `cached_input_per_mtok`, 5-minute and 1-hour cache writes at
    `cache_write_per_mtok` / `cache_write_1h_per_mtok`, audio and image prompt tokens
    at their prices, and the rest at `input_per_mtok`. Output: audio and image output
    at their prices, the rest (text and reasoning) at `output_per_mtok`. Components
    that together exceed their total (an upstream's inconsistent report) are capped in
    that order, so no token is charged twice."""
    inp, out = prices.input_per_mtok, prices.output_per_mtok
    write_5m = _or(prices.cache_write_per_mtok, inp)
    input_parts = [
        ("cache_read", usage.cached_input_tokens, _or(prices.cached_input_per_mtok, inp)),
        ("cache_write_5m", usage.cache_write_tokens, write_5m),
        (
            "cache_write_1h",
            usage.cache_write_1h_tokens,
            _or(prices.cache_write_1h_per_mtok, write_5m),
        ),
        ("audio_input", usage.audio_input_tokens, _or(prices.audio_input_per_mtok, inp)),
        ("image_input", usage.image_input_tokens, _or(prices.image_input_per_mtok, inp)),
    ]
    output_parts = [
        ("audio_output", usage.audio_output_tokens, _or(prices.audio_output_per_mtok, out)),
        ("image_output", usage.image_output_tokens, _or(prices.image_output_per_mtok, out)),
    ]
    lines = _split("input", usage.input_tokens, inp, input_parts)
    lines += _split("output", usage.output_tokens, out, output_parts)
    return [line for line in lines if line.tokens]


def _split(
    rest_name: str, total: int, rest_price: int, parts: list[tuple[str, int, int]]
) -> list[ChargeLine]:
    left = max(total, 0)
    lines = []
    for name, tokens, price in parts:
        taken = min(max(tokens, 0), left)
        left -= taken
        lines.append(ChargeLine(name, taken, price))
    # The plain tokens come first: what every call has, then what some calls add.
    return [ChargeLine(rest_name, left, rest_price), *lines]


def charge_from_lines(lines: list[ChargeLine]) -> int:
    return _ceil_div(sum(line.micro_credits for line in lines), MTOK)


def breakdown_rows(charge_lines: list[list[str | int]]) -> list[dict[str, str | int]]:
    """A usage record's `charge_lines` as a customer reads them: each component, its
    tokens, its price per million and its exact cost in US dollars."""
    rows: list[dict[str, str | int]] = []
    for component, tokens, per_mtok in charge_lines:
        line = ChargeLine(str(component), int(tokens), int(per_mtok))
        rows.append(
            {
                "component": line.component,
                "tokens": line.tokens,
                "per_mtok": line.per_mtok,
                "usd": micro_credits_to_usd(line.micro_credits),
            }
        )
    return rows


def usage_charge(prices: Prices, usage: Usage) -> int:
    """Credits for a token call: ceil(exact sum of every component / 1,000,000)."""
    return charge_from_lines(usage_breakdown(prices, usage))


def token_charge(
    prices: Prices, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> int:
    """ceil((in * input + out * output) / 1M); cached input tokens (part of `input_tokens`)
    are billed at the cached price when the model has one. Kept for the callers that
    have only these counts (embeddings, estimates); calls with a Usage use usage_charge."""
    usage = Usage(input_tokens, output_tokens, cached_input_tokens=cached_input_tokens)
    return usage_charge(prices, usage)


def max_input_per_mtok(
    prices: Prices, *, cache_writes: bool = True, hour_writes: bool = True
) -> int:
    """The highest price any input token of this model can be charged at: a bound must
    use it, since a cache write (1.25x or 2x on Anthropic) or an audio token can cost
    more than a plain one. `cache_writes=False` leaves out the cache-write prices (for a
    request that asks for no cache writes); `hour_writes=False` only the 1-hour one."""
    candidates = [
        prices.input_per_mtok,
        prices.cached_input_per_mtok or 0,
        prices.audio_input_per_mtok or 0,
        prices.image_input_per_mtok or 0,
    ]
    if cache_writes:
        write_5m = _or(prices.cache_write_per_mtok, prices.input_per_mtok)
        candidates.append(write_5m)
        if hour_writes:
            candidates.append(_or(prices.cache_write_1h_per_mtok, write_5m))
    return max(candidates)


def max_output_per_mtok(prices: Prices) -> int:
    return max(
        prices.output_per_mtok, prices.audio_output_per_mtok or 0, prices.image_output_per_mtok or 0
    )


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
