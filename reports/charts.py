"""Charts for the staff reports as SVG geometry computed on the server (no script, no
build step; the same idea as dashboard/charts.py). A wide and a narrow drawing are
made, because SVG text scales with the drawing and a phone needs its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from billing.money import credits_to_usd_brief

_STEPS = (1, 2, 5)


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]
    color: str


@dataclass
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    bars: list[tuple[float, float, float, float, str, str]] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (points, color)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    zero_y: float = 0.0
    legend: list[Series] = field(default_factory=list)


def _nice(value: int) -> int:
    """The first 1, 2 or 5 times a power of ten at or above `value`."""
    value, step = max(value, 1), 1
    while True:
        for m in _STEPS:
            if m * step >= value:
                return m * step
        step *= 10


def day_chart(
    days: list[date],
    bars: list[Series],
    line: Series | None = None,
    *,
    width: int = 760,
    height: int = 250,
    label_every: int = 7,
) -> Chart:
    """Grouped bars per day (e.g. revenue and cost) and an optional line (margin);
    values in credits, axis labelled in US$. Negative values go below the zero line."""
    chart = Chart(width, height, left=58, right=width - 12, top=10, bottom=height - 26)
    chart.legend = [*bars, *([line] if line else [])]
    every = [v for s in chart.legend for v in s.values] or [0]
    ticks = 4
    step = _nice(-(-max(max(every), 1) // ticks))
    low_steps = -(-max(0, -min(every)) // step)
    top, bottom = step * ticks, -step * low_steps
    span = top - bottom
    plot_h = chart.bottom - chart.top

    def y(value: int) -> float:
        return round(chart.bottom - plot_h * (value - bottom) / span, 1)

    chart.zero_y = y(0)
    slot = (chart.right - chart.left) / max(len(days), 1)
    bar_w = slot * 0.72 / max(len(bars), 1)
    last = len(days) - 1
    for i, day in enumerate(days):
        x0 = chart.left + i * slot + slot * 0.14
        for j, series in enumerate(bars):
            value = series.values[i]
            top_y, base_y = y(max(value, 0)), y(min(value, 0))
            title = f"{day:%b %-d} · {series.label}: {credits_to_usd_brief(value)}"
            chart.bars.append(
                (
                    round(x0 + j * bar_w, 1),
                    top_y,
                    round(bar_w * 0.92, 1),
                    round(base_y - top_y, 1),
                    series.color,
                    title,
                )
            )
        if (last - i) % label_every == 0:
            chart.x_ticks.append((round(chart.left + (i + 0.5) * slot, 1), f"{day:%b %-d}"))
    if line is not None:
        points = " ".join(
            f"{round(chart.left + (i + 0.5) * slot, 1)},{y(v)}" for i, v in enumerate(line.values)
        )
        chart.lines.append((points, line.color))
    for k in range(-low_steps, ticks + 1):
        chart.y_ticks.append((y(k * step), credits_to_usd_brief(k * step)))
    return chart


def chart_pair(
    days: list[date], bars: list[Series], line: Series | None = None
) -> dict[str, Chart]:
    """The wide drawing for desktops and the narrow one for phones."""
    return {
        "wide": day_chart(days, bars, line, label_every=max(1, len(days) // 6)),
        "narrow": day_chart(
            days, bars, line, width=380, height=230, label_every=max(1, len(days) // 3)
        ),
    }
