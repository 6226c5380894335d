"""The 30-day chart as SVG geometry computed on the server: no chart library, no
script, and it renders the same in every browser and in screenshots. Two sizes are
drawn (wide and narrow) because SVG text scales with the drawing: a phone gets a
drawing made for its width, with readable labels."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import formats
from django.utils.translation import pgettext

from billing.money import credits_to_usd, credits_to_usd_brief
from dashboard.selectors import DayPoint

MIN_TOP_CREDITS = 10_000  # US$0.01
EMPTY_TOP_CREDITS = 1_000_000  # US$1


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
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar] = field(default_factory=list)
    line: str = ""  # SVG polyline points: requests per day
    dots: list[tuple[float, float]] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)  # spend, left axis
    r_ticks: list[Tick] = field(default_factory=list)  # requests, right axis
    x_ticks: list[Tick] = field(default_factory=list)
    empty: bool = True

    @property
    def center_x(self) -> float:
        return (self.plot_left + self.plot_right) / 2

    @property
    def center_y(self) -> float:
        return (self.plot_top + self.plot_bottom) / 2


def _scale(value: int, divisions: int | None = None) -> tuple[int, int]:
    """(top, divisions) for an axis: the top is the first round number at or above
    `value` that splits into `divisions` round steps (1, 2 or 5 times a power of ten),
    so every grid line carries a round label."""
    value = max(value, 1)
    step = 1
    while True:
        for m in (1, 2, 5):
            for d in (divisions,) if divisions else (4, 5):
                if m * step * d >= value:
                    return m * step * d, d
        step *= 10


def spend_chart(
    points: list[DayPoint],
    *,
    width: int = 720,
    height: int = 230,
    label_every: int = 7,
) -> SpendChart:
    chart = SpendChart(
        width, height, plot_left=54, plot_right=width - 36, plot_top=12, plot_bottom=height - 26
    )
    if not points:
        return chart
    plot_w = chart.plot_right - chart.plot_left
    plot_h = chart.plot_bottom - chart.plot_top
    slot = plot_w / len(points)
    # The spend axis reads in dollars: at least US$0.01 at the top (US$1 on an empty
    # chart), so a quiet account sees "$0.002", not "0.000004".
    most = max(p.charge for p in points)
    top_charge, divisions = _scale(max(most, MIN_TOP_CREDITS if most else EMPTY_TOP_CREDITS))
    top_requests, _ = _scale(max(p.requests for p in points), divisions)
    chart.empty = not any(p.requests or p.charge for p in points)

    last = len(points) - 1
    for i, p in enumerate(points):
        x = chart.plot_left + i * slot
        h = plot_h * p.charge / top_charge
        day = formats.date_format(p.day, pgettext("date format", "M j"))
        chart.bars.append(
            Bar(
                round(x + slot * 0.18, 1),
                round(chart.plot_bottom - h, 1),
                round(slot * 0.64, 1),
                round(h, 1),
                f"{day}: {credits_to_usd(p.charge)} · {p.requests}",
            )
        )
        cy = chart.plot_bottom - plot_h * p.requests / top_requests
        chart.dots.append((round(x + slot / 2, 1), round(cy, 1)))
        # Counted back from today, so today always has its label and none collide.
        if (last - i) % label_every == 0:
            chart.x_ticks.append(Tick(round(x + slot / 2, 1), day))
    chart.line = " ".join(f"{x},{y}" for x, y in chart.dots)
    for k in range(divisions + 1):
        y = round(chart.plot_bottom - plot_h * k / divisions, 1)
        label = credits_to_usd_brief(top_charge * k // divisions)
        chart.y_ticks.append(Tick(y, "$0" if k == 0 else label))
        chart.r_ticks.append(Tick(y, _compact(top_requests * k // divisions)))
    return chart


def _compact(value: int) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else str(value)
