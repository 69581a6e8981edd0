"""Decoding frames into readings: round trips, fix-ups, and every kind of bad frame counted."""

import math
from functools import cache
from typing import Any

import can
import cantools.database
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.decoding import COUNTER_RESYNC_S, DecodeStats, FrameDecoder
from agent.profile import VehicleProfile, load_profile, parse_dbc, resolve_dbc, signal_layout
from agent.profiles import shipped_profile
from agent.readings import Quantity, Reading
from carbonlink.checksums import crc8_j1850
from simulator.bus_state import BusState, ChargerState, ChargerType, ReadyState
from simulator.frames import FrameScheduler, MessageEncoder
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS

from bus_states import bus_state, reference_database

SENT = sorted(set(DRIVE_MESSAGES + CHARGE_MESSAGES))


@cache
def shipped(name: str) -> VehicleProfile:
    return load_profile(shipped_profile(name))


@cache
def opendbc_database(ref: str) -> Any:  # noqa: ANN401 - cantools is untyped
    return parse_dbc(resolve_dbc(ref, shipped_profile("reference_ev").parent).read_text(), ref)


def frame(
    arbitration_id: int, data: bytes, *, time_s: float = 0.0, extended: bool = False, **flags: bool
) -> can.Message:
    return can.Message(
        timestamp=time_s, arbitration_id=arbitration_id, is_extended_id=extended, data=data, check=False, **flags
    )


def encoded(name: str, state: BusState, *, time_s: float = 0.0, value: float | None = None) -> can.Message:
    """One reference frame from the simulator's encoder; ``value`` overrides every value signal."""
    message = reference_database().get_message_by_name(name)
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    override = None if value is None else (lambda _m, _s, _t, _v: value)
    return frame(
        message.frame_id,
        encoder.encode(state, time_s, override),
        time_s=time_s,
        extended=message.is_extended_frame,
    )


def day_frames(state: BusState, messages: list[str], seconds: float) -> list[can.Message]:
    scheduler = FrameScheduler(reference_database(), REFERENCE_SIGNALS, SENT)
    scheduler.activate(messages, 0.0)
    return scheduler.frames_until(seconds, state)


def last_values(readings: list[Reading]) -> dict[Quantity, float | None]:
    values: dict[Quantity, float | None] = {}
    for reading in readings:
        values.update(reading.values)
    return values


# --- the reference bus ---------------------------------------------------------------------------


def test_a_drive_decodes_to_the_bus_state_with_the_sign_we_use() -> None:
    """Regen current stays negative, speed, SOC and odometer come back within their resolution."""
    state = bus_state(pack_current_a=-84.3, speed_kph=63.37, soc_pct=55.5, odometer_m=1_234_567.0)
    decoder = FrameDecoder(shipped("reference_ev"))
    values = last_values(list(decoder.readings(day_frames(state, list(DRIVE_MESSAGES), 2.1))))
    assert values[Quantity.PACK_CURRENT_A] == pytest.approx(-84.3, abs=0.05)
    assert values[Quantity.PACK_VOLTAGE_V] == pytest.approx(396.42, abs=0.01)
    assert values[Quantity.SPEED_KPH] == pytest.approx(63.37, abs=0.005)
    assert values[Quantity.SOC_PCT] == pytest.approx(55.5, abs=0.05)
    assert values[Quantity.ODOMETER_M] == 1_234_567.0
    assert values[Quantity.READY] == 1.0
    assert values[Quantity.ENERGY_DISCHARGED_WH] == 9_120_611.0
    assert values[Quantity.ENERGY_CHARGED_WH] == 8_900_155.0
    assert Quantity.CHARGING not in values  # the charger is not on the bus while driving
    stats = decoder.stats()
    assert stats.frames_seen == stats.frames_used + stats.ignored  # MCU_Inverter frames are not read
    assert stats.ignored == 105  # 2.1 s of MCU_Inverter at 20 ms
    assert (stats.bad_checksum, stats.counter_jumps, stats.unavailable, stats.out_of_range) == (0, 0, 0, 0)


