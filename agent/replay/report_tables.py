"""The replay report's tables as HTML: trips and charge sessions, and the decode report.

Every piece of text is escaped here, whatever its source (a log's file name is as untrusted as
anything in it). The decode report is rendered from its shape, not its keys: mappings become
two-column tables, lists of mappings tables with a column per key, so a count added to the
decode report shows up without a change here.
"""

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from agent.replay.report_spans import Span

RECORD_COLUMNS = ("#", "type", "start (UTC)", "end (UTC)", "km", "kWh out", "kWh regen", "kWh in", "Wh/km", "SOC %")
NOTHING = "—"


def records_table(records: Sequence[Mapping[str, object]], spans: Sequence[Span]) -> str:
    """One row per record, in the order given; ``spans`` are the records' parsed kinds and times."""
    head = "".join(f'<th scope="col">{html.escape(name)}</th>' for name in (*RECORD_COLUMNS, "flags"))
    rows = [
        _record_row(index, record, span) for index, (record, span) in enumerate(zip(records, spans, strict=True), 1)
    ]
    body = (
        "\n".join(rows) if rows else f'<tr><td colspan="{len(RECORD_COLUMNS) + 1}">no trip or charge session</td></tr>'
    )
    return f'<table id="records">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _record_row(index: int, record: Mapping[str, object], span: Span) -> str:
    quality = record.get("quality")
    flags = quality.get("flags") if isinstance(quality, Mapping) else None
    cells = (
        str(index),
        span.kind,
        _utc(span.start_s),
        _utc(span.end_s),
        _figure(record.get("distance_m"), 1000, 2),
        _figure(record.get("energy_out_wh"), 1000, 3),
        _figure(record.get("energy_regen_wh"), 1000, 3),
        _figure(record.get("energy_in_wh"), 1000, 3),
        _figure(record.get("wh_per_km"), 1, 0),
        _soc(record.get("soc_start_pct"), record.get("soc_end_pct")),
        ", ".join(str(flag) for flag in flags) if isinstance(flags, Sequence) and flags else NOTHING,
    )
    numeric = {4, 5, 6, 7, 8}
    tds = "".join(
        f'<td class="num">{html.escape(cell)}</td>' if column in numeric else f"<td>{html.escape(cell)}</td>"
        for column, cell in enumerate(cells)
    )
    return f'<tr class="{html.escape(span.kind)}">{tds}</tr>'


def _utc(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _figure(value: object, divisor: float, digits: int) -> str:
    """A number in the column's unit; empty where the record has none (a trip has no energy in)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return f"{value / divisor:,.{digits}f}"


def _soc(start: object, end: object) -> str:
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        return "?"
    return f"{start:.1f} → {end:.1f}"


def decode_tables(decode: Mapping[str, object]) -> str:
    """The decode report as nested tables."""
    return _value(decode)


def _value(value: object) -> str:
    if isinstance(value, Mapping):
        return _key_value_table(value)
    if isinstance(value, list | tuple):
        if value and all(isinstance(item, Mapping) for item in value):
            return _column_table(value)
        return ", ".join(_value(item) for item in value) or NOTHING
    return html.escape(_scalar(value))


def _key_value_table(mapping: Mapping[object, object]) -> str:
    if not mapping:
        return NOTHING
    rows = "".join(
        f'<tr><th scope="row">{html.escape(_label(key))}</th><td>{_value(item)}</td></tr>'
        for key, item in mapping.items()
    )
    return f'<table class="decode">{rows}</table>'


def _column_table(items: Sequence[Mapping[object, object]]) -> str:
    columns: dict[object, None] = {}  # every key any item has, in first-seen order
    for item in items:
        columns |= dict.fromkeys(item)
    head = "".join(f'<th scope="col">{html.escape(_label(key))}</th>' for key in columns)
    rows = "".join("<tr>" + "".join(f"<td>{_value(item.get(key))}</td>" for key in columns) + "</tr>" for item in items)
    return f'<table class="decode"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _label(key: object) -> str:
    return str(key).replace("_", " ")


def _scalar(value: object) -> str:
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value) or (value != 0 and abs(value) < 0.001):  # noqa: PLR2004 - below the 3 decimals
            return f"{value:.3g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)
