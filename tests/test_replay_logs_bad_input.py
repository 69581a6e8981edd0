"""The replay's log readers on bad input: every bad line is counted and skipped, never the end of the read."""

import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

import can
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.replay.logs import LogFormatError, LogReport, detect_format, merge_logs, read_log_frames

from replay_log_files import SUFFIXES, frame, gzipped, keys, mixed_frames, read_all, write_log

WANTED = frozenset({(0x101, False), (0x18FF5021, True)})
JUNK = b"\x00\xff\xfe\x89PNG\x1a junk \x80\x81"


def frames_of(got: list[can.Message]) -> list[tuple[float, int, bytes]]:
    return [(m.timestamp, m.arbitration_id, bytes(m.data)) for m in got]


def with_lines_inserted(path: Path, every: int, *extra: bytes) -> int:
    """Insert the ``extra`` lines after every ``every``-th line of a text log; how many were inserted."""
    lines = path.read_bytes().split(b"\n")
    out, inserted = [], 0
    for number, line in enumerate(lines, start=1):
        out.append(line)
        if number % every == 0 and number < len(lines) - 1:
            out.extend(extra)
            inserted += len(extra)
    path.write_bytes(b"\n".join(out))
    return inserted


@pytest.mark.parametrize("log_format", ["candump", "asc", "savvycan", "csv"])
def test_garbage_and_binary_junk_lines_are_counted_and_skipped(tmp_path: Path, log_format: str) -> None:
    """Stray text, lone symbols and binary junk between frames: each counted as garbage, every frame still read."""
    sent = mixed_frames(40)
    path = write_log(tmp_path / f"noisy{SUFFIXES[log_format]}", log_format, sent)
    clean = read_all(path, keys(sent))[0]
    inserted = with_lines_inserted(path, 7, b"this is not a frame", b"###", JUNK)

    got, report = read_all(path, keys(sent))

    assert frames_of(got) == frames_of(clean)
    assert report.bad_lines == {"garbage": inserted}
    assert report.frames_read == len(sent)
    assert report.error is None


def test_bad_fields_of_candump_frames_are_counted_by_kind(tmp_path: Path) -> None:
    """A wanted frame's line with a bad time, id or payload is counted as such; the lines around it are kept."""
    path = tmp_path / "fields.log"
    path.write_bytes(
        b"(1700000000.000000) can0 101#01\n"
        b"(abc) can0 101#02\n"  # bad_timestamp
        b"(nan) can0 101#02\n"  # bad_timestamp
        b"(1700000000.100000) can0 1G1#03\n"  # bad_id
        b"(1700000000.100000) can0 800#03\n"  # bad_id: 11 bits at most
        b"(1700000000.100000) can0 101#0\n"  # bad_data: half a byte
        b"(1700000000.100000) can0 101#0G\n"  # bad_data
        b"(1700000000.100000) can0 101#010203040506070809\n"  # bad_data: 9 bytes in a classic frame
        b"(1700000000.200000) can0 18FF5021#04 R\n"
    )

    got, report = read_all(path, WANTED)

    assert frames_of(got) == [(1700000000.0, 0x101, b"\x01"), (1700000000.2, 0x18FF5021, b"\x04")]
    assert report.bad_lines == {"bad_timestamp": 2, "bad_id": 2, "bad_data": 3}
    assert report.frames_read == 2


