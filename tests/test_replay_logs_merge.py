"""Several logs of one vehicle merged in time order, frames streamed, and the same frames python-can reads."""

import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import can
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.replay.logs import LogFormatError, LogReport, merge_logs, read_log_frames
from simulator.cycles import cycle_by_name
from simulator.day import DayPlan, Trip

from replay_log_files import frame, gzipped, keys, mixed_frames, read_all, write_log, write_savvycan
from sim_runs import reference_profile, simulate

WRITER_WAIT_S = 60.0
"""How long the pipe's writer holds back the rest of the log: bounds the test, never asserted."""


def timeline(frames: list[can.Message]) -> list[tuple[float, int, bytes]]:
    return [(round(m.timestamp, 6), m.arbitration_id, bytes(m.data)) for m in frames]


def test_logs_given_out_of_order_and_overlapping_come_out_in_time_order(tmp_path: Path) -> None:
    """Three logs in three formats, overlapping in time, given latest first: one stream in time order."""
    early = [frame(index * 0.1, 0x101, bytes([index])) for index in range(100)]  # 0–9.9 s
    middle = [frame(5.0005 + index * 0.1, 0x18FF5021, bytes([index]), extended=True) for index in range(100)]
    late = [frame(12.0002 + index * 0.1, 0x132, bytes([index]), channel=1) for index in range(80)]
    paths = [
        gzipped(write_savvycan(tmp_path / "late.csv", late)),
        write_log(tmp_path / "early.log", "candump", early),
        write_log(tmp_path / "middle.blf", "blf", middle),
    ]

    frames, reports = merge_logs(paths, keys(early + middle + late))
    merged = list(frames)

    assert timeline(merged) == sorted(timeline(early + middle + late))
    assert [(report.path, report.format, report.compressed) for report in reports] == [
        (str(paths[0]), "savvycan", True),
        (str(paths[1]), "candump", False),
        (str(paths[2]), "blf", False),
    ]
    assert [report.frames_kept for report in reports] == [80, 100, 100]
    assert all(report.error is None and report.backwards == 0 for report in reports)


def test_frames_of_equal_time_keep_the_order_of_the_logs_given(tmp_path: Path) -> None:
    """Two buses logged with the same timestamps: at each time the first log's frame comes first."""
    first = [frame(index * 0.01, 0x101, b"\x01") for index in range(50)]
    second = [frame(index * 0.01, 0x132, b"\x02") for index in range(50)]
    paths = [write_log(tmp_path / "b.log", "candump", second), write_log(tmp_path / "a.log", "candump", first)]

    frames, _ = merge_logs(paths, keys(first + second))

    assert [m.arbitration_id for m in frames] == [0x132, 0x101] * 50


def test_an_unknown_log_among_good_ones_is_refused_before_any_frame_is_read(tmp_path: Path) -> None:
    """Formats are detected up front: a junk file anywhere in the list raises at once, naming it."""
    good = write_log(tmp_path / "good.log", "candump", mixed_frames(5))
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\x00\x01\x02 not a log\n")

    with pytest.raises(LogFormatError, match=r"junk\.log"):
        merge_logs([good, junk], frozenset({(0x101, False)}))


def test_channel_selection_applies_to_every_log(tmp_path: Path) -> None:
    """The same channel names select in each log; each log names its channels its own way."""
    sent = mixed_frames(30, channels=2)
    paths = [write_log(tmp_path / "bus.log", "candump", sent), write_savvycan(tmp_path / "bus.csv", sent)]

    frames, reports = merge_logs(paths, keys(sent), channels=frozenset({"can1", "1"}))

    on_second = [m for m in sent if m.channel == 1]
    assert timeline(list(frames)) == sorted(timeline(on_second + on_second))
    assert [(report.frames_read, report.frames_kept) for report in reports] == [(30, 15), (30, 15)]


