"""The replay report's four plots over time, drawn with matplotlib and returned as inline SVG.

Each plot is its own :class:`matplotlib.figure.Figure` with an SVG canvas attached explicitly: no
pyplot, no global backend, no change to ``rcParams``, so nothing else in the process notices. Every
trip and charge session is shaded on every plot with a stable id (``speed-trip-1``,
``energy-charge-2``, ...). The SVG is made fit to sit inline in an HTML page beside three others:
no XML prolog, no namespace URLs (the HTML parser knows SVG), ids prefixed per plot and renumbered
where matplotlib made them random, so the page is valid, self-contained and the same for the same
input.
"""

import html
import io
import itertools
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from agent.replay.report_spans import Span
from agent.replay.series import SeriesPoint

TRIP_COLOUR = "#9ecae1"
CHARGE_COLOUR = "#fdae6b"
SPAN_ALPHA = 0.45
LINE_COLOUR = "#1b1b1b"
ENERGY_COLOURS = {"out": "#d62728", "regen": "#2ca02c", "in": "#1f77b4"}
FIGURE_SIZE_IN = (10.0, 2.4)
GAP_BREAK_FACTOR = 5.0
"""Points further apart than this many times the usual spacing are not joined (the log has a hole)."""
WH_PER_KWH = 1000.0

_SVG_METADATA: dict[str, str | None] = {"Date": None, "Creator": None, "Format": None, "Type": None}
_RANDOM_ID = re.compile(r"[a-z]+[0-9a-f]{10}")
"""The ids matplotlib hashes with a random salt (clip paths, markers): renumbered for stable output."""
_ID_OR_REFERENCE = re.compile(r'((?<![\w-])id="|href="#|url\(#)([^")]+)')
_ROOT_SIZE = re.compile(r' (?:width|height)="[^"]*"| xmlns(?::\w+)?="[^"]*"')


@dataclass(frozen=True, slots=True)
class Plot:
    """One plot: its id (the prefix of its SVG ids), its caption and its inline SVG."""

    plot_id: str
    caption: str
    svg: str


def draw_plots(points: Sequence[SeriesPoint], spans: Sequence[Span]) -> list[Plot]:
    """Speed, pack power, SOC and cumulative energy over time, each with every span shaded."""
    times = _date_numbers([point.time_s for point in points])
    breaks = _break_after(points)

    def column(value: Callable[[SeriesPoint], float | None]) -> list[float]:
        return _with_breaks([_nan_if_none(value(point)) for point in points], breaks)

    x = _with_breaks(times, breaks, midpoints=True)
    energy = {
        "out": column(lambda point: point.energy_out_wh / WH_PER_KWH),
        "regen": column(lambda point: point.energy_regen_wh / WH_PER_KWH),
        "in": column(lambda point: point.energy_in_wh / WH_PER_KWH),
    }
    return [
        _draw(plot, x, spans)
        for plot in (
            _Lines("speed", "Speed", "km/h", {"speed": column(lambda point: point.speed_kph)}),
            _Lines("power", "Pack power (positive: discharging)", "kW", {"power": column(lambda p: p.pack_power_kw)}),
            _Lines("soc", "State of charge", "%", {"SOC": column(lambda point: point.soc_pct)}),
            _Lines("energy", "Cumulative energy out, regenerated and charged", "kWh", energy),
        )
    ]


@dataclass(frozen=True, slots=True)
class _Lines:
    """What one plot shows: its id, caption, y-axis unit and its lines by label."""

    plot_id: str
    caption: str
    ylabel: str
    lines: dict[str, list[float]]