def test_bad_fields_of_asc_frames_are_counted_by_kind(tmp_path: Path) -> None:
    """In ASC too: a bad id, a short payload, a bad byte, a bad time; headers and events are no bad lines."""
    path = tmp_path / "fields.asc"
    path.write_bytes(
        b"date Tue Nov 24 07:30:00.000 2026\nbase hex  timestamps absolute\n// a comment\n"
        b"Begin Triggerblock Tue Nov 24 07:30:00.000 2026\n   0.000000 Start of measurement\n"
        b"   0.100000 1  101             Rx   d 1 01\n"
        b"   0.200000 1  1G1             Rx   d 1 02\n"  # bad_id
        b"   0.200000 1  3FFFFFFFx       Rx   d 1 02\n"  # bad_id: 29 bits at most
        b"   0.200000 1  101             Rx   d 8 01 02\n"  # bad_data: 2 of 8 bytes
        b"   0.200000 1  101             Rx   d 1 0G\n"  # bad_data
        b"   0.300000 1  18FF5021x       Rx   d 1 03\n"
        b"   0.400000 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%\n"
        b"End TriggerBlock\n"
    )

    got, report = read_all(path, WANTED)

    assert [(m.arbitration_id, bytes(m.data)) for m in got] == [(0x101, b"\x01"), (0x18FF5021, b"\x03")]
    assert report.bad_lines == {"bad_id": 2, "bad_data": 2}
    assert report.frames_read == 2


def test_bad_fields_of_savvycan_frames_are_counted_by_kind(tmp_path: Path) -> None:
    """SavvyCAN rows with a bad time, id, kind or bytes are counted; a row before the header is garbage."""
    path = tmp_path / "fields.csv"
    path.write_bytes(
        b"1,00000101,false,Rx,0,1,01,\n"  # garbage: no header yet (also read as garbage by SavvyCAN)
        b"Time Stamp,ID,Extended,Dir,Bus,LEN,D1,D2,D3,D4,D5,D6,D7,D8\n"
        b"1000000,00000101,false,Rx,0,1,01,00,00,00,00,00,00,00,\n"
        b"x,00000101,false,Rx,0,1,02,00,00,00,00,00,00,00,\n"  # bad_timestamp
        b"1000001,0000010G,false,Rx,0,1,03,00,00,00,00,00,00,00,\n"  # bad_id
        b"1000001,00000101,maybe,Rx,0,1,03,00,00,00,00,00,00,00,\n"  # bad_id: kind unknown
        b"1000001,00000101,false,Rx,0,3,04,\n"  # bad_data: 3 bytes announced, 1 given
        b"1000001,00000101,false,Rx,0,1,100,\n"  # bad_data: not a byte
        b"2000000,18FF5021,true,Rx,0,1,05,00,00,00,00,00,00,00,\n"
    )

    got, report = read_all(path, WANTED)

    assert frames_of(got) == [(1.0, 0x101, b"\x01"), (2.0, 0x18FF5021, b"\x05")]
    assert report.bad_lines == {"garbage": 1, "bad_timestamp": 1, "bad_id": 2, "bad_data": 2}


def test_a_trc_line_that_does_not_parse_is_counted_and_the_read_goes_on(tmp_path: Path) -> None:
    """python-can's TRC reader would stop on a bad hex id; here the line is counted and the next ones read."""
    sent = mixed_frames(30)
    path = write_log(tmp_path / "bad.trc", "trc", sent)
    inserted = with_lines_inserted(
        path, 9, b"      7        17.400 DT  1     0ZZZ Rx -  1    00\r", b"###\r", b"   8   9.0 DT\r"
    )

    got, report = read_all(path, keys(sent))

    assert len(got) == len(sent)
    assert report.bad_lines == {"garbage": inserted}


def test_a_long_run_of_binary_junk_is_read_past(tmp_path: Path) -> None:
    """Binary junk with no line end for longer than a line may be is skipped whole; the frames after it are read."""
    sent = mixed_frames(30)
    path = write_log(tmp_path / "junk.log", "candump", sent)
    text = path.read_bytes().split(b"\n")
    junk = bytes(range(256)).replace(b"\n", b"") * 1200  # about 300 kB without a line end
    path.write_bytes(b"\n".join([*text[:10], junk, *text[10:]]))

    got, report = read_all(path, keys(sent))

    assert len(got) == len(sent)
    assert report.bad_lines == {"garbage": 1}


