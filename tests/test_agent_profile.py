"""Vehicle profiles: the TOML schema, its checks against the DBC, and the shipped profiles."""

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ProfileError
from agent.profile import (
    load_profile,
    normalise_unit,
    parse_dbc,
    profile_from_text,
    resolve_dbc,
)
from agent.profiles import shipped_profile, shipped_profiles
from agent.readings import Quantity

REFERENCE_DBC = Path(__file__).resolve().parent.parent / "dbc" / "carbonlink_ev.dbc"

HEAD = 'id = "car"\nname = "A car"\ndbc = ["bus.dbc"]\n'
VOLTAGE = '[quantities.pack_voltage_v]\nmessage = "BMS_Pack"\nsignal = "BMS_PackVoltage"\nunit = "V"\n'


@cache
def reference_database() -> Any:  # noqa: ANN401 - cantools is untyped
    return parse_dbc(REFERENCE_DBC.read_text(), str(REFERENCE_DBC))


def from_text(text: str) -> Any:  # noqa: ANN401
    return profile_from_text(text, "car.toml", {"bus.dbc": reference_database()})


def test_a_minimal_profile_maps_one_quantity_and_reports_the_rest_missing() -> None:
    """One mapped quantity: its message is the only frame id, every other quantity is missing."""
    profile = from_text(HEAD + VOLTAGE)
    assert profile.id == "car"
    assert profile.frame_ids == {(0x132, False)}
    assert profile.missing == tuple(q for q in Quantity if q is not Quantity.PACK_VOLTAGE_V)
    mapping = profile.mapping(Quantity.PACK_VOLTAGE_V)
    assert mapping is not None
    assert [signal.path for signal in mapping.signals] == ["BMS_Pack.BMS_PackVoltage"]
    assert profile.mapping(Quantity.SOC_PCT) is None


def _error(text: str) -> str:
    with pytest.raises(ProfileError) as caught:
        from_text(text)
    return str(caught.value)