def _draw(plot: _Lines, x: list[float], spans: Sequence[Span]) -> Plot:
    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    FigureCanvasSVG(figure)  # attaches itself to the figure: SVG output without pyplot or a global backend
    axes = figure.add_subplot()
    _shade(axes, spans)
    for label, values in plot.lines.items() if x else ():
        # A lone point makes no line: give it a marker so it shows.
        marker = "." if len(x) == 1 else None
        axes.plot(x, values, color=ENERGY_COLOURS.get(label, LINE_COLOUR), linewidth=1.0, marker=marker, label=label)
    if not x:
        axes.text(0.5, 0.5, "no readings decoded", transform=axes.transAxes, ha="center", va="center")
        axes.set_yticks([])
    if x or spans:
        _style(axes, plot.plot_id, plot.ylabel, legend=bool(x) and len(plot.lines) > 1)
    else:
        axes.set_xticks([])
    return Plot(plot.plot_id, plot.caption, _inline_svg(_svg_text(figure), plot.plot_id, plot.caption))


def _shade(axes: Axes, spans: Sequence[Span]) -> None:
    for span in spans:
        start, end = _date_numbers([span.start_s, span.end_s])
        colour = TRIP_COLOUR if span.kind == "trip" else CHARGE_COLOUR
        axes.axvspan(start, end, color=colour, alpha=SPAN_ALPHA, linewidth=0, gid=f"{span.kind}-{span.number}")


def _style(axes: Axes, plot_id: str, ylabel: str, *, legend: bool) -> None:
    # matplotlib.dates ships no type information (no .pyi, unlike the rest of matplotlib): these
    # calls are untyped, their results are the locator and formatter the axis is typed to take.
    locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    axes.set_ylabel(ylabel)
    axes.grid(visible=True, linewidth=0.3, alpha=0.6)
    if plot_id == "power":
        axes.axhline(0.0, color="#888888", linewidth=0.6)
    elif plot_id == "soc":
        axes.set_ylim(0.0, 100.0)
    elif plot_id == "speed":
        axes.set_ylim(bottom=0.0)
    if legend:
        axes.legend(loc="upper left", fontsize="small", framealpha=0.8)


def _date_numbers(times_s: Sequence[float]) -> list[float]:
    """Unix seconds as matplotlib's date numbers (days since its configurable epoch)."""
    moments = [datetime.fromtimestamp(time_s, UTC) for time_s in times_s]
    return [float(value) for value in date2num(moments)]  # type: ignore[no-untyped-call] # untyped: see _style


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def _break_after(points: Sequence[SeriesPoint]) -> set[int]:
    """Indexes after which the log has a hole: the line stops there rather than bridge it."""
    steps = [later.time_s - earlier.time_s for earlier, later in itertools.pairwise(points)]
    if len(steps) < 2:  # noqa: PLR2004 - no usual spacing to compare with
        return set()
    limit = GAP_BREAK_FACTOR * statistics.median(steps)
    return {index for index, step in enumerate(steps) if step > limit}


def _with_breaks(values: list[float], breaks: set[int], *, midpoints: bool = False) -> list[float]:
    """``values`` with a NaN (or, for the time axis, the midpoint) after each break."""
    if not breaks:
        return values
    out: list[float] = []
    for index, value in enumerate(values):
        out.append(value)
        if index in breaks:
            out.append((value + values[index + 1]) / 2 if midpoints else math.nan)
    return out


def _svg_text(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    return buffer.getvalue()


def _inline_svg(svg: str, prefix: str, label: str) -> str:
    """The SVG document matplotlib wrote, as an element for an HTML page (see the module docstring)."""
    svg = svg[svg.index("<svg") :]
    root_end = svg.index(">")
    root = _ROOT_SIZE.sub("", svg[:root_end])
    svg = f'{root} width="100%" role="img" aria-label="{html.escape(label)}"{svg[root_end:]}'
    renamed: dict[str, str] = {}
    for old in re.findall(r'(?<![\w-])id="([^"]+)"', svg):
        if old not in renamed:
            new = f"id{len(renamed) + 1}" if _RANDOM_ID.fullmatch(old) else old
            renamed[old] = f"{prefix}-{new}"
    return _ID_OR_REFERENCE.sub(lambda match: match[1] + renamed.get(match[2], f"{prefix}-{match[2]}"), svg)