@given(
    junk=st.lists(
        st.binary(min_size=1, max_size=80).map(lambda b: b.replace(b"\n", b"").replace(b"#", b"")), max_size=30
    ),
    seed=st.integers(0, 2**16),
)
def test_no_line_of_junk_stops_the_read_or_becomes_a_frame(junk: list[bytes], seed: int) -> None:
    """Whatever junk lines (without '#') stand between candump frames, exactly the frames come out."""
    sent = mixed_frames(20)
    lines = [
        f"({m.timestamp:f}) can0 {m.arbitration_id:{'08X' if m.is_extended_id else '03X'}}#{m.data.hex()}".encode()
        for m in sent
    ]
    for index, piece in enumerate(junk):
        lines.insert((index * 7 + seed) % (len(lines) + 1), piece)
    with tempfile.TemporaryDirectory() as folder:  # Hypothesis runs the test many times: no tmp_path
        path = Path(folder) / "junk.log"
        path.write_bytes(b"\n".join(lines) + b"\n")
        got, report = read_all(path, keys(sent), log_format="candump")

    assert [(m.arbitration_id, bytes(m.data)) for m in got] == [(m.arbitration_id, bytes(m.data)) for m in sent]
    assert report.error is None


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("junk.log", JUNK * 100),
        ("notes.log", b"Drive to the coast, 24 November\nbattery fine\n"),
        ("data.csv", b"a,b,c\n1,2,3\n"),
        ("export.json", b'{"frames": []}\n'),
    ],
)
def test_a_file_in_no_known_format_is_refused_naming_it(tmp_path: Path, name: str, content: bytes) -> None:
    """Binary junk or text of another kind: LogFormatError naming the file, from detection, reading and merging."""
    path = tmp_path / name
    path.write_bytes(content)

    for attempt in (
        lambda: detect_format(path),
        lambda: read_log_frames(path, WANTED, LogReport(str(path), "", compressed=False)),
        lambda: merge_logs([path], WANTED),
    ):
        with pytest.raises(LogFormatError, match=rf"{name}: not a CAN log"):
            attempt()


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    """A path that does not exist: LogFormatError naming it, with or without a format given."""
    path = tmp_path / "nowhere.log"

    for attempt in (
        lambda: detect_format(path),
        lambda: read_log_frames(path, WANTED, LogReport(str(path), "", compressed=False)),
        lambda: read_log_frames(path, WANTED, LogReport(str(path), "", compressed=False), format="candump"),
        lambda: merge_logs([tmp_path / "elsewhere.log", path], WANTED),
    ):
        with pytest.raises(LogFormatError, match=r"\.log: no such CAN log"):
            attempt()
    with pytest.raises(LogFormatError, match=r"is a directory"):
        detect_format(tmp_path)


def test_a_damaged_gzip_is_refused_naming_it(tmp_path: Path) -> None:
    """A file with the gzip magic bytes and no gzip stream after them cannot be told: refused."""
    path = tmp_path / "drive.log.gz"
    path.write_bytes(b"\x1f\x8b" + JUNK)

    with pytest.raises(LogFormatError, match=r"drive\.log\.gz: a damaged gzip file"):
        detect_format(path)


@pytest.mark.parametrize(("name", "content"), [("empty.log", b""), ("empty.blf", b""), ("empty.asc.gz", None)])
def test_an_empty_log_gives_no_frames_and_says_so(tmp_path: Path, name: str, content: bytes | None) -> None:
    """An empty file (or gzip of nothing) is read as no frames, with the report saying the file is empty."""
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if content is None else content)

    got, report = read_all(path, WANTED)

    assert got == []
    assert (report.frames_read, report.error) == (0, "the file is empty")


@pytest.mark.parametrize("log_format", ["candump", "asc", "savvycan", "trc"])
def test_a_text_log_cut_in_the_middle_of_a_line(tmp_path: Path, log_format: str) -> None:
    """A text log cut short inside its last frame line: the frames before are all read, the cut is reported."""
    sent = mixed_frames(30)
    path = write_log(tmp_path / f"cut{SUFFIXES[log_format]}", log_format, sent)
    content = path.read_bytes().rstrip()
    if log_format == "asc":
        content = content.rsplit(b"\n", 1)[0]  # drop "End TriggerBlock": the last frame line is last
    path.write_bytes(content[: content.rindex(b"\n") + 12])  # eleven bytes into the last frame line

    all_but_last = write_log(tmp_path / f"whole{SUFFIXES[log_format]}", log_format, sent[:-1])

    got, report = read_all(path, keys(sent))

    assert frames_of(got) == frames_of(read_all(all_but_last, keys(sent))[0])
    assert report.error is not None
    assert "cut short" in report.error


