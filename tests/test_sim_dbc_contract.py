"""The contract between the reference DBC, what the simulator encodes into it and what the agent reads.

Every signal of the DBC has a bus-state source (or is a counter, checksum or multiplexer), and
every message the simulator sends round-trips: encoded by the simulator, decoded independently
by cantools, each signal equals the bus state within the signal's resolution. The agent's shipped
reference profile reads every canonical quantity back from the simulator's frames.
"""

import math
from collections.abc import Callable

import pytest
from hypothesis import given

from agent.decoding import FrameDecoder
from agent.profile import load_profile
from agent.profiles import shipped_profile
from agent.readings import Quantity
from carbonlink.checksums import crc8_j1850
from simulator.bus_state import BusState, ChargerState, ChargerType, ReadyState
from simulator.frames import FrameScheduler, MessageEncoder
from simulator.reference_signals import CHARGE_MESSAGES, DRIVE_MESSAGES, REFERENCE_SIGNALS

from bus_states import bus_state, bus_states, decode, reference_database

SENT = sorted(set(DRIVE_MESSAGES + CHARGE_MESSAGES))


def test_every_dbc_signal_has_a_source_and_every_source_a_signal() -> None:
    """No signal is left unfilled, and no source names a signal the DBC lacks."""
    database = reference_database()
    in_dbc = {
        signal.name
        for message in database.messages
        for signal in message.signals
        if not (signal.is_multiplexer or signal.name.endswith(("_Counter", "_Checksum")))
    }
    assert in_dbc == set(REFERENCE_SIGNALS)
    assert {message.name for message in database.messages} == set(SENT)


def test_reference_dbc_has_the_shapes_of_real_buses() -> None:
    """Both byte orders, a multiplexed message, extended ids, enums and cycle times are present."""
    database = reference_database()
    orders = {signal.byte_order for message in database.messages for signal in message.signals}
    assert orders == {"little_endian", "big_endian"}
    assert any(message.is_multiplexed() for message in database.messages)
    assert any(message.is_extended_frame for message in database.messages)
    assert any(not message.is_extended_frame for message in database.messages)
    assert all(message.cycle_time for message in database.messages)
    assert database.get_message_by_name("VCU_Drive").get_signal_by_name("VCU_ReadyState").choices


def _expected(state: BusState, signal_name: str) -> float:
    return float(REFERENCE_SIGNALS[signal_name](state))


@pytest.mark.parametrize("message_name", SENT)
@given(state=bus_states)
def test_every_sent_message_round_trips(message_name: str, state: BusState) -> None:
    """What the simulator encodes, cantools decodes back to the bus state within one scale step."""
    database = reference_database()
    message = database.get_message_by_name(message_name)
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    for _turn in range(2):  # both multiplexer values of a multiplexed message
        data = encoder.encode(state, 0.0)
        decoded = decode(message, data)
        for name, value in decoded.items():
            signal = message.get_signal_by_name(name)
            if signal.is_multiplexer or name.endswith(("_Counter", "_Checksum")):
                continue
            assert math.isclose(float(value), _expected(state, name), abs_tol=abs(float(signal.scale)) / 2 + 1e-9), name


def test_counters_roll_and_checksums_cover_bytes_0_to_6() -> None:
    """Each frame's counter is the previous plus 1 mod 16, and byte 7 is the CRC of bytes 0..6."""
    message = reference_database().get_message_by_name("BMS_Pack")
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    counters = []
    for _ in range(20):
        data = encoder.encode(bus_state(), 0.0)
        assert data[7] == crc8_j1850(data[:7])
        counters.append(decode(message, data)["BMS_Counter"])
    assert counters == [i % 16 for i in range(20)]


def test_multiplexed_energy_message_alternates_its_counters() -> None:
    """BMS_Energy sends the discharged counter, then the charged one, in turn."""
    message = reference_database().get_message_by_name("BMS_Energy")
    encoder = MessageEncoder(message, REFERENCE_SIGNALS)
    state = bus_state(energy_discharged_wh=1234.0, energy_charged_wh=5678.0)
    first, second = (decode(message, encoder.encode(state, 0.0)) for _ in range(2))
    assert first == {"BMS_EnergyMux": 0, "BMS_EnergyDischarged": 1234}
    assert second == {"BMS_EnergyMux": 1, "BMS_EnergyCharged": 5678}


@given(state=bus_states)
def test_the_reference_profile_decodes_every_quantity_the_simulator_encodes(state: BusState) -> None:
    """Simulator bus state → frames → the shipped reference profile's readings: equal within resolution.

    Every quantity of ``Quantity`` is read (the reference profile misses none), numbers within half a
    step of their signal's scale, states exactly, and no frame is refused or value left unknown.
    """
    profile = load_profile(shipped_profile("reference_ev"))
    scheduler = FrameScheduler(reference_database(), REFERENCE_SIGNALS, SENT)
    scheduler.activate(SENT, 0.0)
    decoder = FrameDecoder(profile)
    values: dict[Quantity, float | None] = {}
    for reading in decoder.readings(scheduler.frames_until(2.1, state)):  # both BMS_Energy pages
        values.update(reading.values)
    assert set(values) == set(Quantity)
    for mapping in profile.quantities:
        expected = _EXPECTED_QUANTITIES[mapping.quantity](state)
        (signal,) = mapping.signals
        step = abs(signal.scale * mapping.scale * mapping.unit_factor)
        assert values[mapping.quantity] == pytest.approx(expected, abs=step / 2 + 1e-9), mapping.quantity
    stats = decoder.stats()
    assert (stats.bad_checksum, stats.truncated, stats.counter_jumps, stats.unavailable, stats.out_of_range) == (
        0,
        0,
        0,
        0,
        0,
    )


_EXPECTED_QUANTITIES: dict[Quantity, Callable[[BusState], float]] = {
    Quantity.PACK_VOLTAGE_V: lambda s: s.pack_voltage_v,
    Quantity.PACK_CURRENT_A: lambda s: s.pack_current_a,
    Quantity.SOC_PCT: lambda s: s.soc_pct,
    Quantity.SPEED_KPH: lambda s: s.speed_kph,
    Quantity.ODOMETER_M: lambda s: s.odometer_m,
    Quantity.READY: lambda s: float(s.ready is ReadyState.READY),
    Quantity.CHARGING: lambda s: float(s.charger_state is ChargerState.CHARGING),
    Quantity.CHARGER_DC: lambda s: float(s.charger_type is ChargerType.DC),
    Quantity.GRID_POWER_W: lambda s: s.grid_power_w,
    Quantity.ENERGY_DISCHARGED_WH: lambda s: s.energy_discharged_wh,
    Quantity.ENERGY_CHARGED_WH: lambda s: s.energy_charged_wh,
}
"""What each quantity is in the simulator's bus state (the truth the frames were encoded from)."""
