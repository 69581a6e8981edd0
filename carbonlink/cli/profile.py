"""``carbonlink profile``: check a vehicle profile against its DBC(s), list the shipped ones."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonlink.cli.errors import EXIT_OK, CliError
from carbonlink.text_table import aligned_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agent.profile import QuantityMapping, VehicleProfile

HELP = "check vehicle profiles (which DBC signals carry each quantity) and list the shipped ones"

CHECK_DESCRIPTION = """\
Load a vehicle profile and its DBC file(s), check every mapping, and print what the agent will
read: each quantity's message.signal, unit and fix-ups, the frame ids it filters the bus on, and
the quantities the vehicle does not report. Exit 0 when the profile is valid, 2 with a one-line
error naming the file, key and problem otherwise.

examples:
  carbonlink profile check reference_ev
  carbonlink profile check ./my_car.toml"""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser("profile", help=HELP, description=HELP)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        help="check a profile and print the signals and frame ids it reads",
        description=CHECK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "profile",
        metavar="PROFILE",
        help="a profile file (.toml), or the name of a shipped profile (see 'carbonlink profile list')",
    )
    check.set_defaults(run=_check)

    listing = actions.add_parser(
        "list", help="list the shipped profiles", description="List the profiles shipped with the agent."
    )
    listing.set_defaults(run=_list)


def _check(args: argparse.Namespace) -> int:
    from agent.errors import ProfileError  # noqa: PLC0415 - lazy by design
    from agent.profile import load_profile  # noqa: PLC0415
    from agent.profiles import shipped_profile  # noqa: PLC0415

    path = Path(args.profile)
    try:
        if not path.is_file() and path.suffix != ".toml" and path.name == args.profile:
            path = shipped_profile(args.profile)
        profile = load_profile(path)
    except ProfileError as err:
        raise CliError(" ".join(str(err).split())) from err
    _print_profile(profile)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    del args
    from agent.errors import ProfileError  # noqa: PLC0415 - lazy by design
    from agent.profile import load_profile  # noqa: PLC0415
    from agent.profiles import shipped_profiles  # noqa: PLC0415

    rows = []
    for name, path in shipped_profiles().items():
        try:
            profile = load_profile(path)
        except ProfileError as err:
            rows.append((name, "-", f"INVALID: {' '.join(str(err).split())}"))
            continue
        mapped = len(profile.quantities)
        rows.append((name, f"{mapped}/{mapped + len(profile.missing)}", profile.name))
    _print_table(("profile", "quantities", "vehicle"), rows)
    return EXIT_OK


def _print_profile(profile: "VehicleProfile") -> None:
    print(f"profile   {profile.id}: {profile.name}")
    print(f"file      {profile.source}")
    print(f"dbc       {', '.join(profile.dbc)}")
    checksum = profile.checksum
    if checksum is None:
        print("checksum  none")
    else:
        print(
            f"checksum  {checksum.algorithm} in byte {checksum.byte} of messages with *{checksum.signal_suffix}; "
            f"rolling counters *{checksum.counter_suffix}"
        )
    print()
    rows = []
    for mapping in profile.quantities:
        first, *others = mapping.signals
        rows.append((mapping.quantity.value, first.path, _unit(mapping), _fixups(mapping)))
        rows.extend(("", f"{signal.path}", "", "") for signal in others)  # further wheels
    _print_table(("quantity", "message.signal", "unit", "fix-ups"), rows)
    print()
    frames = [
        f"0x{m.frame_id:X} {'ext' if m.is_extended else 'std'} ({m.name})"
        for m in sorted(profile.messages, key=lambda m: (m.frame_id, m.is_extended))
    ]
    print(f"frame ids ({len(frames)}): {', '.join(frames)}")
    missing = ", ".join(quantity.value for quantity in profile.missing)
    print(f"missing: {missing or 'none'}")


def _unit(mapping: "QuantityMapping") -> str:
    from agent.profile import OUR_UNITS  # noqa: PLC0415 - lazy by design

    if mapping.true_values is not None:
        return "state"
    if mapping.unit_factor == 1.0:
        return mapping.unit
    return f"{mapping.unit} → {OUR_UNITS[mapping.quantity]} (×{mapping.unit_factor:g})"


def _fixups(mapping: "QuantityMapping") -> str:
    parts = []
    if mapping.scale != 1.0:
        parts.append(f"scale {mapping.scale:g}")
    if mapping.offset != 0.0:
        parts.append(f"offset {mapping.offset:+g}")
    if mapping.true_values is not None:
        names = dict(mapping.signals[0].choices)
        shown = [f"{raw} ({names[raw]})" if raw in names else str(raw) for raw in sorted(mapping.true_values)]
        parts.append(f"true when {', '.join(shown)}")
    if len(mapping.signals) > 1:
        parts.append(f"mean of {len(mapping.signals)} wheel speeds")
    if mapping.sna:
        origin = "DBC" if mapping.sna_from_dbc else "profile"
        parts.append(f"SNA raw {', '.join(str(raw) for raw in sorted(mapping.sna))} ({origin})")
    return "; ".join(parts) or "-"


def _print_table(header: tuple[str, ...], rows: "Sequence[tuple[str, ...]]") -> None:
    for line in aligned_rows(header, rows):
        print(line)
