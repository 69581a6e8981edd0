"""The replay's time series: bounded buckets in time order, energies as the agent integrates them."""

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ConfigError
from agent.integration import Integrator
from agent.readings import Quantity, Reading
from agent.replay.series import INITIAL_BUCKET_WIDTH_S, SeriesPoint, SeriesRecorder
from agent.sealing import BusQuality, ChainPosition, Provenance, build_record
from agent.segmentation import Segment, Segmenter, SegmenterSettings, SegmentKind
from carbonlink.chain import GENESIS_PREVIOUS_HASH
from carbonlink.records import ChargeRecord, TripRecord

Q = Quantity
START_S = datetime(2026, 11, 22, 7, 30, tzinfo=UTC).timestamp()
FRAME_PERIOD_S = 0.1
VOLTAGE_V = 400.0


def _frames(  # noqa: PLR0913 - a phase of the drive, every quantity named
    start_s: float,
    seconds: float,
    *,
    ready: float,
    charging: float,
    current_a: float,
    speed_kph: float,
    soc_pct: float | None = 80.0,
) -> Iterator[Reading]:
    """A phase as a CAN bus carries it: one quantity group per frame, four frames every 100 ms."""
    for k in range(round(seconds / FRAME_PERIOD_S)):
        time_s = start_s + k * FRAME_PERIOD_S
        yield Reading(time_s, {Q.READY: ready, Q.CHARGING: charging})
        yield Reading(time_s + 0.01, {Q.PACK_VOLTAGE_V: VOLTAGE_V})
        yield Reading(time_s + 0.02, {Q.PACK_CURRENT_A: current_a})
        yield Reading(time_s + 0.03, {Q.SPEED_KPH: speed_kph, Q.SOC_PCT: soc_pct})


def _day() -> list[Reading]:
    """Parked, a trip (ready, drive, brake with regen, stand), parked long enough to end it, a charge, parked.

    Trip and charge end with no current, as they do: an interval across a state change is booked by
    the series as the state after it says, while the segment's figures stop before it. The trip
    starts standing, as cars do: the interval just before a segment's first reading is integrated
    by the series but not by the segment's own integrator (born at that reading); the charge starts
    at full current to show how small that difference is.
    """
    phases = [
        (20.0, {"ready": 0.0, "charging": 0.0, "current_a": 0.0, "speed_kph": 0.0}),
        (5.0, {"ready": 1.0, "charging": 0.0, "current_a": 0.0, "speed_kph": 0.0}),
        (300.0, {"ready": 1.0, "charging": 0.0, "current_a": 60.0, "speed_kph": 50.0}),
        (60.0, {"ready": 1.0, "charging": 0.0, "current_a": -30.0, "speed_kph": 20.0}),
        (120.0, {"ready": 1.0, "charging": 0.0, "current_a": 25.0, "speed_kph": 40.0}),
        (10.0, {"ready": 1.0, "charging": 0.0, "current_a": 0.0, "speed_kph": 0.0}),
        (300.0, {"ready": 0.0, "charging": 0.0, "current_a": 0.0, "speed_kph": 0.0}),
        (900.0, {"ready": 0.0, "charging": 1.0, "current_a": -50.0, "speed_kph": 0.0}),
        (5.0, {"ready": 0.0, "charging": 1.0, "current_a": 0.0, "speed_kph": 0.0}),
        (300.0, {"ready": 0.0, "charging": 0.0, "current_a": 0.0, "speed_kph": 0.0}),
    ]
    readings: list[Reading] = []
    start_s = START_S
    for seconds, quantities in phases:
        readings += _frames(start_s, seconds, **quantities)
        start_s += seconds
    return readings


def _segments(readings: list[Reading]) -> list[Segment]:
    segmenter = Segmenter()
    closed = [segment for reading in readings for segment in segmenter.feed(reading)]
    return closed + segmenter.finish()


def _recorded(readings: list[Reading], max_points: int = 4000) -> list[SeriesPoint]:
    recorder = SeriesRecorder(max_points)
    for reading in readings:
        recorder.add(reading)
    return recorder.points()


def _as_of(points: list[SeriesPoint], time_s: float) -> SeriesPoint:
    """The last point taken at or before ``time_s``."""
    return [point for point in points if point.time_s <= time_s][-1]


def _record(segment: Segment) -> TripRecord | ChargeRecord:
    """The record the agent seals for ``segment``."""
    record = build_record(
        segment,
        device_id="series-test",
        chain=ChainPosition(sequence=1, previous_record_hash=GENESIS_PREVIOUS_HASH, record_id="r-1"),
        provenance=Provenance(agent_version="test", dbc_hash=bytes(32), profile_id="reference_ev"),
        bus=BusQuality(),
    )
    assert isinstance(record, TripRecord | ChargeRecord)
    return record


