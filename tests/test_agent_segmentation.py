"""The segmenter cuts readings into trips and charge sessions, and integrates them exactly."""

from collections.abc import Iterable, Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.integration import Integrator
from agent.readings import Quantity, Reading
from agent.segmentation import Segment, Segmenter, SegmenterSettings, SegmentKind

STEP_S = 0.01
Q = Quantity


def _drive(  # noqa: PLR0913 - every quantity of a reading can be set, each with a default
    start_s: float,
    seconds: float,
    *,
    ready: float = 1.0,
    charging: float = 0.0,
    voltage_v: float | None = 400.0,
    current_a: float | None = 25.0,
    speed_kph: float = 36.0,
    odometer_m: float = 1000.0,
    step_s: float = STEP_S,
) -> Iterator[Reading]:
    """Readings every ``step_s`` (10 ms): state, pack, speed, odometer advancing with the speed."""
    for k in range(round(seconds / step_s)):
        time_s = start_s + k * step_s
        yield Reading(
            time_s,
            {
                Q.READY: ready,
                Q.CHARGING: charging,
                Q.PACK_VOLTAGE_V: voltage_v,
                Q.PACK_CURRENT_A: current_a,
                Q.SPEED_KPH: speed_kph,
                Q.ODOMETER_M: odometer_m + speed_kph / 3.6 * k * step_s,
            },
        )


def _run(readings: Iterable[Reading], settings: SegmenterSettings | None = None) -> tuple[list[Segment], Segmenter]:
    segmenter = Segmenter(settings)
    closed = [segment for reading in readings for segment in segmenter.feed(reading)]
    return closed + segmenter.finish(), segmenter


def test_constant_power_trip_integrates_exactly() -> None:
    """100 s at 400 V × 25 A is 277.78 Wh out; 36 km/h for 100 s is 1 km by the odometer."""
    segments, _ = _run(_drive(0.0, 100.0))
    assert [segment.kind for segment in segments] == [SegmentKind.TRIP]
    totals = segments[0].totals
    assert totals.energy_out_wh == pytest.approx(400 * 25 * (100 - STEP_S) / 3600)
    assert totals.energy_regen_wh == 0.0
    assert totals.distance_m == pytest.approx(1000.0 - 10 * STEP_S)
    assert totals.coverage_pct == pytest.approx(100.0)


def test_short_stop_does_not_split_a_trip() -> None:
    """Ready off for 60 s (under the 120 s hysteresis) keeps one trip."""
    readings = [*_drive(0.0, 50.0), *_drive(50.0, 60.0, ready=0.0, current_a=1.0), *_drive(110.0, 50.0)]
    segments, _ = _run(readings)
    assert len(segments) == 1
    assert segments[0].totals.end_s == pytest.approx(160.0 - STEP_S)


def test_long_ready_off_splits_and_ends_at_the_last_ready_moment() -> None:
    """Ready off for 300 s ends the first trip where ready went off; a second trip follows."""
    readings = [*_drive(0.0, 50.0), *_drive(50.0, 300.0, ready=0.0, current_a=1.0), *_drive(350.0, 50.0)]
    segments, _ = _run(readings)
    assert len(segments) == 2
    assert segments[0].totals.end_s == pytest.approx(50.0 - STEP_S)
    assert segments[0].totals.energy_out_wh == pytest.approx(400 * 25 * (50 - STEP_S) / 3600)


def test_ready_off_then_a_silent_bus_splits_even_when_the_next_frame_says_ready() -> None:
    """Ready off, the bus asleep for 5 minutes, then ready again: two trips, as a live bus's ticks make it."""
    readings = [*_drive(0.0, 50.0), *_drive(50.0, 1.0, ready=0.0, current_a=0.0), *_drive(351.0, 50.0)]
    segments, _ = _run(readings)
    assert [segment.totals.start_s for segment in segments] == [0.0, 351.0]
    assert [segment.totals.end_s for segment in segments] == pytest.approx([50.0 - STEP_S, 401.0 - STEP_S])
    assert all(segment.totals.gaps == 0 for segment in segments)


def test_ignition_flapping_alone_invents_no_trip() -> None:
    """Ready on for 0.6 s three times, the car never moving, is discarded and counted."""
    readings: list[Reading] = []
    for flap in range(3):
        readings += _drive(flap * 1.0, 0.4, ready=0.0, speed_kph=0.0)
        readings += _drive(flap * 1.0 + 0.4, 0.6, speed_kph=0.0)
    readings += _drive(3.0, 300.0, ready=0.0, speed_kph=0.0)
    segments, segmenter = _run(readings)
    assert segments == []
    assert segmenter.discarded == 1