ERRORS = [
    pytest.param("id = [", "car.toml: not valid TOML: ", id="toml"),
    pytest.param('name = "x"\ndbc = ["bus.dbc"]\n', "car.toml: id: missing required key", id="missing-id"),
    pytest.param(
        'id = "Big Car"\nname = "x"\ndbc = ["bus.dbc"]\n',
        "car.toml: id: 'Big Car' must be lower-case letters, digits, '_' and '-'",
        id="bad-id",
    ),
    pytest.param('id = "car"\nname = 3\ndbc = ["bus.dbc"]\n', "car.toml: name: must be a str, got 3", id="bad-name"),
    pytest.param(
        'id = "car"\nname = "x"\ndbc = []\n', "car.toml: dbc: must be a non-empty list of DBC paths", id="no-dbc"
    ),
    pytest.param(
        HEAD + 'colour = "red"\n',
        "car.toml: colour: unknown key; allowed: checksum, dbc, id, name, quantities",
        id="unknown-top-key",
    ),
    pytest.param(
        HEAD + '[quantities.pack_temp_c]\nmessage = "BMS_Status"\n',
        "car.toml: quantities.pack_temp_c: unknown quantity; known: charger_dc, charging, energy_charged_wh, ",
        id="unknown-quantity",
    ),
    pytest.param(
        HEAD + VOLTAGE + "scaling = 2\n",
        "car.toml: quantities.pack_voltage_v.scaling: unknown key; allowed: message, offset, scale, signal, sna, "
        "unit, wheels",
        id="unknown-quantity-key",
    ),
    pytest.param(
        HEAD + '[quantities.pack_voltage_v]\nsignal = "BMS_PackVoltage"\nunit = "V"\n',
        "car.toml: quantities.pack_voltage_v.message: missing required key",
        id="missing-message",
    ),
    pytest.param(
        HEAD + '[quantities.pack_voltage_v]\nmessage = "BMS_Pack"\nsignal = "BMS_PackVoltage"\n',
        "car.toml: quantities.pack_voltage_v.unit: missing required key",
        id="missing-unit",
    ),
    pytest.param(
        HEAD + VOLTAGE.replace('"BMS_Pack"', '"BMS_Pak"'),
        "car.toml: quantities.pack_voltage_v.message: no message 'BMS_Pak' in the DBC(s)",
        id="unknown-message",
    ),
    pytest.param(
        HEAD + VOLTAGE.replace("BMS_PackVoltage", "BMS_Voltage"),
        "car.toml: quantities.pack_voltage_v.signal: message BMS_Pack has no signal 'BMS_Voltage'",
        id="unknown-signal",
    ),
    pytest.param(
        HEAD + VOLTAGE.replace('unit = "V"', 'unit = "A"'),
        "car.toml: quantities.pack_voltage_v.unit: 'A' is not a unit we convert to V for pack_voltage_v",
        id="unit-of-another-quantity",
    ),
    pytest.param(
        HEAD + '[quantities.speed_kph]\nmessage = "VCU_Drive"\nsignal = "VCU_VehicleSpeed"\nunit = "mph"\n',
        "car.toml: quantities.speed_kph.unit: 'mph' does not match the DBC unit 'km/h' of VCU_Drive.VCU_VehicleSpeed",
        id="unit-mismatch",
    ),
    pytest.param(
        HEAD + '[quantities.soc_pct]\nmessage = "BMS_Status"\nsignal = "BMS_PackTempMax"\nunit = "%"\n',
        "car.toml: quantities.soc_pct.unit: '%' does not match the DBC unit 'degC' of BMS_Status.BMS_PackTempMax",
        id="wrong-signal-caught-by-unit",
    ),
    pytest.param(
        HEAD + VOLTAGE + '[quantities.pack_current_a]\nmessage = "BMS_Pack"\nsignal = "BMS_PackVoltage"\nunit = "A"\n',
        "car.toml: quantities.pack_current_a.unit: 'A' does not match the DBC unit 'V' of BMS_Pack.BMS_PackVoltage",
        id="overlap-with-wrong-unit",
    ),
    pytest.param(
        HEAD + '[quantities.ready]\nmessage = "VCU_Drive"\nsignal = "VCU_ReadyState"\n',
        "car.toml: quantities.ready.true_values: missing required key (raw values or value names meaning true)",
        id="missing-true-values",
    ),
    pytest.param(
        HEAD + '[quantities.ready]\nmessage = "VCU_Drive"\nsignal = "VCU_ReadyState"\ntrue_values = ["On"]\n',
        "car.toml: quantities.ready.true_values: VCU_Drive.VCU_ReadyState has no value named 'On'; "
        "its names: Accessory, Fault, Off, Ready",
        id="unknown-value-name",
    ),
    pytest.param(
        HEAD + '[quantities.ready]\nmessage = "VCU_Drive"\nsignal = "VCU_ReadyState"\ntrue_values = [2]\nunit = "V"\n',
        "car.toml: quantities.ready.unit: unknown key; allowed: message, signal, sna, true_values",
        id="unit-on-a-state",
    ),
    pytest.param(
        HEAD + VOLTAGE + "sna = 65535\n",
        "car.toml: quantities.pack_voltage_v.sna: must be a list of raw integer values",
        id="bad-sna",
    ),
    pytest.param(
        HEAD + VOLTAGE + "scale = 0\n", "car.toml: quantities.pack_voltage_v.scale: must not be 0", id="zero-scale"
    ),
    pytest.param(
        HEAD + VOLTAGE + 'offset = "1"\n',
        "car.toml: quantities.pack_voltage_v.offset: must be a finite number, got '1'",
        id="bad-offset",
    ),
    pytest.param(
        HEAD + '[quantities.soc_pct]\nunit = "%"\nwheels = [{ message = "BMS_Status", signal = "BMS_SOC" }]\n',
        "car.toml: quantities.soc_pct.wheels: only speed_kph can be read from wheels",
        id="wheels-not-speed",
    ),
    pytest.param(
        HEAD + '[quantities.speed_kph]\nmessage = "VCU_Drive"\nsignal = "VCU_VehicleSpeed"\nunit = "km/h"\n'
        'wheels = [{ message = "VCU_Drive", signal = "VCU_VehicleSpeed" }]\n',
        "car.toml: quantities.speed_kph.wheels: give either wheels or message and signal, not both",
        id="wheels-and-signal",
    ),
    pytest.param(
        HEAD + '[quantities.speed_kph]\nunit = "km/h"\nwheels = [{ message = "VCU_Drive" }]\n',
        "car.toml: quantities.speed_kph.wheels[0].signal: missing required key",
        id="wheel-without-signal",
    ),
    pytest.param(
        HEAD + '[checksum]\nalgorithm = "crc16"\n',
        "car.toml: checksum.algorithm: 'crc16' unknown; known: crc8_j1850",
        id="unknown-checksum",
    ),
    pytest.param(
        HEAD
        + '[checksum]\nalgorithm = "crc8_j1850"\nbyte = 6\n'
        + '[quantities.speed_kph]\nmessage = "VCU_Drive"\nsignal = "VCU_VehicleSpeed"\nunit = "km/h"\n',
        "car.toml: message VCU_Drive: VCU_Checksum must fill byte 6 (checksum.byte)",
        id="checksum-elsewhere",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_each_mistake_is_refused_with_a_message_naming_file_key_and_problem(text: str, message: str) -> None:
    """Every malformed or mismatched profile raises a ProfileError whose message says where and what."""
    assert _error(text).startswith(message)


def test_two_quantities_may_not_read_one_signal() -> None:
    """Overlap: a signal already read as one quantity cannot be read as another."""
    text = HEAD + VOLTAGE + '[quantities.soc_pct]\nmessage = "BMS_Pack"\nsignal = "BMS_PackVoltage"\nunit = "%"\n'
    # '%' against the DBC's 'V' would fail first; an empty-unit DBC signal isolates the overlap rule.
    database = parse_dbc(REFERENCE_DBC.read_text().replace('[0|1000] "V"', '[0|1000] ""'), "bus.dbc")
    with pytest.raises(ProfileError) as caught:
        profile_from_text(text, "car.toml", {"bus.dbc": database})
    assert (
        str(caught.value) == "car.toml: quantities.soc_pct: BMS_Pack.BMS_PackVoltage is already read as pack_voltage_v"
    )


def test_states_may_share_one_enumeration() -> None:
    """A BMS mode can say both 'charging' and 'DC': two states on one signal are allowed."""
    text = (
        HEAD
        + '[quantities.charging]\nmessage = "OBC_Charger"\nsignal = "OBC_State"\ntrue_values = ["Charging"]\n'
        + '[quantities.charger_dc]\nmessage = "OBC_Charger"\nsignal = "OBC_State"\ntrue_values = [3]\n'
    )
    profile = from_text(text)
    assert {m.quantity: m.true_values for m in profile.quantities} == {
        Quantity.CHARGING: {2},
        Quantity.CHARGER_DC: {3},
    }


def test_sna_defaults_to_what_the_dbc_marks_and_the_profile_can_override_it() -> None:
    """Value names and comments mark SNA; without a mark there is none; an explicit list wins."""
    text = (
        HEAD
        + '[quantities.pack_current_a]\nmessage = "BMS_Pack"\nsignal = "BMS_PackCurrent"\nunit = "A"\n'
        + '[quantities.soc_pct]\nmessage = "BMS_Status"\nsignal = "BMS_SOC"\nunit = "%"\n'
        + '[quantities.grid_power_w]\nmessage = "OBC_Charger"\nsignal = "OBC_GridPower"\nunit = "W"\n'
        + VOLTAGE
        + "sna = [0, 65535]\n"
    )
    profile = from_text(text)
    sna = {m.quantity: (m.sna, m.sna_from_dbc) for m in profile.quantities}
    assert sna[Quantity.PACK_CURRENT_A] == ({-32768}, True)  # comment, signed: most negative raw
    assert sna[Quantity.SOC_PCT] == ({1023}, True)  # value name "SNA"
    assert sna[Quantity.GRID_POWER_W] == (frozenset(), True)  # nothing marked
    assert sna[Quantity.PACK_VOLTAGE_V] == ({0, 65535}, False)


def test_units_convert_to_ours_in_every_spelling_we_know() -> None:
    """Spellings of DBCs and brands map to our unit and the factor to it; unknown ones to None."""
    assert normalise_unit("km/h") == ("kph", 1.0)
    assert normalise_unit("Unit_KiloMeterPerHour") == ("kph", 1.0)
    assert normalise_unit("mph") == ("kph", 1.609344)
    assert normalise_unit("Unit_KiloMeter") == ("m", 1000.0)
    assert normalise_unit("kWh") == ("Wh", 1000.0)
    assert normalise_unit(" kW ") == ("W", 1000.0)
    assert normalise_unit("Unit_Volt") == ("V", 1.0)
    assert normalise_unit("degC") is None
    assert normalise_unit("speed") is None


def test_a_mph_signal_is_converted_to_kph() -> None:
    """GM's ECMVehicleSpeed.VehicleSpeed is in mph: a profile saying so gets the factor to km/h."""
    text = (
        'id = "gm"\nname = "GM"\ndbc = ["opendbc:generator/gm/gm_global_a_powertrain.dbc"]\n'
        '[quantities.speed_kph]\nmessage = "ECMVehicleSpeed"\nsignal = "VehicleSpeed"\nunit = "mph"\n'
    )
    ref = "opendbc:generator/gm/gm_global_a_powertrain.dbc"
    database = parse_dbc(resolve_dbc(ref, Path()).read_text(), ref)
    mapping = profile_from_text(text, "gm.toml", {ref: database}).mapping(Quantity.SPEED_KPH)
    assert mapping is not None
    assert mapping.unit_factor == 1.609344


def test_a_dbc_signal_without_unit_takes_the_profiles() -> None:
    """GM's SystemPowerMode and other unit-less signals: the profile's unit stands unchecked."""
    database = parse_dbc(REFERENCE_DBC.read_text().replace('[0|1000] "V"', '[0|1000] ""'), "bus.dbc")
    profile = profile_from_text(HEAD + VOLTAGE.replace('"V"', '"volt"'), "car.toml", {"bus.dbc": database})
    assert profile.quantities[0].unit == "volt"


def test_profile_files_find_dbcs_beside_them_and_across_several_files(tmp_path: Path) -> None:
    """DBC paths are relative to the profile; a second DBC adds its messages to the first's."""
    shutil.copy(REFERENCE_DBC, tmp_path / "bus.dbc")
    (tmp_path / "extra.dbc").write_text(
        'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: X\n\n'
        'BO_ 1904 EXTRA_Soc: 2 X\n SG_ EXTRA_SocDisplayed : 0|16@1+ (0.01,0) [0|100] "%" X\n'
    )
    (tmp_path / "car.toml").write_text(
        'id = "car"\nname = "A car"\ndbc = ["bus.dbc", "extra.dbc"]\n'
        + VOLTAGE
        + '[quantities.soc_pct]\nmessage = "EXTRA_Soc"\nsignal = "EXTRA_SocDisplayed"\nunit = "%"\n'
    )
    profile = load_profile(tmp_path / "car.toml")
    assert profile.frame_ids == {(0x132, False), (1904, False)}
    assert profile.source == str(tmp_path / "car.toml")


def test_a_message_in_two_dbcs_is_ambiguous(tmp_path: Path) -> None:
    """Two DBCs defining the same message name: which one is meant cannot be told."""
    shutil.copy(REFERENCE_DBC, tmp_path / "a.dbc")
    shutil.copy(REFERENCE_DBC, tmp_path / "b.dbc")
    (tmp_path / "car.toml").write_text('id = "car"\nname = "A car"\ndbc = ["a.dbc", "b.dbc"]\n' + VOLTAGE)
    with pytest.raises(ProfileError) as caught:
        load_profile(tmp_path / "car.toml")
    assert str(caught.value) == f"{tmp_path / 'car.toml'}: dbc: message VCU_Drive is in both a.dbc and b.dbc"


def test_a_dbc_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """A missing DBC and one that is not a DBC both fail naming the profile, the entry and the file."""
    profile = tmp_path / "car.toml"
    profile.write_text(HEAD + VOLTAGE)
    with pytest.raises(ProfileError) as caught:
        load_profile(profile)
    assert str(caught.value).startswith(f"{profile}: dbc[0] 'bus.dbc': cannot read {tmp_path / 'bus.dbc'}: ")
    (tmp_path / "bus.dbc").write_text("BO_ this is not a DBC\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(profile)
    assert str(caught.value).startswith(f"{profile}: dbc[0] 'bus.dbc': {tmp_path / 'bus.dbc'}: not a readable DBC: ")
    assert "\n" not in str(caught.value)


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    """Reading a profile that is not there names the file."""
    with pytest.raises(ProfileError, match=r"nope\.toml: cannot read: "):
        load_profile(tmp_path / "nope.toml")


def test_package_references_stay_inside_their_folders() -> None:
    """opendbc: and reference: paths cannot climb out of the folder they name."""
    with pytest.raises(ProfileError, match="must name a file inside opendbc's dbc folder"):
        resolve_dbc("opendbc:../../etc/passwd", Path())
    with pytest.raises(ProfileError, match="must name a file of carbonlink's dbc folder"):
        resolve_dbc("reference:../pyproject.toml", Path())
    with pytest.raises(ProfileError, match=r"reference:nope\.dbc: not found in "):
        resolve_dbc("reference:nope.dbc", Path())


def test_the_reference_dbc_resolves_in_a_checkout() -> None:
    """reference:carbonlink_ev.dbc is the repository's dbc/carbonlink_ev.dbc in a checkout."""
    assert resolve_dbc("reference:carbonlink_ev.dbc", Path("/elsewhere")) == REFERENCE_DBC


def test_stray_value_descriptions_are_dropped_and_real_ones_kept() -> None:
    """A VAL_ of a signal no message has no longer stops the DBC loading; the others still apply."""
    text = REFERENCE_DBC.read_text() + 'VAL_ 306 BMS_NoSuchSignal 0 "Zero" ;\n'
    database = parse_dbc(text, "bus.dbc")
    soc = database.get_message_by_name("BMS_Status").get_signal_by_name("BMS_SOC")
    assert dict(soc.choices) == {1023: "SNA"}


# --- the shipped profiles ----------------------------------------------------------------------

EXPECTED_SHIPPED = {
    "reference_ev": (set(Quantity), 6),
    "chevrolet_volt": (
        {Quantity.PACK_VOLTAGE_V, Quantity.PACK_CURRENT_A, Quantity.SPEED_KPH, Quantity.READY},
        4,
    ),
    "vw_golf_gte": ({Quantity.PACK_VOLTAGE_V, Quantity.SPEED_KPH, Quantity.ODOMETER_M, Quantity.READY}, 4),
    "tesla_model3": ({Quantity.SPEED_KPH, Quantity.READY}, 2),
}


def test_the_shipped_profiles_are_the_expected_ones() -> None:
    """The folder holds the reference profile and three real vehicles from opendbc."""
    assert set(shipped_profiles()) == set(EXPECTED_SHIPPED)


@pytest.mark.parametrize("name", sorted(EXPECTED_SHIPPED))
def test_every_shipped_profile_loads_and_maps_what_its_vehicle_offers(name: str) -> None:
    """Each shipped profile checks against its DBC; mapped and missing quantities add up to all."""
    profile = load_profile(shipped_profile(name))
    mapped, frames = EXPECTED_SHIPPED[name]
    assert profile.id == name
    assert {m.quantity for m in profile.quantities} == mapped
    assert set(profile.missing) == set(Quantity) - mapped
    assert len(profile.frame_ids) == frames


def test_the_reference_profile_filters_on_standard_and_extended_ids() -> None:
    """The reference bus's filter holds its five standard and two extended ids, minus the inverter's."""
    profile = load_profile(shipped_profile("reference_ev"))
    assert profile.frame_ids == {
        (0x101, False),
        (0x132, False),
        (0x232, False),
        (0x3D2, False),
        (0x18FF5021, True),
        (0x18FF1222, True),
    }


def test_the_gm_profile_flips_the_current_sign() -> None:
    """GM counts pack current positive while charging: the Volt profile multiplies it by -1."""
    mapping = load_profile(shipped_profile("chevrolet_volt")).mapping(Quantity.PACK_CURRENT_A)
    assert mapping is not None
    assert mapping.scale == -1.0


def test_an_unknown_shipped_name_lists_the_shipped_ones() -> None:
    """Asking for a profile that is not shipped says which ones are."""
    with pytest.raises(ProfileError, match="no shipped profile 'nope'; shipped: chevrolet_volt, reference_ev"):
        shipped_profile("nope")
