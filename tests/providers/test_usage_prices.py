"""The providers file carries every token price, and the catalogue's Prices read them."""

from __future__ import annotations

import pytest

from billing.pricing import usage_charge
from providers.loader import LoadError, catalogue_apply, catalogue_parse
from providers.models import AiModel
from providers.prices import Prices
from providers.translation import Usage

FILE = """
providers:
  - {name: anthropic, kind: anthropic, base_url: https://api.anthropic.com, keys: []}
models:
  - id: claude-sonnet
    routes: [{provider: anthropic, upstream_model: claude-sonnet-4}]
    price:
      input_per_mtok: 3000000
      output_per_mtok: 15000000
      cached_input_per_mtok: 300000
      cache_write_per_mtok: 3750000
      cache_write_1h_per_mtok: 6000000
  - id: gpt-4o-audio
    routes: [{provider: anthropic}]
    price:
      input_per_mtok: 2500000
      output_per_mtok: 10000000
      audio_input_per_mtok: 40000000
      audio_output_per_mtok: 80000000
      image_input_per_mtok: 5000000
      image_output_per_mtok: 40000000
"""


@pytest.mark.django_db
def test_every_token_price_loads_and_prices_a_call() -> None:
    catalogue_apply(catalogue_parse(FILE))
    claude = Prices.of(AiModel.objects.get(public_id="claude-sonnet"))
    assert (claude.cache_write_per_mtok, claude.cache_write_1h_per_mtok) == (3_750_000, 6_000_000)
    usage = Usage(3021, 0, 0, cache_write_tokens=1000, cache_write_1h_tokens=2000)
    assert usage_charge(claude, usage) == 63 + 3750 + 12_000
    audio = Prices.of(AiModel.objects.get(public_id="gpt-4o-audio"))
    assert audio.audio_output_per_mtok == 80_000_000
    assert audio.image_input_per_mtok == 5_000_000
    assert audio.cache_write_per_mtok is None  # unset: falls back to the input price


def test_a_misspelt_price_field_is_refused() -> None:
    with pytest.raises(LoadError, match="cache_write_1hour_per_mtok"):
        catalogue_parse(FILE.replace("cache_write_1h_per_mtok", "cache_write_1hour_per_mtok"))
