"""Selling prices against what the upstream charges us. Pure functions over `Prices`,
integers only, so the loader, the admin and tests share one rule."""

from __future__ import annotations

from dataclasses import fields

from providers.prices import Prices

# Every price field but per_image (which may be a map of sizes), so new fields of
# `Prices` are marked up and checked without a change here.
_SCALAR = tuple(f.name for f in fields(Prices) if f.name != "per_image")


def _up(value: int, percent: int) -> int:
    # ceil(value * (100 + percent) / 100): a markup never rounds the price below it.
    return -(-value * (100 + percent) // 100)


def markup_prices(cost: Prices, percent: int) -> Prices:
    """The selling prices `percent` above `cost`, field by field, rounded up."""
    per_image = cost.per_image
    if isinstance(per_image, dict):
        per_image = {size: _up(v, percent) for size, v in per_image.items()}
    elif per_image is not None:
        per_image = _up(per_image, percent)
    scalars = {
        name: None if getattr(cost, name) is None else _up(getattr(cost, name), percent)
        for name in _SCALAR
    }
    return Prices(**{**scalars, "per_image": per_image})


def highest_cost(costs: list[Prices]) -> Prices | None:
    """Field by field, the dearest of several routes' costs: a markup over it keeps every
    route of the model at or above cost."""
    if not costs:
        return None
    values: dict[str, object] = {}
    for f in fields(Prices):
        present = [getattr(c, f.name) for c in costs if getattr(c, f.name) is not None]
        if f.name == "per_image":
            values[f.name] = _highest_image(present)
        else:
            values[f.name] = max(present) if present else None
    return Prices(**values)  # type: ignore[arg-type]


def _highest_image(present: list[int | dict[str, int]]) -> int | dict[str, int] | None:
    if not present:
        return None
    if all(isinstance(p, int) for p in present):
        return max(present)  # type: ignore[type-var]
    merged: dict[str, int] = {}
    for p in present:
        for size, v in p.items() if isinstance(p, dict) else []:
            merged[size] = max(merged.get(size, 0), v)
    return merged


def below_cost(price: Prices, cost: Prices) -> list[str]:
    """The price fields sold below cost, as "input_per_mtok 2000000 < cost 2500000".
    A field the model does not price (None) but the route costs is below cost too."""
    faults = []
    for name in _SCALAR:
        c = getattr(cost, name)
        if not c:
            continue
        p = getattr(price, name)
        if name == "cached_input_per_mtok" and p is None:
            p = price.input_per_mtok  # unpriced cache reads are billed as input
        if p is None or p < c:
            faults.append(f"{name} {p} < cost {c}")
    faults.extend(_image_below_cost(price.per_image, cost.per_image))
    return faults


def _image_below_cost(
    price: int | dict[str, int] | None, cost: int | dict[str, int] | None
) -> list[str]:
    if cost is None:
        return []
    costs = cost if isinstance(cost, dict) else {"": cost}
    faults = []
    for size, c in costs.items():
        p = price.get(size) if isinstance(price, dict) else price
        if isinstance(price, dict) and not size:
            p = min(price.values()) if price else None
        if p is None or p < c:
            label = f"per_image[{size}]" if size else "per_image"
            faults.append(f"{label} {p} < cost {c}")
    return faults
