"""The replay's log readers: every format round-trips, formats are told from content, gzip is read through."""

import json
from datetime import datetime
from pathlib import Path

import can
import pytest

from agent.replay.logs import LOG_FORMATS, LogFormatError, detect_format
from agent.replay.logs.formats import format_of_content

from replay_log_files import (
    SUFFIXES,
    TIME_PRECISION_S,
    channel_names,
    frame,
    gzipped,
    keys,
    mixed_frames,
    read_all,
    write_log,
    write_savvycan,
)

MISLEADING_NAMES = {
    "candump": "drive.asc",
    "asc": "drive.log",
    "blf": "drive.log",
    "trc": "drive.csv",
    "csv": "drive.trc",
    "mf4": "drive.blf",
    "savvycan": "drive.log",
}


def assert_same_frames(got: list[can.Message], sent: list[can.Message], log_format: str) -> None:
    """Same frames in the same order: times to the format's precision, ids, kinds, payloads, channels."""
    assert len(got) == len(sent)
    assert [str(m.channel) if m.channel is not None else None for m in got] == channel_names(
        log_format, [m.channel for m in sent]
    )
    for read, written in zip(got, sent, strict=True):
        assert read.timestamp == pytest.approx(written.timestamp, abs=TIME_PRECISION_S[log_format])
        assert (read.arbitration_id, read.is_extended_id) == (written.arbitration_id, written.is_extended_id)
        assert bytes(read.data) == bytes(written.data)
        assert read.dlc == len(written.data)
        assert not read.is_error_frame
        assert not read.is_remote_frame


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_every_format_round_trips(tmp_path: Path, log_format: str) -> None:
    """Frames written by python-can's writer (SavvyCAN's layout for savvycan) read back unchanged, all counted."""
    sent = mixed_frames()
    path = write_log(tmp_path / f"drive{SUFFIXES[log_format]}", log_format, sent)

    got, report = read_all(path, keys(sent))

    assert_same_frames(got, sent, log_format)
    assert (report.format, report.compressed, report.error) == (log_format, False, None)
    assert report.frames_read == report.frames_kept == len(sent)
    assert (report.unknown_ids, report.backwards, report.bad_lines) == (0, 0, {})
    assert report.first_at_s == got[0].timestamp
    assert report.last_at_s == got[-1].timestamp
    assert json.loads(json.dumps(report.to_json()))["frames_kept"] == len(sent)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_gzip_of_every_format_is_read_directly(tmp_path: Path, log_format: str) -> None:
    """A gzip-compressed log reads like the plain one, known by its magic bytes even under a plain name."""
    sent = mixed_frames()
    plain = write_log(tmp_path / f"drive{SUFFIXES[log_format]}", log_format, sent)
    packed = gzipped(plain, tmp_path / f"archive{SUFFIXES[log_format]}")  # no .gz in the name

    got, report = read_all(packed, keys(sent))

    assert detect_format(packed) == (log_format, True)
    assert_same_frames(got, sent, log_format)
    assert (report.format, report.compressed, report.error) == (log_format, True, None)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_format_is_told_from_content_not_from_the_name(tmp_path: Path, log_format: str) -> None:
    """A log under the suffix of another format is still read as what it is, plain and gzipped."""
    sent = mixed_frames(20)
    path = write_log(tmp_path / f"real{SUFFIXES[log_format]}", log_format, sent).rename(
        tmp_path / MISLEADING_NAMES[log_format]
    )
    packed = gzipped(path, tmp_path / "drive.txt")

    assert detect_format(path) == (log_format, False)
    assert detect_format(packed) == (log_format, True)
    assert_same_frames(read_all(path, keys(sent))[0], sent, log_format)


def test_the_suffix_breaks_ties_only_where_the_content_says_nothing(tmp_path: Path) -> None:
    """An empty log takes the format its name gives; with no telling name it is refused, naming the file."""
    (tmp_path / "empty.asc").write_bytes(b"")
    (tmp_path / "empty.log.gz").write_bytes(gzipped_bytes(tmp_path, b""))
    (tmp_path / "empty.dat").write_bytes(b"\n\n")

    assert detect_format(tmp_path / "empty.asc") == ("asc", False)
    assert detect_format(tmp_path / "empty.log.gz") == ("candump", True)
    with pytest.raises(LogFormatError, match=r"empty\.dat.*empty"):
        detect_format(tmp_path / "empty.dat")


