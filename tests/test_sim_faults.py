"""Fault injection: each fault does what it says, is seeded, and is logged."""

from itertools import pairwise

import pytest

from carbonlink.checksums import crc8_j1850
from simulator.errors import ParameterError
from simulator.faults import FaultConfig, FaultInjector, parse_faults
from simulator.frames import FrameScheduler
from simulator.reference_signals import DRIVE_MESSAGES, REFERENCE_SIGNALS

from bus_states import bus_state, reference_database


def _frames(seconds: float, config: FaultConfig | None = None) -> tuple[list[int], list[float], FaultInjector | None]:
    injector = FaultInjector(config, reference_database()) if config is not None else None
    scheduler = FrameScheduler(
        reference_database(), REFERENCE_SIGNALS, DRIVE_MESSAGES, override=injector.signal if injector else None
    )
    scheduler.activate(DRIVE_MESSAGES, 0.0)
    frames = scheduler.frames_until(seconds, bus_state())
    if injector is not None:
        frames = list(injector.frames(frames))
    return [frame.arbitration_id for frame in frames], [frame.timestamp for frame in frames], injector


def test_no_faults_means_every_frame() -> None:
    """A clean configuration changes nothing."""
    clean_ids, clean_times, _ = _frames(10.0)
    ids, times, injector = _frames(10.0, FaultConfig())
    assert (ids, times) == (clean_ids, clean_times)
    assert injector is not None
    assert injector.log == []


def test_random_loss_drops_about_the_given_share() -> None:
    """2 % loss over 60 s of driving drops between 1.5 % and 2.5 % of the frames."""
    clean, _, _ = _frames(60.0)
    lossy, _, _ = _frames(60.0, FaultConfig(loss_pct=2.0, seed=7))
    lost_share = 1 - len(lossy) / len(clean)
    assert 0.015 < lost_share < 0.025


def test_faults_are_deterministic_for_a_seed() -> None:
    """The same seed injects the same faults; another seed others."""
    config = FaultConfig(loss_pct=5.0, bursts_per_hour=600, jumps_per_hour=120, seed=3)
    assert _frames(30.0, config)[:2] == _frames(30.0, config)[:2]
    other = FaultConfig(loss_pct=5.0, bursts_per_hour=600, jumps_per_hour=120, seed=4)
    assert _frames(30.0, config)[:2] != _frames(30.0, other)[:2]


def test_bus_off_gaps_leave_no_frame_for_their_length() -> None:
    """During a bus-off gap no frame at all is on the bus, and the gap is logged."""
    _, times, injector = _frames(120.0, FaultConfig(bus_off_per_hour=120, bus_off_s=2.0, seed=1))
    assert injector is not None
    gaps = [entry for entry in injector.log if entry.kind == "bus_off"]
    assert gaps
    for gap in gaps:
        assert not [t for t in times if gap.at_s <= t < gap.at_s + 2.0]


def test_corrupted_frames_fail_their_checksum() -> None:
    """A corrupted frame's byte 7 is no longer the CRC of bytes 0..6; others stay valid."""
    injector = FaultInjector(FaultConfig(corrupt_pct=10.0, seed=2), reference_database())
    scheduler = FrameScheduler(reference_database(), REFERENCE_SIGNALS, DRIVE_MESSAGES)
    scheduler.activate(DRIVE_MESSAGES, 0.0)
    frames = list(injector.frames(scheduler.frames_until(5.0, bus_state())))
    checked = [frame for frame in frames if frame.arbitration_id in (0x101, 0x132, 0x1A5)]
    bad_checksum = [frame for frame in checked if frame.data[7] != crc8_j1850(bytes(frame.data[:7]))]
    logged = [entry.detail.split()[-1] for entry in injector.log if entry.kind == "corrupt"]
    assert len(bad_checksum) == logged.count("checksum")
    assert 0.05 < len(logged) / len(checked) < 0.15