def test_a_dc_charge_decodes_charging_dc_and_grid_power() -> None:
    """While plugged in, charging and charger_dc are 1.0 and grid power comes from the charger."""
    state = bus_state(
        ready=ReadyState.OFF,
        charger_state=ChargerState.CHARGING,
        charger_type=ChargerType.DC,
        grid_power_w=48_250.0,
        pack_current_a=-120.0,
    )
    values = last_values(
        list(FrameDecoder(shipped("reference_ev")).readings(day_frames(state, list(CHARGE_MESSAGES), 1)))
    )
    assert values[Quantity.CHARGING] == 1.0
    assert values[Quantity.CHARGER_DC] == 1.0
    assert values[Quantity.READY] == 0.0
    assert values[Quantity.GRID_POWER_W] == 48_250.0
    assert values[Quantity.PACK_CURRENT_A] == pytest.approx(-120.0)


def test_the_multiplexed_energy_message_gives_one_counter_per_frame() -> None:
    """BMS_Energy frames alternate: discharged energy, then charged energy, each alone in its reading."""
    message = reference_database().get_message_by_name("BMS_Energy")
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    decoder = FrameDecoder(shipped("reference_ev"))
    state = bus_state(energy_discharged_wh=1234.0, energy_charged_wh=5678.0)
    first, second = (decoder.decode(frame(message.frame_id, encoder.encode(state, 0.0))) for _ in range(2))
    assert first is not None
    assert second is not None
    assert first.values == {Quantity.ENERGY_DISCHARGED_WH: 1234.0}
    assert second.values == {Quantity.ENERGY_CHARGED_WH: 5678.0}
    unknown_page = decoder.decode(frame(message.frame_id, bytes([7, 1, 2, 3, 4, 0, 0, 0])))
    assert unknown_page is None
    assert decoder.stats().ignored == 1


def test_not_available_values_are_unknown_not_zero() -> None:
    """The SNA raw value of every signal of BMS_Pack decodes to None and is counted."""
    decoder = FrameDecoder(shipped("reference_ev"))
    # -3276.8 A is raw -32768 (SNA of the signed current); 1310.7 V is raw 65535 (SNA of the voltage).
    message = reference_database().get_message_by_name("BMS_Pack")
    data = message.encode(
        {"BMS_PackVoltage": 1310.7, "BMS_PackCurrent": -3276.8, "BMS_Counter": 0, "BMS_Checksum": 0},
        strict=False,
    )
    payload = bytearray(data)
    payload[7] = crc8_j1850(bytes(payload[:7]))
    reading = decoder.decode(frame(0x132, bytes(payload)))
    assert reading is not None
    assert reading.values == {Quantity.PACK_VOLTAGE_V: None, Quantity.PACK_CURRENT_A: None}
    assert decoder.stats().unavailable == 2
    assert decoder.stats().frames_used == 1


def test_values_outside_the_dbc_range_are_unknown() -> None:
    """400 km/h is outside VCU_VehicleSpeed's [0, 300]: None, counted as out of range."""
    decoder = FrameDecoder(shipped("reference_ev"))
    reading = decoder.decode(encoded("VCU_Drive", bus_state(speed_kph=400.0)))
    assert reading is not None
    assert reading.values[Quantity.SPEED_KPH] is None
    assert reading.values[Quantity.READY] == 1.0
    assert decoder.stats().out_of_range == 1


def test_truncated_frames_are_counted_and_skipped() -> None:
    """A frame shorter than its message is not guessed at."""
    decoder = FrameDecoder(shipped("reference_ev"))
    whole = encoded("BMS_Pack", bus_state())
    assert decoder.decode(frame(0x132, bytes(whole.data[:5]))) is None
    assert decoder.stats() == DecodeStats(frames_seen=1, truncated=1)


def test_frames_with_a_bad_checksum_are_counted_and_skipped() -> None:
    """One flipped bit anywhere in bytes 0..7 fails the CRC; the frame yields nothing."""
    decoder = FrameDecoder(shipped("reference_ev"))
    good = bytes(encoded("BMS_Pack", bus_state()).data)
    for bit in range(64):
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert decoder.decode(frame(0x132, bytes(bad))) is None
    assert decoder.stats() == DecodeStats(frames_seen=64, bad_checksum=64)
    assert decoder.decode(frame(0x132, good)) is not None


