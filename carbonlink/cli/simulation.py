"""Running ``carbonlink sim drive``: options from arguments, a summary table out."""

import argparse
from datetime import UTC, datetime

from carbonlink.cli.errors import EXIT_OK, CliError


def _start_at(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise CliError(f"--start-at {text!r} is not an ISO 8601 time such as 2026-11-24T00:00:00Z") from err
    # A time without a zone is taken as UTC, the zone of every time carbonlink writes.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run_drive_command(args: argparse.Namespace, default_start_at: datetime) -> int:
    from simulator.app import DriveOptions, run_drive  # noqa: PLC0415 - the simulator loads only when it runs
    from simulator.day import InitialState  # noqa: PLC0415
    from simulator.errors import SimulatorError  # noqa: PLC0415
    from simulator.faults import parse_faults  # noqa: PLC0415

    try:
        options = DriveOptions(
            preset_name=args.preset,
            cycles=tuple(spec.strip() for spec in args.cycles.split(",") if spec.strip()),
            charge=None if args.charge == "none" else args.charge,
            seed=args.seed,
            start_at=_start_at(args.start_at, default_start_at),
            dbc_path=args.dbc,
            output=args.out,
            interface=args.interface,
            channel=args.channel,
            bitrate=args.bitrate,
            fd=args.fd,
            speed=args.speed,
            truth_path=args.truth,
            faults=parse_faults(args.faults, args.seed),
            initial=InitialState(soc_pct=args.soc),
        )
        report = run_drive(options)
    except SimulatorError as err:
        raise CliError(str(err)) from err
    print(f"{report.frames:,} frames to {report.target} in {report.wall_s:.1f} s")
    print(
        f"{'type':<7} {'start (UTC)':<20} {'min':>6} {'km':>7} {'out kWh':>8} {'regen':>7} {'in kWh':>7} "
        f"{'grid':>7} {'SOC %':>11}"
    )
    for entry in report.truth:
        minutes = (entry.end_at - entry.start_at).total_seconds() / 60
        print(
            f"{entry.type:<7} {entry.start_at:%Y-%m-%d %H:%M:%S} {minutes:>6.1f} {entry.distance_m / 1000:>7.2f} "
            f"{entry.energy_out_wh / 1000:>8.3f} {entry.energy_regen_wh / 1000:>7.3f} "
            f"{entry.energy_in_wh / 1000:>7.3f} {entry.grid_energy_wh / 1000:>7.3f} "
            f"{entry.soc_start_pct:>5.1f}→{entry.soc_end_pct:<5.1f}"
        )
    if report.truth_path is not None:
        print(f"ground truth: {report.truth_path}")
    if report.faults_path is not None:
        injected = ", ".join(f"{kind} {count}" for kind, count in sorted(report.faults.items())) or "none"
        print(f"faults injected: {injected}; logged to {report.faults_path}")
    return EXIT_OK
