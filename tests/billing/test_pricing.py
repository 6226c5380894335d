"""Token charges in integer credits: every provider's components at their own prices,
one rounding up on the exact total (DESIGN.md, Money)."""

from __future__ import annotations

from typing import Any

import pytest

from billing.money import micro_credits_to_usd
from billing.pricing import (
    ChargeLine,
    breakdown_rows,
    charge_from_lines,
    max_input_per_mtok,
    token_charge,
    usage_breakdown,
    usage_charge,
)
from providers.prices import Prices
from providers.translation import Usage
from tests.fixtures.usage import usage_fixtures

FIXTURES = usage_fixtures()
READERS = {
    "openai_chat": Usage.from_openai_chat,
    "responses": Usage.from_responses,
    "anthropic": Usage.from_anthropic,
    "gemini": Usage.from_gemini,
}

SONNET = Prices(
    input_per_mtok=3_000_000,
    output_per_mtok=15_000_000,
    cached_input_per_mtok=300_000,
    cache_write_per_mtok=3_750_000,
    cache_write_1h_per_mtok=6_000_000,
)


def read(fixture: dict[str, Any]) -> Usage:
    return READERS[fixture["reader"]](fixture["usage"])


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=[n for n, _ in FIXTURES])
def test_each_provider_fixture_is_charged_to_the_credit(name: str, fixture: dict) -> None:
    """The expected charge in each fixture was worked out by hand from the provider's
    published rules (its `charge_micro_credits` shows the sum)."""
    prices = Prices(**fixture["prices"])
    assert usage_charge(prices, read(fixture)) == fixture["charge"]


@pytest.mark.parametrize(("name", "fixture"), FIXTURES, ids=[n for n, _ in FIXTURES])
def test_the_breakdown_adds_up_to_the_charge_and_covers_every_token(
    name: str, fixture: dict
) -> None:
    prices = Prices(**fixture["prices"])
    usage = read(fixture)
    lines = usage_breakdown(prices, usage)
    assert charge_from_lines(lines) == usage_charge(prices, usage)
    assert sum(line.tokens for line in lines) == usage.input_tokens + usage.output_tokens


def test_cache_writes_cost_more_than_plain_input_and_one_hour_more_than_five_minutes() -> None:
    plain = usage_charge(SONNET, Usage(1_000_000, 0))
    five = usage_charge(SONNET, Usage(1_000_000, 0, cache_write_tokens=1_000_000))
    hour = usage_charge(SONNET, Usage(1_000_000, 0, cache_write_1h_tokens=1_000_000))
    read_ = usage_charge(SONNET, Usage(1_000_000, 0, cached_input_tokens=1_000_000))
    assert (read_, plain, five, hour) == (300_000, 3_000_000, 3_750_000, 6_000_000)


def test_the_breakdown_names_each_component_with_its_price() -> None:
    usage = Usage(
        1_210, 500, cached_input_tokens=1_000, cache_write_tokens=100, cache_write_1h_tokens=100
    )
    assert usage_breakdown(SONNET, usage) == [
        ChargeLine("input", 10, 3_000_000),
        ChargeLine("cache_read", 1_000, 300_000),
        ChargeLine("cache_write_5m", 100, 3_750_000),
        ChargeLine("cache_write_1h", 100, 6_000_000),
        ChargeLine("output", 500, 15_000_000),
    ]


def test_rounding_happens_once_on_the_total_not_per_component() -> None:
    # Half a credit of input and half a credit of output: one credit, not two.
    prices = Prices(input_per_mtok=500_000, output_per_mtok=500_000)
    assert usage_charge(prices, Usage(1, 1)) == 1
    # A millionth of a credit still costs a whole credit: never less than the price.
    assert usage_charge(Prices(input_per_mtok=1), Usage(1, 0)) == 1
    assert usage_charge(prices, Usage(0, 0)) == 0


@pytest.mark.parametrize(
    ("prices", "usage", "expected"),
    [
        # No cache-write price: writes at the input price.
        (Prices(input_per_mtok=3_000_000), Usage(10, 0, cache_write_tokens=10), 30),
        # No 1-hour price: the 5-minute price, then the input price.
        (
            Prices(input_per_mtok=3_000_000, cache_write_per_mtok=3_750_000),
            Usage(1_000, 0, cache_write_1h_tokens=1_000),
            3_750,
        ),
        # No cached price: reads at the input price.
        (Prices(input_per_mtok=2_000_000), Usage(1_000, 0, cached_input_tokens=600), 2_000),
        # No audio or image prices: the text prices.
        (
            Prices(input_per_mtok=1_000_000, output_per_mtok=4_000_000),
            Usage(1_000, 1_000, audio_input_tokens=500, image_output_tokens=500),
            5_000,
        ),
        # A free cache read is free, not the input price.
        (
            Prices(input_per_mtok=1_000_000, cached_input_per_mtok=0),
            Usage(1_000, 0, cached_input_tokens=1_000),
            0,
        ),
    ],
)
def test_unset_prices_fall_back(prices: Prices, usage: Usage, expected: int) -> None:
    assert usage_charge(prices, usage) == expected


def test_an_inconsistent_report_never_charges_a_token_twice() -> None:
    """An upstream that reports more cached than prompt tokens: no component is charged
    beyond the total it belongs to."""
    usage = Usage(100, 10, cached_input_tokens=80, cache_write_tokens=80, audio_output_tokens=50)
    lines = usage_breakdown(SONNET, usage)
    assert sum(line.tokens for line in lines) == 110
    assert dict((line.component, line.tokens) for line in lines) == {
        "cache_read": 80,
        "cache_write_5m": 20,
        "audio_output": 10,
    }


def test_token_charge_keeps_its_meaning_for_existing_callers() -> None:
    prices = Prices(
        input_per_mtok=2_500_000, output_per_mtok=10_000_000, cached_input_per_mtok=1_250_000
    )
    assert (
        token_charge(prices, input_tokens=2006, output_tokens=300, cached_input_tokens=1920) == 5615
    )
    assert token_charge(prices, input_tokens=1_000_000, output_tokens=0) == 2_500_000


def test_the_highest_input_price_includes_cache_writes_and_audio() -> None:
    assert max_input_per_mtok(SONNET) == 6_000_000
    assert max_input_per_mtok(Prices(input_per_mtok=5, audio_input_per_mtok=40)) == 40
    assert max_input_per_mtok(Prices(input_per_mtok=5)) == 5


def test_a_customer_reads_each_line_of_a_charge_in_exact_dollars() -> None:
    usage = Usage.from_anthropic(dict(FIXTURES)["anthropic_cache_read_write"]["usage"])
    lines = [line.as_list() for line in usage_breakdown(SONNET, usage)]
    rows = breakdown_rows(lines)
    assert [(r["component"], r["tokens"], r["usd"]) for r in rows] == [
        ("input", 21, "$0.000063"),
        ("cache_read", 188_086, "$0.0564258"),
        ("cache_write_5m", 1_000, "$0.00375"),
        ("cache_write_1h", 2_000, "$0.012"),
        ("output", 393, "$0.005895"),
    ]
    # The lines add up to US$0.0781338; the charge rounds that up once: 78,134 credits.
    assert usage_charge(SONNET, usage) == 78_134


@pytest.mark.parametrize(
    ("micro", "text"),
    [(0, "$0.00"), (1, "$0.000000000001"), (10**12, "$1.00"), (-5 * 10**10, "-$0.05")],
)
def test_micro_credits_are_shown_exactly(micro: int, text: str) -> None:
    assert micro_credits_to_usd(micro) == text
