"""The New European Driving Cycle (NEDC): four ECE-15 urban cycles, then one extra-urban cycle (EUDC).

Source: UN ECE Regulation No. 83 (emissions of light-duty vehicles), Annex 4a, Appendix 1 — Table 1,
the elementary urban cycle (part one, run four times), and Table 2, the extra-urban cycle (part two) —
as published in OJ L 42, 15.2.2012. Regulation No. 101 (CO2, energy consumption and electric range)
drives the same cycle. Each row below is one operation of those tables: how long it lasts and the
speed it ends at; the speed runs straight between operations, as their constant accelerations say.
Gear changes are the manual-gearbox operations (2 s at constant speed). The breakpoints agree with
the JRC's CO2MPAS (``co2mpas/model/physical/cycle/NEDC.py``, manual gearbox).

The tables integrate to 1018.3 m per urban cycle and 6954.9 m for the EUDC, 11 028 m in all over
1180 s (33.6 km/h). The regulation's summary figures — 1.013 km per urban cycle, 11.007 km in all —
are 0.2 % shorter than its own table; the table is what a dynamometer drives, so it is what we keep.
"""

from typing import Literal, NamedTuple

from simulator.cycles.trace import SpeedTrace

NAME = "nedc"

URBAN_REPEATS = 4
"""Part one is the elementary urban cycle driven four times without a break."""


class Operation(NamedTuple):
    """One row of a regulation table: what the vehicle does, for how long, at what speed it ends."""

    kind: Literal["idle", "acceleration", "steady", "deceleration", "gear change"]
    duration_s: float
    end_speed_kph: float


# Regulation No. 83, Annex 4a, Appendix 1, Table 1: the elementary urban cycle (195 s, max 50 km/h).
ECE15: tuple[Operation, ...] = (
    Operation("idle", 11, 0),
    Operation("acceleration", 4, 15),
    Operation("steady", 8, 15),
    Operation("deceleration", 2, 10),
    Operation("deceleration", 3, 0),  # clutch disengaged
    Operation("idle", 21, 0),
    Operation("acceleration", 5, 15),
    Operation("gear change", 2, 15),
    Operation("acceleration", 5, 32),
    Operation("steady", 24, 32),
    Operation("deceleration", 8, 10),
    Operation("deceleration", 3, 0),  # clutch disengaged
    Operation("idle", 21, 0),
    Operation("acceleration", 5, 15),
    Operation("gear change", 2, 15),
    Operation("acceleration", 9, 35),
    Operation("gear change", 2, 35),
    Operation("acceleration", 8, 50),
    Operation("steady", 12, 50),
    Operation("deceleration", 8, 35),
    Operation("steady", 13, 35),
    Operation("gear change", 2, 35),
    Operation("deceleration", 7, 10),
    Operation("deceleration", 3, 0),  # clutch disengaged
    Operation("idle", 7, 0),
)

# Regulation No. 83, Annex 4a, Appendix 1, Table 2: the extra-urban cycle (400 s, max 120 km/h).
EUDC: tuple[Operation, ...] = (
    Operation("idle", 20, 0),
    Operation("acceleration", 5, 15),
    Operation("gear change", 2, 15),
    Operation("acceleration", 9, 35),
    Operation("gear change", 2, 35),
    Operation("acceleration", 8, 50),
    Operation("gear change", 2, 50),
    Operation("acceleration", 13, 70),
    Operation("steady", 50, 70),
    Operation("deceleration", 8, 50),
    Operation("steady", 69, 50),
    Operation("acceleration", 13, 70),
    Operation("steady", 50, 70),
    Operation("acceleration", 35, 100),
    Operation("steady", 30, 100),
    Operation("acceleration", 20, 120),
    Operation("steady", 10, 120),
    Operation("deceleration", 16, 80),
    Operation("deceleration", 8, 50),
    Operation("deceleration", 10, 0),  # clutch disengaged
    Operation("idle", 20, 0),
)


def nedc() -> SpeedTrace:
    """The NEDC on a flat road: 1180 s, 120 km/h at most."""
    time_s = [0.0]
    speed_kph = [0.0]
    for operation in ECE15 * URBAN_REPEATS + EUDC:
        time_s.append(time_s[-1] + operation.duration_s)
        speed_kph.append(float(operation.end_speed_kph))
    return SpeedTrace(name=NAME, time_s=tuple(time_s), speed_kph=tuple(speed_kph))
