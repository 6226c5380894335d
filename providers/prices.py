from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prices:
    """A model's prices as the catalogue holds them, in credits (1 credit = US$0.000001).
    The charge formulas that use them live in billing.pricing."""

    input_per_mtok: int = 0
    output_per_mtok: int = 0
    cached_input_per_mtok: int | None = None
    per_image: int | dict[str, int] | None = None  # per image, or size -> credits
    per_mchar: int | None = None  # speech, per million input characters
    per_minute: int | None = None  # transcription, per minute of audio