def gzipped_bytes(folder: Path, content: bytes) -> bytes:
    (folder / "content").write_bytes(content)
    return gzipped(folder / "content").read_bytes()


def test_a_line_that_fits_no_format_before_one_that_does_does_not_decide() -> None:
    """Detection takes the first line that looks like a known format; stray lines before it are passed over."""
    head = b"exported by a script\n\n(1700000000.000000) can0 123#00\n"

    assert format_of_content(head) == "candump"
    assert format_of_content(b"Time Stamp,ID,Extended,Bus,LEN,D1\n") == "savvycan"
    assert format_of_content(b"timestamp,arbitration_id,extended,remote,error,dlc,data\n") == "csv"
    assert format_of_content(b";$FILEVERSION=2.1\n") == "trc"
    assert format_of_content(b"   0.100000 1  123             Rx   d 1 00\n") == "asc"
    assert format_of_content(b"nothing here\n") is None


def test_savvycan_without_the_dir_column_is_read(tmp_path: Path) -> None:
    """Older SavvyCAN files have no Dir column: the header says so and the other columns are found by name."""
    sent = mixed_frames(12)
    path = write_savvycan(tmp_path / "old.csv", sent, with_direction=False)

    got, report = read_all(path, keys(sent))

    assert_same_frames(got, sent, "savvycan")
    assert report.bad_lines == {}


def test_savvycan_as_other_tools_write_it_is_read(tmp_path: Path) -> None:
    """Ids with 0x, spaces after commas, CRLF line ends, only LEN byte columns filled, a Tx frame."""
    path = tmp_path / "tool.csv"
    path.write_bytes(
        b"Time Stamp,ID,Extended,Dir,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8\r\n"
        b"1000000, 0x101, false, Rx, 1, 2, 0x0A, 0x0B\r\n"
        b"1000500,0x18FF5021,TRUE,Tx,2,1,FF,,,,,,,\r\n"
    )

    got, report = read_all(path, frozenset({(0x101, False), (0x18FF5021, True)}))

    assert [(m.timestamp, m.arbitration_id, m.is_extended_id, bytes(m.data), m.channel) for m in got] == [
        (1.0, 0x101, False, b"\x0a\x0b", "1"),
        (1.0005, 0x18FF5021, True, b"\xff", "2"),
    ]
    assert [m.is_rx for m in got] == [True, False]
    assert report.bad_lines == {}


@pytest.mark.parametrize("log_format", ["candump", "asc"])
def test_remote_and_fd_frames_keep_their_kind(tmp_path: Path, log_format: str) -> None:
    """Remote and CAN FD frames come out flagged as the log says (the decoder ignores remote frames)."""
    remote = can.Message(
        timestamp=1700000000.5, arbitration_id=0x101, is_extended_id=False, is_remote_frame=True, dlc=8, channel=0
    )
    fd_frame = can.Message(
        timestamp=1700000000.6,
        arbitration_id=0x132,
        is_extended_id=False,
        is_fd=True,
        bitrate_switch=True,
        data=bytes(range(64)),
        channel=0,
    )
    path = write_log(tmp_path / f"fd{SUFFIXES[log_format]}", log_format, [remote, fd_frame])

    got, report = read_all(path, frozenset({(0x101, False), (0x132, False)}))

    assert [(m.arbitration_id, m.is_remote_frame, m.is_fd, m.bitrate_switch) for m in got] == [
        (0x101, True, False, False),
        (0x132, False, True, True),
    ]
    assert got[0].dlc == (8 if log_format == "asc" else 0)  # python-can's candump writer gives no remote length
    assert bytes(got[1].data) == bytes(range(64))
    assert report.bad_lines == {}