def test_counter_jumps_estimate_the_frames_dropped() -> None:
    """Skipping 3 frames of a counted message is one jump of 3; a long silence starts afresh."""
    message = reference_database().get_message_by_name("BMS_Pack")
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    frames = [frame(0x132, encoder.encode(bus_state(), 0.0), time_s=i * 0.01) for i in range(40)]
    kept = frames[:10] + frames[13:20] + [frame(0x132, bytes(f.data), time_s=f.timestamp + 60) for f in frames[25:]]
    decoder = FrameDecoder(shipped("reference_ev"))
    assert len(list(decoder.readings(kept))) == len(kept)
    stats = decoder.stats()
    assert (stats.counter_jumps, stats.frames_dropped) == (1, 3)
    assert COUNTER_RESYNC_S < 60


def test_frames_of_other_ids_or_kinds_are_ignored() -> None:
    """Unknown ids, the right number with the other id type, error and remote frames: ignored."""
    decoder = FrameDecoder(shipped("reference_ev"))
    data = bytes(encoded("BMS_Pack", bus_state()).data)
    assert decoder.decode(frame(0x7FF, data)) is None
    assert decoder.decode(frame(0x132, data, extended=True)) is None
    assert decoder.decode(frame(0x132, data, is_error_frame=True)) is None
    assert decoder.decode(frame(0x132, b"", is_remote_frame=True)) is None
    assert decoder.stats() == DecodeStats(frames_seen=4, ignored=4)


@given(
    frames=st.lists(
        st.builds(
            frame,
            arbitration_id=st.one_of(
                st.sampled_from([0x101, 0x132, 0x232, 0x3D2, 0x18FF5021, 0x18FF1222, 0x2C7, 0x348, 0x257, 0x221]),
                st.integers(0, 0x1FFFFFFF),
            ),
            data=st.binary(max_size=64),
            time_s=st.floats(allow_nan=True, allow_infinity=True),
            extended=st.booleans(),
        ),
        max_size=30,
    ),
    name=st.sampled_from(["reference_ev", "chevrolet_volt", "vw_golf_gte", "tesla_model3"]),
)
def test_arbitrary_frames_never_raise_and_every_frame_is_counted_once(frames: list[can.Message], name: str) -> None:
    """Whatever bytes arrive, decoding returns and each frame lands in exactly one count."""
    decoder = FrameDecoder(shipped(name))
    readings = [decoder.decode(f) for f in frames]
    stats = decoder.stats()
    assert stats.frames_seen == len(frames)
    assert stats.frames_used + stats.ignored + stats.truncated + stats.bad_checksum == len(frames)
    assert stats.frames_used == sum(reading is not None for reading in readings)
    for reading in readings:
        if reading is not None:
            assert all(v is None or math.isfinite(v) for v in reading.values.values())


@pytest.mark.parametrize("name", ["reference_ev", "chevrolet_volt", "vw_golf_gte", "tesla_model3"])
@given(payload=st.binary(min_size=8, max_size=8))
def test_bits_are_read_as_cantools_reads_them(name: str, payload: bytes) -> None:
    """For any payload, each value is cantools' physical value, fixed up and converted, or None if SNA/out of range."""
    profile = shipped(name)
    databases = [_database(ref) for ref in profile.dbc]
    for message in profile.messages:
        cantools_message = next(db.get_message_by_name(message.name) for db in databases)
        data = bytearray(payload[: message.length])
        if message.checksum_byte is not None:
            data[message.checksum_byte] = crc8_j1850(bytes(data[: message.checksum_byte]))
        reading = FrameDecoder(profile).decode(frame(message.frame_id, bytes(data), extended=message.is_extended))
        decoded = _cantools_raw(cantools_message, bytes(data))
        expected = _expected(profile, message.name, cantools_message, decoded)
        got = {} if reading is None else reading.values
        assert got.keys() == expected.keys()
        for quantity, value in expected.items():
            if value is None:
                assert got[quantity] is None, (message.name, quantity)
            else:
                assert got[quantity] == pytest.approx(value, rel=1e-12, abs=1e-9), (message.name, quantity)