def test_flapping_before_a_trip_keeps_one_trip() -> None:
    """Flaps at the start of a real trip merge into it."""
    readings: list[Reading] = []
    for flap in range(2):
        readings += _drive(flap * 1.0, 0.4, ready=0.0, speed_kph=0.0)
        readings += _drive(flap * 1.0 + 0.4, 0.6, speed_kph=0.0)
    readings += _drive(2.0, 100.0)
    segments, _ = _run(readings)
    assert len(segments) == 1


def test_charge_session_is_its_own_segment() -> None:
    """Charging after a trip closes the trip at once and integrates the charge as energy in."""
    readings = [*_drive(0.0, 60.0), *_drive(60.0, 120.0, ready=0.0, charging=1.0, current_a=-20.0, speed_kph=0.0)]
    segments, _ = _run(readings)
    assert [segment.kind for segment in segments] == [SegmentKind.TRIP, SegmentKind.CHARGE]
    charge = segments[1].totals
    assert charge.energy_regen_wh == pytest.approx(400 * 20 * (120 - STEP_S) / 3600)
    assert charge.energy_out_wh == 0.0


def test_gap_longer_than_the_limit_is_counted_not_bridged() -> None:
    """A 5 s hole in the readings is not integrated over; it is one gap of 5 s."""
    readings = [*_drive(0.0, 50.0), *_drive(55.0, 50.0)]
    segments, _ = _run(readings)
    totals = segments[0].totals
    assert totals.gaps == 1
    assert totals.gap_duration_s == pytest.approx(5.0 + STEP_S)
    assert totals.energy_out_wh == pytest.approx(400 * 25 * (100 - 2 * STEP_S) / 3600)
    assert totals.coverage_pct < 96.0


def test_not_available_values_are_unknown_not_zero() -> None:
    """SNA current yields no power sample and is counted; the short hole is bridged, not read as zero."""
    readings = [*_drive(0.0, 10.0), *_drive(10.0, 0.5, current_a=None), *_drive(10.5, 10.0)]
    segments, _ = _run(readings, SegmenterSettings(min_trip_duration_s=1.0))
    totals = segments[0].totals
    assert totals.unavailable == 50
    assert totals.power_samples == 2000
    assert totals.energy_out_wh == pytest.approx(400 * 25 * (20.5 - STEP_S) / 3600)


def test_silence_closes_an_open_trip() -> None:
    """The bus sleeping (no readings for 20 minutes) ends the trip before the next one starts."""
    readings = [*_drive(0.0, 60.0), *_drive(1260.0, 60.0)]
    segments, _ = _run(readings)
    assert len(segments) == 2
    assert segments[1].totals.start_s == pytest.approx(1260.0)


def test_a_quiet_bus_seals_the_trip_after_the_hysteresis() -> None:
    """Ready off, then silence (the car sleeps): ticks of the clock close the trip, not the next frame."""
    segmenter = Segmenter()
    for reading in [*_drive(0.0, 60.0), *_drive(60.0, 5.0, ready=0.0, current_a=0.0)]:
        assert segmenter.feed(reading) == []
    assert segmenter.tick(60.0 + 119.0) == []  # still inside the 120 s hysteresis
    closed = segmenter.tick(60.0 + 121.0)
    assert [segment.kind for segment in closed] == [SegmentKind.TRIP]
    assert closed[0].totals.end_s == pytest.approx(60.0 - STEP_S)
    assert segmenter.tick(10_000.0) == []
    assert segmenter.finish() == []


def test_a_silent_bus_ends_a_trip_that_was_still_ready() -> None:
    """No frame for longer than split_gap_s ends an open segment even though ready never went off."""
    segmenter = Segmenter()
    for reading in _drive(0.0, 60.0):
        segmenter.feed(reading)
    assert segmenter.tick(60.0 + 500.0) == []
    closed = segmenter.tick(60.0 + 601.0)
    assert len(closed) == 1
    assert closed[0].totals.end_s == pytest.approx(60.0 - STEP_S)


def test_a_short_charge_that_delivered_energy_is_kept() -> None:
    """20 s of charging at 8 kW (44 Wh) is sealed; 20 s that delivered almost nothing is discarded."""
    real = [*_drive(0.0, 20.0, ready=0.0, charging=1.0, current_a=-20.0, speed_kph=0.0)]
    segments, segmenter = _run(real)
    assert [segment.kind for segment in segments] == [SegmentKind.CHARGE]
    assert segmenter.discarded == 0
    idle = [*_drive(0.0, 20.0, ready=0.0, charging=1.0, current_a=-0.5, speed_kph=0.0)]
    segments, segmenter = _run(idle)
    assert segments == []
    assert segmenter.discarded == 1


