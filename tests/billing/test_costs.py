"""What a request cost us upstream, next to what it was charged."""

from __future__ import annotations

import pytest

from billing.costs import route_cost
from billing.pricing import image_charge, token_charge
from providers.costs import below_cost, markup_prices
from providers.prices import Prices

SELL = Prices(input_per_mtok=3_000_000, output_per_mtok=15_000_000, cached_input_per_mtok=300_000)
COST = Prices(input_per_mtok=2_500_000, output_per_mtok=10_000_000, cached_input_per_mtok=250_000)


@pytest.mark.parametrize(
    ("usage", "charge", "cost"),
    [
        # ceil((1000*3 + 500*15) / 1) credits vs ceil((1000*2.5 + 500*10))
        (
            {"endpoint": "chat.completions", "input_tokens": 1000, "output_tokens": 500},
            10_500,
            7_500,
        ),
        # 1 token: both round up to a whole credit
        ({"endpoint": "messages", "input_tokens": 1, "output_tokens": 0}, 3, 3),
        (
            {
                "endpoint": "responses",
                "input_tokens": 2000,
                "output_tokens": 0,
                "cached_input_tokens": 1000,
            },
            3_300,
            2_750,
        ),
    ],
)
def test_margin_per_request_is_charge_minus_cost(usage: dict, charge: int, cost: int) -> None:
    sold = token_charge(
        SELL,
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cached_input_tokens=usage.get("cached_input_tokens", 0),
    )
    assert (sold, route_cost(COST, usage)) == (charge, cost)
    assert sold - route_cost(COST, usage) == charge - cost


def test_other_modalities_use_their_cost_fields() -> None:
    cost = Prices(per_image={"1024x1024": 30_000}, per_mchar=12_000_000, per_minute=5_000)
    assert (
        route_cost(cost, {"endpoint": "images.generations", "units": 2, "size": "1024x1024"})
        == 60_000
    )
    assert route_cost(cost, {"endpoint": "audio.speech", "units": 1000}) == 12_000
    assert route_cost(cost, {"endpoint": "audio.transcriptions", "units": 61}) == 5_084
    assert image_charge(cost, size="1024x1024", count=1) == 30_000


def test_a_route_without_cost_costs_nothing_known() -> None:
    assert route_cost(None, {"endpoint": "chat.completions", "input_tokens": 10**6}) == 0


def test_markup_is_integer_and_rounds_up() -> None:
    marked = markup_prices(Prices(input_per_mtok=1, output_per_mtok=999, per_image={"a": 10}), 20)
    assert (marked.input_per_mtok, marked.output_per_mtok, marked.per_image) == (2, 1199, {"a": 12})
    assert below_cost(marked, Prices(input_per_mtok=1, output_per_mtok=999)) == []
    assert below_cost(Prices(input_per_mtok=1), Prices(input_per_mtok=2)) == [
        "input_per_mtok 1 < cost 2"
    ]
