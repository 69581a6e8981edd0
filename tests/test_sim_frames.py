"""The frame scheduler: cycle times, staggering, activation, and clear errors for a wrong DBC."""

from collections import Counter
from pathlib import Path

import pytest

from simulator.errors import DbcError
from simulator.frames import FrameScheduler, load_dbc
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS

from bus_states import REFERENCE_DBC, bus_state, reference_database


def _scheduler(origin_s: float = 0.0) -> FrameScheduler:
    return FrameScheduler(
        reference_database(), REFERENCE_SIGNALS, dict.fromkeys(DRIVE_MESSAGES + CHARGE_MESSAGES), origin_s=origin_s
    )


def test_each_message_is_sent_at_its_cycle_time() -> None:
    """Over one second of driving, each message appears 1000 / cycle-ms times, in time order."""
    scheduler = _scheduler()
    scheduler.activate(DRIVE_MESSAGES, 0.0)
    frames = scheduler.frames_until(1.0, bus_state())
    database = reference_database()
    counts = Counter(database.get_message_by_frame_id(frame.arbitration_id).name for frame in frames)
    expected = {name: round(1000 / (database.get_message_by_name(name).cycle_time or 0)) for name in DRIVE_MESSAGES}
    assert counts == expected
    stamps = [frame.timestamp for frame in frames]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)  # staggered: no two frames at the same instant


def test_frames_carry_the_origin_and_extended_ids() -> None:
    """Timestamps are Unix times (origin added); extended ids are flagged as such."""
    scheduler = _scheduler(origin_s=1_764_000_000.0)
    scheduler.activate(DRIVE_MESSAGES, 0.0)
    frames = scheduler.frames_until(0.2, bus_state())
    assert all(1_764_000_000.0 <= frame.timestamp < 1_764_000_000.2 for frame in frames)
    odometer = [frame for frame in frames if frame.arbitration_id == 0x18FF5021]
    assert odometer
    assert all(frame.is_extended_id for frame in odometer)


def test_switching_to_charging_stops_the_inverter_and_starts_the_charger() -> None:
    """Messages follow the active set: MCU_Inverter only while driving, OBC_Charger only while plugged."""
    scheduler = _scheduler()
    scheduler.activate(CHARGE_MESSAGES, 0.0)
    names = {
        reference_database().get_message_by_frame_id(f.arbitration_id).name
        for f in scheduler.frames_until(1.0, bus_state())
    }
    assert "OBC_Charger" in names
    assert "MCU_Inverter" not in names
    scheduler.activate((), 1.0)
    assert scheduler.frames_until(2.0, bus_state()) == []


def test_dbc_lacking_a_sent_message_is_named(tmp_path: Path) -> None:
    """A DBC without a message the simulator sends fails with that message's name."""
    text = REFERENCE_DBC.read_text()
    start = text.index("BO_ 306 BMS_Pack")
    end = text.index("BO_ 421")
    trimmed = tmp_path / "trimmed.dbc"
    trimmed.write_text(text[:start] + text[end:])
    database = load_dbc(trimmed)
    with pytest.raises(DbcError, match="lacks message BMS_Pack"):
        FrameScheduler(database, REFERENCE_SIGNALS, DRIVE_MESSAGES)


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read DBC"), ("BO_ nonsense\n", "not a valid DBC")])
def test_unreadable_dbc_is_a_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    """A missing or garbled DBC raises DbcError naming the file."""
    path = tmp_path / "bad.dbc"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DbcError, match=message):
        load_dbc(path)