def test_cumulative_energies_match_the_agents_records_at_each_segments_end() -> None:
    """Energy out and regen at a trip's end, and energy in over a charge, are the agent's record figures."""
    readings = _day()
    segments = _segments(readings)
    assert [segment.kind for segment in segments] == [SegmentKind.TRIP, SegmentKind.CHARGE]
    trip, charge = (_record(segment) for segment in segments)
    assert isinstance(trip, TripRecord)
    assert isinstance(charge, ChargeRecord)
    assert trip.energy_out_wh > 1000
    assert trip.energy_regen_wh > 50
    assert charge.energy_in_wh > 4000
    points = _recorded(readings)

    at_trip_end = _as_of(points, segments[0].totals.end_s)
    assert at_trip_end.energy_out_wh == pytest.approx(trip.energy_out_wh, abs=1e-6)
    assert at_trip_end.energy_regen_wh == pytest.approx(trip.energy_regen_wh, abs=1e-6)
    assert at_trip_end.energy_in_wh == 0.0

    before_charge = _as_of(points, segments[1].totals.start_s)
    at_charge_end = _as_of(points, segments[1].totals.end_s)
    charged_wh = at_charge_end.energy_in_wh - before_charge.energy_in_wh
    # The series also integrates the interval just before the charge's first reading, which the
    # charge's own integrator (born at that reading) cannot: at most one frame period of charging.
    one_frame_wh = 50.0 * VOLTAGE_V * FRAME_PERIOD_S / 3600
    assert charged_wh == pytest.approx(charge.energy_in_wh, abs=one_frame_wh)
    assert at_charge_end.energy_out_wh == at_trip_end.energy_out_wh  # charging is never energy out
    assert points[-1].energy_regen_wh == at_trip_end.energy_regen_wh  # nor regen


def test_points_carry_bucket_means_for_speed_and_power_and_the_latest_soc() -> None:
    """Speed and pack power are means over a bucket; SOC is the value as of the bucket's last reading."""
    recorder = SeriesRecorder()
    for offset_s, speed_kph, current_a, soc_pct in ((0.0, 10.0, 10.0, 50.0), (0.5, 30.0, 30.0, 49.0)):
        recorder.add(Reading(START_S + offset_s, {Q.PACK_VOLTAGE_V: VOLTAGE_V}))
        recorder.add(Reading(START_S + offset_s + 0.1, {Q.PACK_CURRENT_A: current_a, Q.SPEED_KPH: speed_kph}))
        recorder.add(Reading(START_S + offset_s + 0.2, {Q.SOC_PCT: soc_pct}))
    [point] = recorder.points()
    assert point.time_s == START_S + 0.7
    assert point.speed_kph == pytest.approx(20.0)
    # One integrated interval of 0.5 s, a ramp from 4 kW to 12 kW: a mean of 8 kW.
    assert point.pack_power_kw == pytest.approx(8.0)
    assert point.energy_out_wh == pytest.approx(8000 * 0.5 / 3600)
    assert point.soc_pct == 49.0


@pytest.mark.parametrize(("hours", "period_s"), [(10.0, 1.0), (240.0, 10.0)])
def test_a_long_stream_ends_with_at_most_max_points_in_time_order(hours: float, period_s: float) -> None:
    """A ten-hour and a ten-day log both end within max_points, at the finest width that fits, in order.

    Merged buckets keep true means: every ``period_s`` a burst of two readings 0.5 s apart at
    10 kW and 50 km/h, so every point's mean is exactly that however many buckets it merged.
    """
    max_points = 300
    recorder = SeriesRecorder(max_points)
    count = round(hours * 3600 / period_s)
    pack: dict[Quantity, float | None] = {Q.PACK_VOLTAGE_V: VOLTAGE_V, Q.PACK_CURRENT_A: 25.0, Q.SPEED_KPH: 50.0}
    for k in range(count):
        time_s = START_S + k * period_s
        recorder.add(Reading(time_s, pack))
        recorder.add(Reading(time_s + 0.5, pack))
        if k % 10 == 0:
            recorder.add(Reading(time_s - 5 * period_s, {Q.SOC_PCT: 50.0}))  # out of time order
    points = recorder.points()
    span_s = (count - 1) * period_s + 0.5
    width_s = recorder.bucket_width_s
    # Width doubled from 1 s to the finest that fits; the stream is dense, so every bucket holds readings.
    assert width_s / INITIAL_BUCKET_WIDTH_S == 2 ** round(math.log2(width_s / INITIAL_BUCKET_WIDTH_S))
    assert span_s // width_s + 1 <= max_points < span_s // (width_s / 2) + 1
    assert len(points) == span_s // width_s + 1
    assert all(earlier.time_s < later.time_s for earlier, later in pairwise(points))
    assert points[-1].time_s == START_S + (count - 1) * period_s + 0.5
    assert all(point.speed_kph == pytest.approx(50.0) for point in points)
    assert all(point.pack_power_kw == pytest.approx(10.0, rel=1e-5) for point in points)
    # The pauses between bursts are bridged when no longer than the agent's max_gap_s (1 s), else gaps.
    bridged_s = 0.5 * count + ((count - 1) * (period_s - 0.5) if period_s - 0.5 <= 1.0 else 0.0)
    assert points[-1].energy_out_wh == pytest.approx(10_000 * bridged_s / 3600, rel=1e-5)


