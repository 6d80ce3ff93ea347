"""Server-rendered bar charts: the geometry of an accessible SVG (templates/charts.html draws it).

No JavaScript. Each chart has a title and a description for screen readers (the SVG is one image
to them), and the template puts the same figures in a data table next to it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Colours with at least 3:1 contrast against white (WCAG 2.1 1.4.11, non-text contrast) and
# distinguishable from each other; the legend names each series in text as well.
PALETTE = ("#00507f", "#b35900", "#1d6b2c", "#b3001b", "#5a3e8a")


@dataclass
class Series:
    label: str
    values: list[int]
    colour: str = ""


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # tooltip: "category – series: value"


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    id: str
    title: str
    description: str
    categories: list[str]
    series: list[Series]
    horizontal: bool = False
    width: int = 640
    height: int = 0
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    category_labels: list[Tick] = field(default_factory=list)
    plot: tuple[float, float, float, float] = (0, 0, 0, 0)  # left, top, right, bottom

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)

    def rows(self) -> list[tuple[str, list[int], int]]:
        """The data table: (category, one value per series, total)."""
        return [(c, [s.values[i] for s in self.series], sum(s.values[i] for s in self.series))
                for i, c in enumerate(self.categories)]


def nice_max(value: int, ticks: int = 4) -> tuple[int, int]:
    """An axis maximum >= value that divides into `ticks` round steps: (maximum, step)."""
    if value <= 0:
        return ticks, 1
    raw = value / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 2.5, 5, 10):
        step = max(1, math.ceil(factor * magnitude))
        if step * ticks >= value:
            return step * ticks, step
    return math.ceil(value / ticks) * ticks, math.ceil(value / ticks)  # pragma: no cover


def _colour(series: list[Series]) -> None:
    for i, s in enumerate(series):
        s.colour = s.colour or PALETTE[i % len(PALETTE)]


def grouped_columns(id_: str, title: str, description: str, categories: list[str], series: list[Series],
                    width: int = 640, height: int = 260) -> Chart:
    """Vertical bars, one group per category (e.g. a week), one bar per series side by side."""
    _colour(series)
    chart = Chart(id_, title, description, categories, series, width=width, height=height)
    left, top, right, bottom = 44.0, 12.0, width - 8.0, height - 36.0
    chart.plot = (left, top, right, bottom)
    top_value, step = nice_max(max((v for s in series for v in s.values), default=0))
    plot_h = bottom - top
    chart.ticks = [Tick(bottom - plot_h * t / top_value, str(t)) for t in range(0, top_value + 1, step)]
    band = (right - left) / max(1, len(categories))
    bar_w = band * 0.8 / max(1, len(series))
    for i, category in enumerate(categories):
        x0 = left + band * i + band * 0.1
        chart.category_labels.append(Tick(left + band * (i + 0.5), category))
        for j, s in enumerate(series):
            h = plot_h * s.values[i] / top_value
            if h <= 0:
                continue  # nothing to draw; the table has the zero
            chart.bars.append(Bar(round(x0 + bar_w * j, 1), round(bottom - h, 1), round(bar_w, 1), round(h, 1),
                                  s.colour, f"{category} – {s.label}: {s.values[i]}"))
    return chart


def stacked_rows(id_: str, title: str, description: str, categories: list[str], series: list[Series],
                 width: int = 640, label_width: int = 190, row: int = 26) -> Chart:
    """Horizontal bars, one row per category (e.g. a forum), the series stacked left to right."""
    _colour(series)
    height = int(row * len(categories) + 40)
    chart = Chart(id_, title, description, categories, series, horizontal=True, width=width, height=height)
    left, top, right, bottom = float(label_width), 8.0, width - 12.0, height - 28.0
    chart.plot = (left, top, right, bottom)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top_value, step = nice_max(max(totals, default=0))
    plot_w = right - left
    chart.ticks = [Tick(left + plot_w * t / top_value, str(t)) for t in range(0, top_value + 1, step)]
    for i, category in enumerate(categories):
        y = top + row * i + 4
        chart.category_labels.append(Tick(y + (row - 8) / 2, category))
        x = left
        for s in series:
            w = plot_w * s.values[i] / top_value
            if w > 0:
                chart.bars.append(Bar(round(x, 1), round(y, 1), round(w, 1), row - 8, s.colour,
                                      f"{category} – {s.label}: {s.values[i]}"))
            x += w
    return chart
