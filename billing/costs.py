"""What a request cost us upstream, from the route's cost prices: the same formulas
as the charge (billing.pricing), so margin per request is exactly charge - cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from billing.pricing import (
    Prices,
    image_charge,
    speech_charge,
    transcription_charge,
    usage_charge,
)
from providers.translation.usage import Usage

_USAGE_FIELDS = tuple(f.name for f in fields(Usage))


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
    if endpoint in ("audio.transcriptions", "audio.translations"):
        return transcription_charge(route_cost_prices, seconds=units)
    # Token calls: every component the charge prices (cache writes, reasoning, audio...).
    tokens = Usage(**{name: int(usage.get(name) or 0) for name in _USAGE_FIELDS})
    return usage_charge(route_cost_prices, tokens)