def test_corrupted_counters_break_the_sequence_under_a_valid_checksum() -> None:
    """A counter fault leaves a valid checksum but a counter that does not follow its predecessor."""
    injector = FaultInjector(FaultConfig(corrupt_pct=10.0, seed=2), reference_database())
    scheduler = FrameScheduler(reference_database(), REFERENCE_SIGNALS, DRIVE_MESSAGES)
    scheduler.activate(DRIVE_MESSAGES, 0.0)
    frames = [f for f in injector.frames(scheduler.frames_until(5.0, bus_state())) if f.arbitration_id == 0x132]
    counters = [frame.data[6] & 0x0F for frame in frames if frame.data[7] == crc8_j1850(bytes(frame.data[:7]))]
    breaks = sum(1 for before, after in pairwise(counters) if after != (before + 1) % 16)
    assert breaks >= 1
    assert any(entry.detail.endswith("counter") for entry in injector.log)


def test_timestamp_jumps_shift_later_frames() -> None:
    """After a logged jump, frames carry timestamps moved by the jump."""
    _, times, injector = _frames(60.0, FaultConfig(jumps_per_hour=360, jump_s=5.0, seed=5))
    assert injector is not None
    assert any(entry.kind == "timestamp_jump" for entry in injector.log)
    assert any(later < earlier - 1.0 or later > earlier + 1.0 for earlier, later in pairwise(times))


def test_signal_faults_write_sna_and_out_of_range_values() -> None:
    """SNA faults write the all-ones pattern, out-of-range faults a value beyond the DBC range."""
    injector = FaultInjector(FaultConfig(sna_pct=100.0, seed=1), reference_database())
    assert injector.signal("BMS_Status", "BMS_SOC", 0.0, 50.0) == pytest.approx(102.3)
    assert injector.signal("BMS_Pack", "BMS_PackCurrent", 0.0, 10.0) == pytest.approx(-3276.8)
    injector = FaultInjector(FaultConfig(out_of_range_pct=100.0, seed=1), reference_database())
    soc = injector.signal("BMS_Status", "BMS_SOC", 0.0, 50.0)
    assert 100.0 < soc < 102.3
    assert injector.log[-1].kind == "out_of_range"


def test_stuck_signal_holds_its_value() -> None:
    """A stuck signal repeats the value it had when it stuck, for the stuck duration."""
    injector = FaultInjector(FaultConfig(stuck_per_hour=3600, stuck_s=10.0, seed=1), reference_database())
    step = 0
    while not injector.log:  # one stuck fault per second on average: wait for the first
        step += 1
        injector.signal("x", "BMS_PackCurrent", 0.01 * step, 10.0)
        assert step < 100_000
    stuck = injector.log[-1].detail.split()[0]
    started_s = injector.log[-1].at_s
    values = [injector.signal("x", stuck, started_s + 0.001 * i, float(i)) for i in range(1, 5)]
    assert len(set(values)) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("loss", "KEY=VALUE"),
        ("noise=3", "KEY=VALUE"),
        ("loss=abc", "needs a number"),
        ("loss=120", "percentage"),
        ("loss=-1", "non-negative"),
    ],
)
def test_bad_fault_specs_are_named(spec: str, message: str) -> None:
    """--faults with an unknown key, a non-number or an impossible value is refused clearly."""
    with pytest.raises(ParameterError, match=message):
        parse_faults(spec, seed=0)


def test_fault_spec_sets_each_named_rate() -> None:
    """Every key of --faults lands in its setting."""
    config = parse_faults(
        "loss=2,bursts=6,bus-off=1,corrupt=0.5,jumps=1,stuck=2,out-of-range=0.1,sna=0.2,flaps=3", seed=9
    )
    assert (config.loss_pct, config.bursts_per_hour, config.bus_off_per_hour, config.corrupt_pct) == (
        2.0,
        6.0,
        1.0,
        0.5,
    )
    assert (config.jumps_per_hour, config.stuck_per_hour, config.out_of_range_pct, config.sna_pct) == (
        1.0,
        2.0,
        0.1,
        0.2,
    )
    assert (config.ignition_flaps, config.seed) == (3, 9)
