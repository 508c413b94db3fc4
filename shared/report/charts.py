"""Where the marks of the HTML report's two charts go: the geometry, in SVG user units. Pure.

``templates/charts.html.j2`` draws these; colours come from this module, never from data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .model import UNKNOWN_SEVERITY, HistoryPoint, Report
from .words import day, pct

SEVERITY_COLOURS = {"Critical": "#7f1d1d", "High": "#c62828", "Medium": "#b45309", "Low": "#1d5fa8",
                    UNKNOWN_SEVERITY: "#5f6368"}
BAR_COLOUR = "#2f5d8a"
OTHERS_COLOUR = "#8c959f"
TEAMS_SHOWN = 12  # bars in the team chart; the other teams share one more


# ---------------------------------------------------------------------------- horizontal bars


@dataclass(frozen=True)
class Bar:
    name: str
    value: int
    colour: str
    text_y: float  # baseline of the row's label and figure
    rect_y: int
    rect_width: int  # 0 for a zero value; at least 1 otherwise
    value_x: int  # where the figure is written, right of the bar


@dataclass(frozen=True)
class BarChart:
    label: str
    empty: str  # said instead of bars when every value is zero
    bars: tuple[Bar, ...]
    peak: int
    width: int
    height: int
    label_x: int  # right edge of the row labels
    plot_x: int  # left edge of the bars
    bar_height: int
    empty_x: int
    empty_y: int

    @property
    def desc(self) -> str:
        """The figures in words, for the SVG's ``desc``."""
        return "; ".join(f"{bar.name}: {bar.value}" for bar in self.bars)


def bar_chart(label: str, rows: Sequence[tuple[str, int, str]], empty: str) -> BarChart:
    """Horizontal bars: (label, value, colour) per row, scaled to the largest value."""
    width, label_w, row_h, top = 600, 190, 30, 6
    plot_w = width - label_w - 70
    height = top * 2 + row_h * max(len(rows), 1)
    peak = max((v for _, v, _ in rows), default=0)
    bars = []
    for i, (name, value, colour) in enumerate(rows):
        y = top + i * row_h
        length = round(plot_w * value / peak) if peak else 0
        bars.append(Bar(name, value, colour, text_y=y + row_h / 2 + 4, rect_y=y + 5,
                        rect_width=max(length, 1 if value else 0), value_x=label_w + length + 6))
    return BarChart(label, empty, tuple(bars), peak, width, height, label_x=label_w - 8, plot_x=label_w,
                    bar_height=row_h - 10, empty_x=label_w + 8, empty_y=height - 8)


def severity_chart(report: Report) -> BarChart:
    return bar_chart("Open findings by severity",
                     [(name, p.open, SEVERITY_COLOURS.get(name, SEVERITY_COLOURS[UNKNOWN_SEVERITY]))
                      for name, p in report.by_severity.items()], "No open findings")


def team_chart(report: Report) -> BarChart:
    teams = list(report.by_team.values())
    rows = [(p.name, p.open, BAR_COLOUR) for p in teams[:TEAMS_SHOWN]]
    if len(teams) > TEAMS_SHOWN:
        rows.append((f"{len(teams) - TEAMS_SHOWN} other teams", sum(p.open for p in teams[TEAMS_SHOWN:]),
                     OTHERS_COLOUR))
    return bar_chart("Open findings by team", rows, "No open findings")


# ---------------------------------------------------------------------------- compliance over time


@dataclass(frozen=True)
class Gridline:
    percent: int
    y: float
    text_y: float


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    point: HistoryPoint


@dataclass(frozen=True)
class AxisLabel:
    x: float
    anchor: str  # text-anchor: start, middle or end
    point: HistoryPoint


@dataclass(frozen=True)
class LineChart:
    label: str
    gridlines: tuple[Gridline, ...]
    marks: tuple[Mark, ...]
    axis: tuple[AxisLabel, ...]
    width: int
    height: int
    plot_left: int  # where the gridlines start and end
    plot_right: int
    tick_x: int  # right edge of the percent labels
    axis_y: int  # baseline of the date labels

    @property
    def points(self) -> str:
        """The polyline's ``points`` attribute."""
        return " ".join(f"{m.x},{m.y}" for m in self.marks)


def line_chart(points: Sequence[HistoryPoint]) -> LineChart:
    """Compliance per snapshot, placed by time; at least two points."""
    width, height, left, right, top, bottom = 640, 240, 48, 20, 14, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds()

    def x(i: int, p: HistoryPoint) -> float:
        share = (p.at - start).total_seconds() / span if span > 0 else i / (len(points) - 1)
        return round(left + share * plot_w, 1)

    def y(percent: float) -> float:
        return round(top + (1 - percent / 100) * plot_h, 1)

    label = (f"Compliance over time: from {pct(points[0].compliance_percent)} on {day(start)} to "
             f"{pct(points[-1].compliance_percent)} on {day(end)}, {len(points)} snapshots")
    gridlines = tuple(Gridline(tick, y(tick), y(tick) + 4) for tick in (0, 25, 50, 75, 100))
    marks = tuple(Mark(x(i, p), y(p.compliance_percent), p) for i, p in enumerate(points))
    last = len(points) - 1
    ticks = [0, last] if len(points) < 3 else [0, len(points) // 2, last]
    axis = tuple(AxisLabel(marks[i].x, "start" if i == 0 else "end" if i == last else "middle", points[i])
                 for i in ticks)
    return LineChart(label, gridlines, marks, axis, width, height, plot_left=left, plot_right=width - right,
                     tick_x=left - 6, axis_y=height - 12)