def _cantools_raw(message: Any, data: bytes) -> dict[str, int]:  # noqa: ANN401
    """The raw values cantools reads; on a multiplexer page the DBC lacks, those of the signals in every frame."""
    try:
        return dict(message.decode(data, decode_choices=False, scaling=False))
    except cantools.database.DecodeError:
        selector = next(signal for signal in message.signals if signal.is_multiplexer)
        mux = signal_layout(message, selector, "test")
        known_page = min(page for signal in message.signals for page in signal.multiplexer_ids or ())
        pattern = int.from_bytes(data, "big" if mux.big_endian else "little")
        pattern &= ~(((1 << mux.length) - 1) << mux.shift)
        pattern |= known_page << mux.shift
        data = pattern.to_bytes(len(data), "big" if mux.big_endian else "little")
        decoded = message.decode(data, decode_choices=False, scaling=False)
        return {name: value for name, value in decoded.items() if not message.get_signal_by_name(name).multiplexer_ids}


def _database(ref: str) -> Any:  # noqa: ANN401
    return reference_database() if ref.startswith("reference:") else opendbc_database(ref)


def _expected(
    profile: VehicleProfile,
    message_name: str,
    cantools_message: Any,  # noqa: ANN401
    raw: dict[str, int],
) -> dict[Quantity, float | None]:
    """The oracle: cantools' raw values, scaled, range-checked and fixed up by the rules of the docs."""
    expected: dict[Quantity, list[float | None]] = {}
    for mapping in profile.quantities:
        for layout in mapping.signals:
            if layout.message != message_name or layout.name not in raw:
                continue
            signal = cantools_message.get_signal_by_name(layout.name)
            value = raw[layout.name]
            physical = value * signal.scale + signal.offset
            half_step = abs(signal.scale) / 2
            result: float | None
            below = signal.minimum is not None and physical < signal.minimum - half_step
            above = signal.maximum is not None and physical > signal.maximum + half_step
            if value in mapping.sna or below or above:
                result = None
            elif mapping.true_values is not None:
                result = 1.0 if value in mapping.true_values else 0.0
            else:
                result = (physical * mapping.scale + mapping.offset) * mapping.unit_factor
            expected.setdefault(mapping.quantity, []).append(result)
    averaged: dict[Quantity, float | None] = {}
    for quantity, results in expected.items():
        known = [r for r in results if r is not None]
        averaged[quantity] = sum(known) / len(known) if known else None
    return averaged


# --- real vehicles, frames encoded by cantools from opendbc's DBCs -------------------------------


def vehicle_frame(ref: str, message_name: str, values: dict[str, float], *, time_s: float = 0.0) -> can.Message:
    """A frame of a real vehicle's message, every signal not given encoded as raw 0."""
    message = opendbc_database(ref).get_message_by_name(message_name)
    given_values = {signal.name: values.get(signal.name, signal.offset) for signal in message.signals}
    data = message.encode(given_values, strict=False)
    return frame(message.frame_id, data, time_s=time_s, extended=message.is_extended_frame)


GM = "opendbc:generator/gm/gm_global_a_powertrain.dbc"


def test_the_volt_current_is_flipped_to_positive_while_discharging() -> None:
    """GM reports charging current as positive; the Volt profile's reading is negative then."""
    decoder = FrameDecoder(shipped("chevrolet_volt"))
    charging = decoder.decode(
        vehicle_frame(GM, "BECMBatteryVoltageCurrent", {"HVBatteryVoltage": 385.5, "HVBatteryCurrent": 120.0})
    )
    driving = decoder.decode(
        vehicle_frame(GM, "BECMBatteryVoltageCurrent", {"HVBatteryVoltage": 352.25, "HVBatteryCurrent": -210.15})
    )
    assert charging is not None
    assert driving is not None
    assert charging.values == {Quantity.PACK_VOLTAGE_V: 385.5, Quantity.PACK_CURRENT_A: pytest.approx(-120.0)}
    assert driving.values == {Quantity.PACK_VOLTAGE_V: 352.25, Quantity.PACK_CURRENT_A: pytest.approx(210.15)}