def test_a_gzip_cut_short_gives_the_frames_before_the_cut(tmp_path: Path) -> None:
    """A gzip log cut short: every frame decompressed before the cut is read, then the damage is reported."""
    sent = [frame(index * 0.001, 0x101, index.to_bytes(4, "big")) for index in range(20_000)]
    packed = gzipped(write_log(tmp_path / "long.log", "candump", sent))
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])

    got, report = read_all(packed, WANTED)

    assert 0 < len(got) < len(sent)
    assert frames_of(got) == frames_of(sent[: len(got)])
    assert report.error is not None
    assert "damaged or cut short" in report.error


@pytest.mark.parametrize("compress", [False, True])
def test_a_blf_cut_short_gives_the_frames_before_the_cut(tmp_path: Path, *, compress: bool) -> None:
    """A BLF cut short (plain or inside a gzip): the frames of whole containers are read, the cut reported."""
    sent = [frame(index * 0.001, 0x101, index.to_bytes(4, "big")) for index in range(20_000)]
    path = write_log(tmp_path / "long.blf", "blf", sent)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    if compress:
        path = gzipped(path)

    got, report = read_all(path, WANTED)

    assert 0 < len(got) < len(sent)
    assert frames_of(got) == frames_of(sent[: len(got)])
    assert report.error is not None
    assert "cut short" in report.error


@pytest.mark.parametrize("log_format", ["candump", "savvycan", "blf"])
def test_frames_whose_time_goes_backwards_are_dropped_and_counted(tmp_path: Path, log_format: str) -> None:
    """A wanted frame earlier than the last one kept is dropped and counted; other ids are not judged."""
    times = [1.0, 2.0, 3.0, 2.5, 2.6, 4.0]
    sent = [frame(at_s, 0x101, bytes([index])) for index, at_s in enumerate(times)]
    sent.insert(4, frame(0.5, 0x555, b"\xff"))  # not wanted, and back in time: not counted
    path = tmp_path / f"clock{SUFFIXES[log_format]}"
    if log_format == "candump":  # python-can's candump writer would clamp the times: write the lines
        path.write_text("".join(f"({m.timestamp:f}) can0 {m.arbitration_id:03X}#{m.data.hex()}\n" for m in sent))
    else:
        write_log(path, log_format, sent)

    got, report = read_all(path, WANTED)

    assert [bytes(m.data)[0] for m in got] == [0, 1, 2, 5]
    assert report.backwards == 2
    assert (report.frames_read, report.frames_kept) == (7, 4)


def test_mf4_without_asammdf_is_refused_with_the_install_hint(tmp_path: Path) -> None:
    """Where asammdf is missing (blocked in a child process), an MF4 log is refused with 'pip install asammdf'."""
    path = write_log(tmp_path / "drive.mf4", "mf4", mixed_frames(5))
    script = (
        "import sys; sys.modules['asammdf'] = None\n"
        "from pathlib import Path\n"
        "from agent.replay.logs import LogFormatError, LogReport, detect_format, merge_logs, read_log_frames\n"
        f"path = Path({str(path)!r})\n"
        "assert detect_format(path) == ('mf4', False)\n"
        "for attempt in (lambda: merge_logs([path], frozenset()),\n"
        "                lambda: read_log_frames(path, frozenset(), LogReport(str(path), 'mf4', False))):\n"
        "    try:\n"
        "        attempt()\n"
        "    except LogFormatError as err:\n"
        "        print(err)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    messages = result.stdout.splitlines()
    assert len(messages) == 2
    assert all("drive.mf4" in message and "pip install asammdf" in message for message in messages)
