"""The replay's HTML report: four plots with every trip and charge shaded, tables, one safe file."""

import re
import stat
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent.errors import AgentError
from agent.readings import Quantity, Reading
from agent.replay.html_report import MATPLOTLIB_MISSING, ReportError, write_html_report
from agent.replay.series import SeriesPoint, SeriesRecorder

START_S = datetime(2026, 11, 22, 7, 0, tzinfo=UTC).timestamp()
PLOT_IDS = ("speed", "power", "soc", "energy")
HOSTILE = "<script>alert('x')</script> & \"quoted\""


class _Page(HTMLParser):
    """Every start tag with its attributes, and the text inside the elements named in ``texts_of``."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts.setdefault(self._open[-1], []).append(data)

    def ids(self) -> list[str]:
        return [attrs["id"] or "" for _tag, attrs in self.tags if "id" in attrs]


def _iso(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(kind: str, start_s: float, end_s: float, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "type": kind,
        "start_at": _iso(start_s),
        "end_at": _iso(end_s),
        "soc_start_pct": 80.0,
        "soc_end_pct": 71.5,
        "quality": {"flags": ["gaps_not_bridged"], "coverage_pct": 99.5, "gaps": 1},
    }
    if kind == "trip":
        record |= {"distance_m": 12_345.0, "energy_out_wh": 2_100.0, "energy_regen_wh": 300.0, "wh_per_km": 145.8}
    else:
        record |= {"distance_m": 0.0, "energy_in_wh": 7_500.0}
    return record | fields


def _points() -> list[SeriesPoint]:
    """Three hours of real series: driving in the first, charging in the second, parked in the third."""
    recorder = SeriesRecorder()
    for k in range(3 * 3600):
        hour = k // 3600
        current_a = (40.0, -30.0, 0.5)[hour]
        time_s = START_S + k
        recorder.add(Reading(time_s, {Quantity.PACK_VOLTAGE_V: 390.0, Quantity.CHARGING: float(hour == 1)}))
        recorder.add(Reading(time_s + 0.2, {Quantity.PACK_CURRENT_A: current_a}))
        recorder.add(Reading(time_s + 0.4, {Quantity.SPEED_KPH: 50.0 if hour == 0 else 0.0, Quantity.SOC_PCT: 60.0}))
    return recorder.points()


RECORDS = [
    _record("trip", START_S + 60, START_S + 1200),
    _record("trip", START_S + 1500, START_S + 2400),
    _record("charge", START_S + 3600, START_S + 5400),
    _record("trip", START_S + 2700, START_S + 3500, soc_start_pct=None),
    _record("charge", START_S + 5500, START_S + 7000),
]
DECODE: dict[str, object] = {
    "frames_read": 1_234_567,
    "frames_used": 34_567,
    "unknown_ids": 0,
    "decode_errors": {"truncated": 2, "bad_checksum": 1},
    "gap_duration_s": 1.25,
    "logs": [
        {"path": "/logs/<img src=x onerror=alert(1)>.log", "format": "candump", "frames_read": 1_000_000},
        {"path": "/logs/b.asc", "format": "asc", "bad_lines": {"garbage": 3}},
    ],
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "replay.html"
    write_html_report(path, title=HOSTILE, points=_points(), records=RECORDS, decode=DECODE)
    return path


def test_the_report_has_four_plots_each_shading_every_trip_and_charge(report: Path) -> None:
    """Four inline SVG plots; on each, one shaded span per trip and per charge, by their ids."""
    page = _Page(report.read_text(encoding="utf-8"))
    assert [tag for tag, _attrs in page.tags].count("svg") == 4
    ids = page.ids()
    for plot_id in PLOT_IDS:
        assert sorted(i for i in ids if re.fullmatch(rf"{plot_id}-trip-\d+", i)) == [
            f"{plot_id}-trip-{n}" for n in (1, 2, 3)
        ]
        assert sorted(i for i in ids if re.fullmatch(rf"{plot_id}-charge-\d+", i)) == [
            f"{plot_id}-charge-{n}" for n in (1, 2)
        ]
    assert len(ids) == len(set(ids))  # four SVGs in one page: no id twice


def test_every_reference_inside_the_plots_resolves_within_the_page(report: Path) -> None:
    """Glyphs, markers and clip paths that the plots use are all defined in the page itself."""
    text = report.read_text(encoding="utf-8")
    ids = set(_Page(text).ids())
    references = set(re.findall(r'(?:href="#|url\(#)([^")]+)', text))
    assert references
    assert references <= ids


def test_the_records_table_has_one_row_per_record_in_order(report: Path) -> None:
    """The table of records lists each trip and charge once, with its figures."""
    text = report.read_text(encoding="utf-8")
    table = text[text.index('<table id="records">') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = _Page(body)
    kinds = [attrs.get("class") for tag, attrs in rows.tags if tag == "tr"]
    assert kinds == ["trip", "trip", "charge", "trip", "charge"]
    cells = rows.texts["td"]
    assert "2026-11-22 07:01:00" in cells
    assert "12.35" in cells  # km
    assert "7.500" in cells  # kWh in of a charge
    assert "80.0 → 71.5" in cells
    assert "?" in cells  # the trip whose SOC the vehicle did not report
    assert "gaps_not_bridged" in cells


def test_the_decode_report_is_rendered_as_tables_with_every_count(report: Path) -> None:
    """Every key and count of the decode report shows, nested ones and per-log lists included."""
    text = report.read_text(encoding="utf-8")
    decode = _Page(text[text.index('<section id="decode">') :])
    headers, cells = decode.texts["th"], decode.texts["td"]
    for label in ("frames read", "decode errors", "bad checksum", "logs", "path", "garbage"):
        assert label in headers
    for value in ("1,234,567", "34,567", "1.25", "/logs/b.asc", "candump", "3"):
        assert value in cells


def test_the_report_loads_nothing_from_anywhere(report: Path) -> None:
    """No URL, script, stylesheet link, image or external reference: the file is the whole report."""
    text = report.read_text(encoding="utf-8")
    assert "http:" not in text
    assert "https:" not in text
    assert "//" not in re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL).replace("<!DOCTYPE html>", "")
    page = _Page(text)
    tags = {tag for tag, _attrs in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "image"}
    for _tag, attrs in page.tags:
        assert "src" not in attrs
        assert all(value is None or value.startswith("#") for name, value in attrs.items() if name.endswith("href"))
        assert not any(name.startswith("on") for name in attrs)


def test_text_from_titles_and_file_names_is_escaped(report: Path) -> None:
    """A title or log name with markup in it shows as text, never as markup."""
    text = report.read_text(encoding="utf-8")
    page = _Page(text)
    assert page.texts["title"] == [HOSTILE]
    assert page.texts["h1"] == [HOSTILE]
    assert "/logs/<img src=x onerror=alert(1)>.log" in page.texts["td"]
    assert "<script>" not in text
    assert "<img" not in text


def test_the_same_input_writes_the_same_bytes(report: Path, tmp_path: Path) -> None:
    """A report is reproducible: no date, no random id, so two runs can be compared."""
    again = tmp_path / "again.html"
    write_html_report(again, title=HOSTILE, points=_points(), records=RECORDS, decode=DECODE)
    assert again.read_bytes() == report.read_bytes()


def test_a_replay_without_readings_or_records_still_makes_a_report(tmp_path: Path) -> None:
    """A profile that matched nothing gives an empty but complete report, not a crash."""
    path = tmp_path / "empty.html"
    write_html_report(path, title="nothing", points=[], records=[], decode={})
    page = _Page(path.read_text(encoding="utf-8"))
    assert [tag for tag, _attrs in page.tags].count("svg") == 4
    assert "no trip or charge session" in page.texts["td"]


def test_the_report_replaces_an_older_one_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The report is written beside its target and renamed over it: the directory ends with the report alone."""
    path = tmp_path / "replay.html"
    path.write_text("an older report", encoding="utf-8")
    write_html_report(path, title="new", points=_points()[:10], records=RECORDS[:1], decode=DECODE)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [entry.name for entry in tmp_path.iterdir()] == ["replay.html"]


