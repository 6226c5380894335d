"""POST /v1/images/generations: forwarded as it is, charged per image made."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from billing.pricing import image_charge, image_price
from gateway import errors, validation
from gateway.calls import Meter, json_passthrough, metered_at
from gateway.relay import Metered
from providers.catalogue import ModelInfo


def _priced_size(model: ModelInfo, size: str | None) -> None:
    if image_price(model.prices, size) is not None:
        return
    per_image = model.prices.per_image
    sizes = ", ".join(sorted(per_image)) if isinstance(per_image, dict) else ""
    raise errors.invalid(
        f"The model '{model.public_id}' has no price for size '{size}'"
        + (f"; available sizes: {sizes}." if sizes else "."),
        param="size",
        code="invalid_value",
    )


def _plan(n: int, size: str | None) -> Callable[[ModelInfo], tuple[int, Meter]]:
    def plan(model: ModelInfo) -> tuple[int, Meter]:
        _priced_size(model, size)

        def meter(raw: bytes, content_type: str) -> Metered:
            data = orjson.loads(raw)["data"]
            if not isinstance(data, list):
                raise TypeError("data is not a list")
            charge = image_charge(model.prices, size=size, count=len(data))
            return metered_at(charge, raw, content_type, units=len(data))

        return image_charge(model.prices, size=size, count=n), meter

    return plan


generations = json_passthrough(
    "images.generations", "images/generations", model_type="image",
    check=validation.images_body, plan=lambda checked: _plan(*checked),
)  # fmt: skip