def test_silences_that_leave_most_buckets_empty_still_bound_the_points() -> None:
    """Readings far apart (every other bucket empty after a merge) are merged until they fit."""
    recorder = SeriesRecorder(max_points=3)
    for k in range(50):
        recorder.add(Reading(START_S + k * 2.0**k, {Q.SPEED_KPH: 1.0}))
    points = recorder.points()
    assert 1 <= len(points) <= 3
    assert all(earlier.time_s < later.time_s for earlier, later in pairwise(points))


_steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.5, 40.0, 3600.0]),
        # Every quantity a reading may carry but the charging state, which would book energy as "in".
        st.sampled_from([quantity for quantity in Quantity if quantity is not Q.CHARGING]),
        st.one_of(st.none(), st.floats(min_value=-200.0, max_value=450.0)),
    ),
    max_size=300,
)


@given(_steps, st.integers(min_value=1, max_value=20))
def test_energies_are_the_integrators_whatever_the_number_of_points(
    steps: list[tuple[float, Quantity, float | None]], max_points: int
) -> None:
    """Without charging, the last point's energies are exactly the agent's integrator's; merging changes nothing."""
    readings = []
    time_s = START_S
    for step_s, quantity, value in steps:
        time_s += step_s
        readings.append(Reading(time_s, {quantity: value}))
    coarse, fine = _recorded(readings, max_points), _recorded(readings, 10_000)
    assert len(coarse) <= max_points
    assert all(earlier.time_s < later.time_s for earlier, later in pairwise(coarse))
    if not readings:
        assert coarse == fine == []
        return
    defaults = SegmenterSettings()
    integrator = Integrator(
        readings[0].time_s, max_gap_s=defaults.max_gap_s, max_voltage_age_s=defaults.max_voltage_age_s
    )
    for reading in readings:
        integrator.add(reading)
    for points in (coarse, fine):
        assert points[-1].energy_out_wh == integrator.energy_out_wh
        assert points[-1].energy_regen_wh == integrator.energy_regen_wh
        assert points[-1].energy_in_wh == 0.0
        assert points[-1].time_s == max(reading.time_s for reading in readings)
    assert coarse[-1].soc_pct == fine[-1].soc_pct


def test_unavailable_values_are_unknown_never_zero() -> None:
    """'Not available' leaves speed and power unknown, makes SOC unknown, and never flips the charging state."""
    recorder = SeriesRecorder()
    recorder.add(Reading(START_S, {Q.CHARGING: 1.0, Q.SOC_PCT: 40.0, Q.PACK_VOLTAGE_V: VOLTAGE_V}))
    recorder.add(Reading(START_S + 0.1, {Q.PACK_CURRENT_A: -50.0, Q.SPEED_KPH: None}))
    recorder.add(Reading(START_S + 0.2, {Q.CHARGING: None, Q.PACK_CURRENT_A: -50.0, Q.PACK_VOLTAGE_V: None}))
    recorder.add(Reading(START_S + 0.3, {Q.PACK_CURRENT_A: None, Q.SOC_PCT: None}))
    recorder.add(Reading(START_S + 1.5, {Q.SPEED_KPH: None, Q.PACK_CURRENT_A: -50.0}))  # voltage too old by now
    first, second = recorder.points()
    assert first.speed_kph is None
    assert first.soc_pct is None  # the vehicle said it no longer knows
    assert first.energy_in_wh == pytest.approx(20_000 * 0.1 / 3600, rel=1e-5)  # still charging: None changed nothing
    assert first.energy_out_wh == first.energy_regen_wh == 0.0
    assert first.pack_power_kw == pytest.approx(-20.0, rel=1e-5)
    assert second.pack_power_kw is None  # no interval integrated in that bucket
    assert second.speed_kph is None
    assert second.energy_in_wh == first.energy_in_wh


def test_a_reading_at_no_time_is_ignored() -> None:
    """A reading whose time is not a finite number has no place on the time axis and changes nothing."""
    recorder = SeriesRecorder()
    recorder.add(Reading(math.nan, {Q.SPEED_KPH: 10.0}))
    recorder.add(Reading(START_S, {Q.SPEED_KPH: 20.0}))
    recorder.add(Reading(math.inf, {Q.SPEED_KPH: 30.0}))
    [point] = recorder.points()
    assert (point.time_s, point.speed_kph) == (START_S, 20.0)


def test_a_series_without_room_for_a_point_is_refused() -> None:
    """max_points below one is a configuration error naming the value."""
    with pytest.raises(ConfigError, match="max_points=0"):
        SeriesRecorder(0)
