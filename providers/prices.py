from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# Token prices, in credits per million tokens, that a model may set beyond input and
# output. Each is optional: unset, the tokens it would price fall back (see Prices).
OPTIONAL_TOKEN_PRICES = (
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "audio_input_per_mtok",
    "audio_output_per_mtok",
    "image_input_per_mtok",
    "image_output_per_mtok",
)


@dataclass(frozen=True, slots=True)
class Prices:
    """A model's prices as the catalogue holds them, in credits (1 credit = US$0.000001).
    The charge formulas that use them live in billing.pricing.

    Unset optional token prices fall back: cache reads, cache writes, audio and image
    input to `input_per_mtok`; a 1-hour cache write to `cache_write_per_mtok`, then
    `input_per_mtok`; audio and image output to `output_per_mtok`.
    """

    input_per_mtok: int = 0
    output_per_mtok: int = 0
    cached_input_per_mtok: int | None = None
    per_image: int | dict[str, int] | None = None  # per image, or size -> credits
    per_mchar: int | None = None  # speech, per million input characters
    per_minute: int | None = None  # transcription, per minute of audio
    cache_write_per_mtok: int | None = None  # Anthropic 5-minute cache writes
    cache_write_1h_per_mtok: int | None = None  # Anthropic 1-hour cache writes
    audio_input_per_mtok: int | None = None
    audio_output_per_mtok: int | None = None
    image_input_per_mtok: int | None = None
    image_output_per_mtok: int | None = None

    @classmethod
    def of(cls, model: Any) -> Prices:
        """The prices of anything carrying the price fields by name (an AiModel row)."""
        return cls(**{f.name: getattr(model, f.name, f.default) for f in fields(cls)})