@pytest.mark.parametrize("log_format", ["candump", "asc", "blf", "csv"])
def test_error_frames_are_read_but_never_passed_on(tmp_path: Path, log_format: str) -> None:
    """An error frame counts as a frame read, is no unknown id, and is not handed to the decoder."""
    before, after = frame(0.0, 0x101, b"\x01"), frame(0.2, 0x101, b"\x02")
    error = can.Message(timestamp=before.timestamp + 0.1, is_error_frame=True, channel=0)
    path = write_log(tmp_path / f"errors{SUFFIXES[log_format]}", log_format, [before, error, after])

    got, report = read_all(path, frozenset({(0x101, False), (0x0, False)}))

    assert [bytes(m.data) for m in got] == [b"\x01", b"\x02"]
    assert (report.frames_read, report.frames_kept, report.unknown_ids) == (3, 2, 0)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_only_wanted_ids_are_kept_and_the_others_counted(tmp_path: Path, log_format: str) -> None:
    """Frames of ids the profile does not need are read and skipped; their distinct ids are counted."""
    sent = mixed_frames(50)
    path = write_log(tmp_path / f"bus{SUFFIXES[log_format]}", log_format, sent)
    wanted = frozenset({(0x101, False), (0x18FF5021, True), (0x555, False)})  # 0x555 never on the bus

    got, report = read_all(path, wanted)

    assert_same_frames(got, [m for m in sent if (m.arbitration_id, m.is_extended_id) in wanted], log_format)
    assert report.frames_read == 50
    assert report.frames_kept == len(got) == 20
    assert report.unknown_ids == 3  # 0x132, 0x7FF, extended 0xABC


@pytest.mark.parametrize("log_format", ["candump", "asc", "blf", "trc", "mf4", "savvycan"])
def test_channel_selection_keeps_only_the_named_channels(tmp_path: Path, log_format: str) -> None:
    """With channels given, frames of other channels are read but not kept; names are the log's own."""
    sent = mixed_frames(40, channels=3)
    path = write_log(tmp_path / f"buses{SUFFIXES[log_format]}", log_format, sent)
    second = channel_names(log_format, [1])[0]
    assert second is not None

    got, report = read_all(path, keys(sent), channels=frozenset({second}))

    assert_same_frames(got, [m for m in sent if m.channel == 1], log_format)
    assert (report.frames_read, report.frames_kept) == (40, len(got))


def test_a_format_without_channels_gives_none_and_matches_no_selection(tmp_path: Path) -> None:
    """python-can's CSV names no channel: its frames carry None, and a channel selection keeps none of them."""
    sent = mixed_frames(10)
    path = write_log(tmp_path / "plain.csv", "csv", sent)

    assert {m.channel for m in read_all(path, keys(sent))[0]} == {None}
    assert read_all(path, keys(sent), channels=frozenset({"0"}))[0] == []


def test_asc_in_decimal_base_is_read(tmp_path: Path) -> None:
    """``base dec``: decimal ids and bytes; the trigger block's date makes the times absolute."""
    path = tmp_path / "dec.asc"
    path.write_text(
        "date Tue Nov 24 07:30:00.000 2026\nbase dec  timestamps absolute\ninternal events logged\n"
        "Begin Triggerblock Tue Nov 24 07:30:00.000 2026\n   0.000000 Start of measurement\n"
        "   0.250000 1  257             Rx   d 2 10 255\n   0.500000 1  419385377x      Rx   d 1 7\n"
        "End TriggerBlock\n",
        encoding="utf-8",
    )
    header_reader = can.ASCReader(str(path), relative_timestamp=False)
    python_can_frames = list(header_reader)

    got, report = read_all(path, frozenset({(257, False), (0x18FF5021, True)}))

    assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in got] == [
        (257, False, bytes([10, 255])),
        (0x18FF5021, True, b"\x07"),
    ]
    assert [m.timestamp for m in got] == [m.timestamp for m in python_can_frames]
    assert (report.frames_read, report.bad_lines) == (2, {})


def test_asc_dates_in_german_and_with_am_pm_are_read(tmp_path: Path) -> None:
    """CANoe writes month names in the PC's language and may use a 12-hour clock: both give the same time."""
    english = tmp_path / "en.asc"
    german = tmp_path / "de.asc"
    line = "   1.000000 1  101             Rx   d 1 01\n"
    english.write_text(f"Begin Triggerblock Thu Dec 24 07:30:00.000 pm 2026\n{line}", encoding="utf-8")
    german.write_text(f"Begin Triggerblock Do Dez 24 19:30:00.000 2026\n{line}", encoding="utf-8")

    (from_english,), _ = read_all(english, frozenset({(0x101, False)}))
    (from_german,), _ = read_all(german, frozenset({(0x101, False)}))

    assert from_english.timestamp == from_german.timestamp
    assert from_english.timestamp == datetime(2026, 12, 24, 19, 30, 1).timestamp()  # noqa: DTZ001 - ASC dates are local time
