"""``carbonlink replay --report OUT.html``: one self-contained HTML file with plots and tables.

The page holds four inline SVG plots over time (speed, pack power, SOC, cumulative energy; every
trip and charge session shaded), the table of records and the decode report. It loads nothing:
no script, no stylesheet, font or image from anywhere, so it can be mailed or archived as it is.
The file is written to a temporary file beside the target and renamed over it, so an interrupted
run leaves the previous report or none, never half of one.

matplotlib is an optional dependency (the ``report`` extra): a car never draws plots.
"""

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import carbonlink
from agent.adapters.atomic_file import write_atomically
from agent.errors import AgentError
from agent.replay.report_spans import Span, record_spans
from agent.replay.series import SeriesPoint

MATPLOTLIB_MISSING = "--report needs matplotlib: pip install 'carbonlink[report]'"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 75em; padding: 0 1em; color: #1b1b1b; }
h1 { font-size: 1.5em; overflow-wrap: anywhere; }
figure { margin: 0 0 1em 0; }
figcaption { font-weight: 600; margin-bottom: 0.2em; }
.swatch { display: inline-block; width: 1em; height: 0.8em; margin: 0 0.3em 0 1em; vertical-align: baseline; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.decode table.decode { margin: 0; }
"""


class ReportError(AgentError, OSError):
    """The HTML report cannot be made: matplotlib is missing, a record is malformed, or the file is not writable."""


def write_html_report(
    path: Path,
    *,
    title: str,
    points: Sequence[SeriesPoint],
    records: Sequence[Mapping[str, object]],
    decode: Mapping[str, object],
) -> None:
    """Write the report to ``path`` atomically (see the module docstring)."""
    try:
        from agent.replay.report_plots import CHARGE_COLOUR, TRIP_COLOUR, draw_plots  # noqa: PLC0415
        from agent.replay.report_tables import decode_tables, records_table  # noqa: PLC0415
    except ModuleNotFoundError as err:  # the optional dependency; any other missing module is a real bug
        if err.name is not None and err.name.split(".")[0] == "matplotlib":
            raise ReportError(MATPLOTLIB_MISSING) from err
        raise
    try:
        spans = record_spans(records)
    except ValueError as err:
        raise ReportError(f"cannot report on these records: {err}") from err
    plots = "\n".join(
        f'<figure id="plot-{plot.plot_id}">\n<figcaption>{html.escape(plot.caption)}</figcaption>\n'
        f"{plot.svg}\n</figure>"
        for plot in draw_plots(points, spans)
    )
    legend = (
        f'<p class="legend">Shaded:<span class="swatch" style="background: {TRIP_COLOUR}"></span>trips'
        f'<span class="swatch" style="background: {CHARGE_COLOUR}"></span>charge sessions. Times are UTC.</p>'
    )
    page = "\n".join(
        (
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(_summary(spans, records))}</p>",
            '<section id="plots">',
            "<h2>Over time</h2>",
            legend,
            plots,
            "</section>",
            '<section id="trips-and-charges">',
            "<h2>Trips and charge sessions</h2>",
            records_table(records, spans),
            "</section>",
            '<section id="decode">',
            "<h2>Decoding</h2>",
            decode_tables(decode),
            "</section>",
            f"<footer><p>carbonlink {html.escape(carbonlink.__version__)}</p></footer>",
            "</body>",
            "</html>",
            "",
        )
    )
    try:
        write_atomically(path, page.encode("utf-8"))
    except OSError as err:
        raise ReportError(f"cannot write the report {path}: {err}") from err


def _summary(spans: Sequence[Span], records: Sequence[Mapping[str, object]]) -> str:
    """One line of totals: how many trips and charges, how far, how much energy."""
    trips = sum(span.kind == "trip" for span in spans)
    charges = len(spans) - trips

    def total(field: str) -> float:
        return sum(value for record in records if isinstance(value := record.get(field), int | float))

    return (
        f"{trips} trip{'' if trips == 1 else 's'}, {charges} charge session{'' if charges == 1 else 's'}: "
        f"{total('distance_m') / 1000:,.2f} km, {total('energy_out_wh') / 1000:,.3f} kWh out, "
        f"{total('energy_regen_wh') / 1000:,.3f} kWh regenerated, {total('energy_in_wh') / 1000:,.3f} kWh charged."
    )
