"""``carbonlink sim``: simulated EV CAN traffic with known ground truth."""

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELP = "simulate an EV's CAN traffic over a day of driving and charging, with ground truth"

DRIVE_DESCRIPTION = """\
Simulate one vehicle's day — trips over drive cycles, then a charge session — and write its CAN
frames to a log file (format by suffix: .blf .asc .log .trc .csv .mf4) or send them on a
python-can bus. Beside a log file, FILE.truth.json holds the true distance, energy and SOC of
every trip and charge session, computed from the physics, not from the frames.

examples:
  carbonlink sim drive --out day.blf
  carbonlink sim drive --preset van --cycles nedc,highway,urban --charge dc --out van.asc
  carbonlink sim drive -i virtual -c sim0 --speed 60"""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser("sim", help=HELP, description=HELP)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    drive = actions.add_parser(
        "drive",
        help="simulate a day of driving and charging to a log file or a bus",
        description=DRIVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drive.add_argument("--preset", default="compact", help="vehicle class: compact, suv, van, bus (default compact)")
    drive.add_argument(
        "--cycles",
        default="mixed,urban,mixed",
        help="one drive cycle per trip, comma-separated: urban, suburban, highway, mixed, nedc, or a "
        "time_s,speed_kph CSV file (default mixed,urban,mixed)",
    )
    drive.add_argument(
        "--charge", default="ac", choices=("ac", "dc", "none"), help="charge session after the last trip (default ac)"
    )
    drive.add_argument("--seed", type=int, default=1, help="seed of the synthetic cycles (default 1)")
    drive.add_argument(
        "--start-at", help="UTC start of the simulated day, e.g. 2026-11-24T00:00:00Z (default: today, 00:00 UTC)"
    )
    drive.add_argument(
        "--soc", type=float, default=80.0, help="state of charge at the start of the day, %% (default 80)"
    )
    drive.add_argument(
        "--faults",
        default="",
        metavar="KEY=VALUE,...",
        help="inject faults: loss=%% (random frame loss), bursts=/h, bus-off=/h, corrupt=%% (bad checksums), "
        "jumps=/h (timestamp jumps), stuck=/h, out-of-range=%%, sna=%% (signal not available), flaps=N "
        "(ignition flaps per trip); seeded by --seed, logged to FILE.faults.json",
    )
    drive.add_argument("--dbc", type=Path, help="DBC to encode with (default: the reference dbc/carbonlink_ev.dbc)")
    target = drive.add_argument_group("output (a log file, or a bus)")
    target.add_argument("-o", "--out", type=Path, metavar="FILE", help="log file to write")
    target.add_argument("-i", "--interface", help="python-can interface, e.g. virtual, socketcan")
    target.add_argument("-c", "--channel", help="python-can channel, e.g. vcan0")
    target.add_argument("-b", "--bitrate", type=int, help="bus bitrate in bit/s")
    target.add_argument("--fd", action="store_true", help="open the bus as CAN FD")
    target.add_argument(
        "--speed", type=float, default=1.0, help="on a bus: simulated seconds per wall second (0 = as fast as possible)"
    )
    target.add_argument("--truth", type=Path, metavar="FILE", help="ground-truth JSON (default: FILE.truth.json)")
    drive.set_defaults(run=_drive)


def _drive(args: argparse.Namespace) -> int:
    from carbonlink.cli.simulation import run_drive_command  # noqa: PLC0415 - lazy by design

    return run_drive_command(args, default_start_at=datetime.now(UTC))