def test_a_new_report_gets_the_mode_the_umask_gives_new_files(tmp_path: Path) -> None:
    """A report is for sharing: not private like a temporary file, but as readable as any file the user makes."""
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("", encoding="utf-8")
    path = tmp_path / "replay.html"
    write_html_report(path, title="t", points=[], records=[], decode={})
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode)


def test_a_report_that_cannot_be_put_in_place_leaves_nothing_behind(tmp_path: Path) -> None:
    """When the rename fails (the target is a directory), the error names the path and no temporary file stays."""
    target = tmp_path / "replay.html"
    target.mkdir()
    with pytest.raises(ReportError, match=r"cannot write the report .*replay\.html") as raised:
        write_html_report(target, title="t", points=[], records=[], decode={})
    assert isinstance(raised.value, AgentError)
    assert [entry.name for entry in tmp_path.iterdir()] == ["replay.html"]
    with pytest.raises(ReportError, match="cannot write the report"):
        write_html_report(tmp_path / "missing" / "replay.html", title="t", points=[], records=[], decode={})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"type": "flight"}, r"record 2 has type 'flight'"),
        ({"start_at": "yesterday"}, r"record 2 has start_at 'yesterday'"),
        ({"end_at": "2026-11-22T08:00:00"}, r"record 2 has end_at '2026-11-22T08:00:00'.*offset"),
    ],
)
def test_a_malformed_record_is_refused_naming_it_and_the_old_report_stays(
    tmp_path: Path, record: Mapping[str, object], message: str
) -> None:
    """A record of an unknown type or with an unreadable time is a clear error; the previous report is kept."""
    path = tmp_path / "replay.html"
    path.write_text("the previous report", encoding="utf-8")
    records = [RECORDS[0], {**RECORDS[1], **record}]
    with pytest.raises(ReportError, match=message):
        write_html_report(path, title="t", points=[], records=records, decode={})
    assert path.read_text(encoding="utf-8") == "the previous report"


_WITHOUT_MATPLOTLIB = """
import sys
from pathlib import Path

sys.modules["matplotlib"] = None  # what 'import matplotlib' meets when it is not installed

from agent.replay.html_report import ReportError, write_html_report

try:
    write_html_report(Path(sys.argv[1]), title="t", points=[], records=[], decode={})
except ReportError as err:
    print(err)
    sys.exit(3)
"""


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    """In a Python where matplotlib cannot be imported, the report refuses with the pip command; no file appears."""
    path = tmp_path / "replay.html"
    finished = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _WITHOUT_MATPLOTLIB, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 3, finished.stderr
    assert finished.stdout.strip() == MATPLOTLIB_MISSING
    assert MATPLOTLIB_MISSING == "--report needs matplotlib: pip install 'carbonlink[report]'"
    assert list(tmp_path.iterdir()) == []
