"""What a request cost us upstream, from the route's cost prices: the same formulas
as the charge (billing.pricing), so margin per request is exactly charge - cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.pricing import (
    Prices,
    image_charge,
    speech_charge,
    token_charge,
    transcription_charge,
)


def route_cost(route_cost_prices: Prices | None, usage: Mapping[str, Any]) -> int:
    """Credits the upstream charged for `usage`: the values the gateway writes on the
    usage record (`endpoint`, `input_tokens`, `output_tokens`, `cached_input_tokens`,
    `units`, and `size` for images). 0 when the route has no cost set."""
    if route_cost_prices is None:
        return 0
    endpoint = str(usage.get("endpoint") or "")
    units = int(usage.get("units") or 0)
    if endpoint.startswith("images."):
        return image_charge(route_cost_prices, size=usage.get("size"), count=units)
    if endpoint == "audio.speech":
        return speech_charge(route_cost_prices, characters=units)
    if endpoint == "audio.transcriptions":
        return transcription_charge(route_cost_prices, seconds=units)
    return token_charge(
        route_cost_prices,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=int(usage.get("cached_input_tokens") or 0),
    )