def test_the_volt_speed_is_the_mean_of_the_wheels_a_frame_carries() -> None:
    """Each wheel-speed frame gives the mean of its two wheels, in km/h, within 0.0311 km/h."""
    decoder = FrameDecoder(shipped("chevrolet_volt"))
    front = decoder.decode(vehicle_frame(GM, "EBCMWheelSpdFront", {"FLWheelSpd": 50.0, "FRWheelSpd": 52.0}))
    rear = decoder.decode(vehicle_frame(GM, "EBCMWheelSpdRear", {"RLWheelSpd": 49.0, "RRWheelSpd": 49.5}))
    assert front is not None
    assert rear is not None
    assert front.values[Quantity.SPEED_KPH] == pytest.approx(51.0, abs=0.0311)
    assert rear.values[Quantity.SPEED_KPH] == pytest.approx(49.25, abs=0.0311)
    # A wheel above the DBC's 255 km/h range is unknown; the other wheel still gives the speed.
    one_bad = decoder.decode(vehicle_frame(GM, "EBCMWheelSpdFront", {"FLWheelSpd": 1000.0, "FRWheelSpd": 40.0}))
    assert one_bad is not None
    assert one_bad.values[Quantity.SPEED_KPH] == pytest.approx(40.0, abs=0.0311)
    assert decoder.stats().out_of_range == 1


def test_the_volt_is_ready_in_run_power_mode_only() -> None:
    """SystemPowerMode Run is ready; Off and Accessory are not."""
    decoder = FrameDecoder(shipped("chevrolet_volt"))
    modes = {}
    for raw, name in ((0, "Off"), (1, "Accessory"), (2, "Run")):
        reading = decoder.decode(vehicle_frame(GM, "BCMGeneralPlatformStatus", {"SystemPowerMode": raw}))
        assert reading is not None
        modes[name] = reading.values[Quantity.READY]
    assert modes == {"Off": 0.0, "Accessory": 0.0, "Run": 1.0}


VW = "opendbc:vw_mqb.dbc"


def test_the_golf_gte_odometer_is_converted_from_km_to_m() -> None:
    """KBI_Kilometerstand counts whole km; the reading is in metres. Voltage keeps its +100 V offset."""
    decoder = FrameDecoder(shipped("vw_golf_gte"))
    odometer = decoder.decode(vehicle_frame(VW, "Kombi_02", {"KBI_Kilometerstand": 48_213}))
    voltage = decoder.decode(vehicle_frame(VW, "BMS_Hybrid_01", {"BMS_IstSpannung_HV": 345}))
    speed = decoder.decode(vehicle_frame(VW, "ESP_21", {"ESP_v_Signal": 87.65}))
    ready = decoder.decode(vehicle_frame(VW, "Motor_14", {"MO_HYB_Fahrbereitschaft": 1}))
    assert odometer is not None
    assert voltage is not None
    assert speed is not None
    assert ready is not None
    assert odometer.values == {Quantity.ODOMETER_M: 48_213_000.0}
    assert voltage.values == {Quantity.PACK_VOLTAGE_V: 345.0}
    assert speed.values[Quantity.SPEED_KPH] == pytest.approx(87.65, abs=0.005)
    assert ready.values == {Quantity.READY: 1.0}


TESLA = "opendbc:tesla_model3_party.dbc"


def test_the_model3_speed_applies_the_dbc_offset_and_its_sna() -> None:
    """DI_vehicleSpeed is raw × 0.08 - 40 km/h; raw 4095 is SNA in the DBC and decodes to None."""
    decoder = FrameDecoder(shipped("tesla_model3"))
    moving = decoder.decode(vehicle_frame(TESLA, "DI_speed", {"DI_vehicleSpeed": 100.0}))
    unknown = decoder.decode(vehicle_frame(TESLA, "DI_speed", {"DI_vehicleSpeed": 4095 * 0.08 - 40}))
    assert moving is not None
    assert unknown is not None
    assert moving.values == {Quantity.SPEED_KPH: pytest.approx(100.0, abs=0.04)}
    assert unknown.values == {Quantity.SPEED_KPH: None}
    assert decoder.stats().unavailable == 1


def test_the_model3_ready_state_is_read_on_both_multiplexer_pages() -> None:
    """The power state is in every VCFRONT_LVPowerState frame, whichever page the frame carries."""
    decoder = FrameDecoder(shipped("tesla_model3"))
    readings = [
        decoder.decode(
            vehicle_frame(
                TESLA, "VCFRONT_LVPowerState", {"VCFRONT_LVPowerStateIndex": page, "VCFRONT_vehiclePowerState": state}
            )
        )
        for page in (0, 1)
        for state in (3, 2)
    ]
    assert [r.values[Quantity.READY] if r else None for r in readings] == [1.0, 0.0, 1.0, 0.0]
