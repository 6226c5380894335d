"""The 30-day chart as SVG geometry computed on the server: no chart library, no
script, and it renders the same in every browser and in screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import formats

from billing.money import credits_to_usd
from dashboard.selectors import DayPoint

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 44, 14, 26


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass
class SpendChart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    line: str = ""  # SVG polyline points for requests per day
    dots: list[tuple[float, float]] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)  # spend, left axis
    r_ticks: list[Tick] = field(default_factory=list)  # requests, right axis
    x_ticks: list[Tick] = field(default_factory=list)
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM
    empty: bool = True

    @property
    def center_x(self) -> float:
        return (self.plot_left + self.plot_right) / 2

    @property
    def center_y(self) -> float:
        return (self.plot_top + self.plot_bottom) / 2


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 x 10^n at or above `value`, so grid lines fall on round numbers."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def spend_chart(points: list[DayPoint]) -> SpendChart:
    chart = SpendChart()
    if not points:
        return chart
    plot_w = chart.plot_right - chart.plot_left
    plot_h = chart.plot_bottom - chart.plot_top
    slot = plot_w / len(points)
    max_charge = _nice_max(max(p.charge for p in points))
    max_requests = _nice_max(max(p.requests for p in points))
    chart.empty = not any(p.requests or p.charge for p in points)

    coords = []
    for i, p in enumerate(points):
        h = plot_h * p.charge / max_charge
        x = chart.plot_left + i * slot
        day = formats.date_format(p.day, "M j")
        title = f"{day}: {credits_to_usd(p.charge)} · {p.requests} req"
        chart.bars.append(
            Bar(
                round(x + slot * 0.15, 1),
                round(chart.plot_bottom - h, 1),
                round(slot * 0.7, 1),
                round(h, 1),
                title,
            )
        )
        cy = chart.plot_bottom - plot_h * p.requests / max_requests
        coords.append((round(x + slot / 2, 1), round(cy, 1)))
        if i % 7 == 0 or i == len(points) - 1:
            chart.x_ticks.append(Tick(round(x + slot / 2, 1), day))
    chart.line = " ".join(f"{x},{y}" for x, y in coords)
    chart.dots = coords
    for k in range(5):
        y = round(chart.plot_bottom - plot_h * k / 4, 1)
        # Cents are enough once a day costs more than a few; below that, exact figures.
        places = 2 if max_charge >= 40_000 else None
        chart.y_ticks.append(Tick(y, credits_to_usd(max_charge * k // 4, places=places)))
        requests = max_requests * k / 4
        chart.r_ticks.append(Tick(y, _compact(requests) if requests == int(requests) else ""))
    return chart


def _compact(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