def test_frames_come_while_the_log_is_still_being_written(tmp_path: Path) -> None:
    """Reading streams: the first frame arrives while the writer of a pipe still holds back the rest of the log."""
    sent = [frame(index * 0.001, 0x101, index.to_bytes(4, "big")) for index in range(20_000)]
    text = "".join(f"({m.timestamp:f}) can0 101#{m.data.hex()}\n" for m in sent).encode()
    first_part, rest = text[: len(text) // 4], text[len(text) // 4 :]
    pipe = tmp_path / "live.log"
    os.mkfifo(pipe)
    first_frame_read, rest_written = threading.Event(), threading.Event()

    def write() -> None:
        with pipe.open("wb") as writer:
            writer.write(first_part)
            writer.flush()
            first_frame_read.wait(WRITER_WAIT_S)
            writer.write(rest)
        rest_written.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    report = LogReport(str(pipe), "candump", compressed=False)
    frames = read_log_frames(pipe, frozenset({(0x101, False)}), report, format="candump")

    first = next(frames)
    held_back = not rest_written.is_set()
    first_frame_read.set()
    others = list(frames)
    writer.join(WRITER_WAIT_S)

    assert held_back
    assert timeline([first, *others]) == timeline(sent)
    assert report.error is None


def test_candump_and_asc_give_the_frames_python_can_gives_on_a_simulated_drive(tmp_path: Path) -> None:
    """On a simulated drive, the profile's frames are exactly python-can's (times too), as the live agent reads them."""
    day = simulate(
        DayPlan(
            start_at=datetime(2026, 11, 24, 7, 30, tzinfo=UTC),
            activities=(Trip(cycle=cycle_by_name("urban", 1, duration_s=60), start_s=0.0),),
        )
    )
    wanted = reference_profile().frame_ids
    for name, log_format in (("day.log", "candump"), ("day.asc", "asc")):
        path = write_log(tmp_path / name, log_format, day.frames)
        theirs = [
            m
            for m in can.LogReader(str(path), relative_timestamp=False)
            if (m.arbitration_id, m.is_extended_id) in wanted
        ]

        ours, report = read_all(path, wanted)

        assert len(ours) == len(theirs) > 10_000
        for mine, python_cans in zip(ours, theirs, strict=True):
            assert mine.timestamp == python_cans.timestamp
            assert (mine.arbitration_id, mine.is_extended_id) == (
                python_cans.arbitration_id,
                python_cans.is_extended_id,
            )
            assert (mine.dlc, bytes(mine.data)) == (python_cans.dlc, bytes(python_cans.data))
        assert report.frames_read == len(day.frames)
        assert report.unknown_ids == 1  # MCU_Inverter: on the bus, not in the profile


FRAMES = st.lists(
    st.builds(
        lambda extended, number, data, channel, step: (extended, number, data, channel, step),
        st.booleans(),
        st.integers(0, 0x7FF),
        st.binary(max_size=8),
        st.integers(0, 3),
        st.integers(0, 5000),
    ),
    max_size=40,
)


@settings(max_examples=60)
@given(specs=FRAMES, picks=st.sets(st.integers(0, 0x7FF), max_size=8), channel_pick=st.integers(0, 3))
def test_any_frames_read_as_python_can_reads_them(
    specs: list[tuple[bool, int, bytes, int, int]], picks: set[int], channel_pick: int
) -> None:
    """For any frames, wanted ids and channel: candump and ASC give what python-can's readers give, filtered."""
    sent, at_s = [], 0.0
    for extended, number, data, channel, step in specs:
        at_s += step / 1e4
        sent.append(frame(at_s, number * 0x3FFF if extended else number, data, extended=extended, channel=channel))
    wanted = frozenset((number, False) for number in picks) | frozenset((n * 0x3FFF, True) for n in picks)
    with tempfile.TemporaryDirectory() as folder:  # Hypothesis runs the body many times: no tmp_path
        for name, log_format, channel_name in (
            ("x.log", "candump", f"can{channel_pick}"),
            ("x.asc", "asc", str(channel_pick + 1)),
        ):
            path = write_log(Path(folder) / name, log_format, sent)
            theirs = [
                m
                for m in can.LogReader(str(path), relative_timestamp=False)
                if (m.arbitration_id, m.is_extended_id) in wanted and m.channel in {channel_pick, f"can{channel_pick}"}
            ]
            ours, _ = read_all(path, wanted, channels=frozenset({channel_name}))
            assert [(m.timestamp, m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in ours] == [
                (m.timestamp, m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in theirs
            ]
