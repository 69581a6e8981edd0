"""``carbonlink demo``: the whole chain in one command (simulator → agents → MQTT → gateway → credits)."""

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "run a fleet of simulated EVs through agents, an MQTT broker and the gateway, and show their credits"

DESCRIPTION = """\
Start an embedded MQTT broker on a free loopback port (for the demo only: production uses Mosquitto
or a clustered MQTT 5 broker), a gateway with an SQLite store, and N simulated vehicles of
different classes, each with its own device key and its own agent fed over a python-can virtual
bus, driving and charging through an accelerated day. Shows progress, then a table per vehicle:
trips, charges, km, kWh, records accepted and rejected, kg CO2e credited.

exit status: 0 when every trip of the simulator's ground truth was credited exactly once, 1 when
not, 2 for bad arguments.

examples:
  carbonlink demo
  carbonlink demo --vehicles 3 --days 2 --faults
  carbonlink demo --broker mqtt://127.0.0.1:1883 --keep-running"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from err
    if not 1 <= value <= 50:  # noqa: PLR2004 - one machine's worth of simulated vehicles
        raise argparse.ArgumentTypeError(f"must be from 1 to 50, not {value}")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or more, not {value}")
    return value


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "demo", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vehicles", type=_positive, default=5, help="how many vehicles (default 5)")
    parser.add_argument("--days", type=_positive, default=1, help="simulated days per vehicle (default 1)")
    parser.add_argument(
        "--speed", type=_speed, default=0.0, help="simulated seconds per second on the buses (default 0: flat out)"
    )
    parser.add_argument("--faults", action="store_true", help="faulty buses, and one tampered and one replayed record")
    parser.add_argument(
        "--broker", metavar="URL", help="use this MQTT broker (mqtt://HOST:PORT) instead of the embedded one"
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="keep the gateway and its dashboard up until Ctrl-C"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        metavar="DIR",
        help="where each run's data goes (default demo-data)",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.cli.fleet_demo import DemoOptions, run_demo  # noqa: PLC0415 - lazy by design

    return run_demo(
        DemoOptions(
            vehicles=args.vehicles,
            days=args.days,
            speed=args.speed,
            faults=args.faults,
            broker=args.broker,
            keep_running=args.keep_running,
            data_dir=args.data_dir,
            live=sys.stdout.isatty(),
        )
    )