def test_zero_crossing_splits_discharge_and_regen() -> None:
    """A ramp from +10 kW to -10 kW over 1 s is 1.389 Wh out and 1.389 Wh regen."""
    integrator = Integrator(0.0, max_gap_s=2.0, max_voltage_age_s=1.0)
    integrator.add(Reading(0.0, {Q.PACK_VOLTAGE_V: 400.0, Q.PACK_CURRENT_A: 25.0}))
    integrator.add(Reading(1.0, {Q.PACK_VOLTAGE_V: 400.0, Q.PACK_CURRENT_A: -25.0}))
    totals = integrator.snapshot()
    assert totals.energy_out_wh == pytest.approx(10_000 / 2 * 0.5 / 3600)
    assert totals.energy_regen_wh == pytest.approx(10_000 / 2 * 0.5 / 3600)


def test_stale_voltage_is_not_used() -> None:
    """Current is paired only with a voltage read within max_voltage_age_s."""
    integrator = Integrator(0.0, max_gap_s=2.0, max_voltage_age_s=0.5)
    integrator.add(Reading(0.0, {Q.PACK_VOLTAGE_V: 400.0}))
    integrator.add(Reading(1.0, {Q.PACK_CURRENT_A: 25.0}))
    assert integrator.snapshot().power_samples == 0


def test_bad_settings_are_refused() -> None:
    """A negative or infinite threshold is a configuration error naming the setting."""
    from agent.errors import ConfigError  # noqa: PLC0415 - only this test needs it

    with pytest.raises(ConfigError, match="max_gap_s"):
        SegmenterSettings(max_gap_s=-1.0)


_phases = st.lists(
    st.tuples(
        st.floats(min_value=0.05, max_value=400.0),  # duration of the phase, s
        st.sampled_from(["drive", "stand", "charge", "off", "silence"]),
        st.floats(min_value=-50.0, max_value=200.0),  # current, A
    ),
    min_size=1,
    max_size=12,
)


def _readings_of(phases: list[tuple[float, str, float]]) -> list[Reading]:
    readings: list[Reading] = []
    time_s = 0.0
    for seconds, kind, current in phases:
        if kind != "silence":
            readings += _drive(
                time_s,
                seconds,
                ready=1.0 if kind in ("drive", "stand") else 0.0,
                charging=1.0 if kind == "charge" else 0.0,
                current_a=current,
                speed_kph=36.0 if kind == "drive" else 0.0,
                step_s=0.25,  # coarse: the properties are about states, not integration accuracy
            )
        time_s += seconds
    return readings


@settings(max_examples=60)
@given(_phases)
def test_segments_never_overlap_and_stay_in_time_order(phases: list[tuple[float, str, float]]) -> None:
    """Whatever the sequence of states, closed segments are disjoint and in time order."""
    segments, _ = _run(_readings_of(phases))
    for before, after in pairwise(segments):
        assert before.totals.end_s <= after.totals.start_s
    for segment in segments:
        assert segment.totals.start_s <= segment.totals.end_s
        assert segment.totals.energy_out_wh >= 0
        assert segment.totals.energy_regen_wh >= 0


@settings(max_examples=60)
@given(_phases, st.integers(min_value=1, max_value=7))
def test_segmentation_does_not_depend_on_how_readings_are_delivered(
    phases: list[tuple[float, str, float]], batch: int
) -> None:
    """Feeding the same readings in batches of any size closes the same segments."""
    readings = _readings_of(phases)
    one_by_one, _ = _run(readings)
    segmenter = Segmenter()
    batched: list[Segment] = []
    for start in range(0, len(readings), batch):
        for reading in readings[start : start + batch]:
            batched += segmenter.feed(reading)
    batched += segmenter.finish()
    assert batched == one_by_one


@settings(max_examples=60)
@given(_phases, st.floats(min_value=0.0, max_value=1.0))
def test_ticks_in_the_silences_close_the_same_segments_as_the_next_reading(
    phases: list[tuple[float, str, float]], where: float
) -> None:
    """A replay (no ticks) and a live bus (the clock ticking while it is silent) agree on every segment."""
    readings = _readings_of(phases)
    without_ticks, _ = _run(readings)
    segmenter = Segmenter()
    with_ticks: list[Segment] = []
    for before, after in pairwise(readings):
        with_ticks += segmenter.feed(before)
        if after.time_s - before.time_s > 1.0:  # a silence: tick once inside it and once at its end
            with_ticks += segmenter.tick(before.time_s + where * (after.time_s - before.time_s))
            with_ticks += segmenter.tick(after.time_s - 0.001)
    if readings:
        with_ticks += segmenter.feed(readings[-1])
    with_ticks += segmenter.finish()
    assert with_ticks == without_ticks
