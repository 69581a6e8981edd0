"""``carbonlink replay``: recorded CAN logs through the agent's own pipeline, fast."""

import argparse
from pathlib import Path
from typing import Any

HELP = "run recorded CAN logs through the agent's pipeline and show the trips and charges it would seal"

DESCRIPTION = """\
Run recorded CAN logs of one vehicle through the agent's own pipeline — the same profile
handling, decoding, segmentation and integration as 'carbonlink agent run' — and print the trips
and charge sessions it would seal. Several logs of the vehicle are read in time order. Formats:
candump .log, .asc, .blf, .trc, python-can .csv, .mf4 (with asammdf) and SavvyCAN/GVRET .csv,
gzip-compressed too; the format is read from the content. Only the frames the profile needs are
decoded, so a full bus replays fast.

  carbonlink replay diff A.json B.json   compares two runs (--json outputs) trip by trip.

exit status: 0 done; 1 the profile found nothing to read in the logs, or diff found differences;
2 bad arguments or unreadable input; 130 interrupted (the outputs hold what was replayed so far).

examples:
  carbonlink replay day.log
  carbonlink replay morning.asc.gz evening.asc --profile tesla_model3 --json day.json --report day.html
  carbonlink replay bus.blf --channel 1 --sign car.key --signed-dir signed/
  carbonlink replay day.log --config agent.toml --json tuned.json   (the vehicle's own settings)
  carbonlink replay diff old.json new.json"""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "replay", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="CAN log files of one vehicle")
    parser.add_argument(
        "--profile",
        help="vehicle profile: a shipped id (carbonlink profile list) or a .toml file "
        "(default: the --config's, else reference_ev)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="agent.toml",
        help="take the vehicle's agent settings from its config: profile, VIN, battery capacity, "
        "[segmentation] thresholds (its source, outbox and MQTT are not used)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        metavar="NAME",
        help="only frames of this channel, as the log names it (can0, 1, ...); repeat for several",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the records and the decode report as JSON")
    parser.add_argument("--report", type=Path, metavar="OUT.html", help="write an HTML report with plots")
    parser.add_argument("--sign", type=Path, metavar="KEY", help="sign the records with this device key file")
    parser.add_argument(
        "--signed-dir",
        type=Path,
        default=Path("signed-records"),
        metavar="DIR",
        help="where --sign writes the signed records, one .cose file each (default signed-records)",
    )
    publish = parser.add_argument_group("publishing (as the agent would: through an outbox, until acknowledged)")
    publish.add_argument(
        "--publish",
        metavar="BROKER",
        help="send the signed records to a gateway through mqtt://HOST:PORT (needs --sign)",
    )
    publish.add_argument(
        "--outbox",
        type=Path,
        default=Path("replay-outbox.json"),
        help="the outbox --publish delivers from; another replay into it continues its chain "
        "(default replay-outbox.json)",
    )
    publish.add_argument(
        "--publish-timeout", type=float, default=300.0, metavar="S", help="longest wait for the acks (default 300)"
    )
    parser.add_argument("--tolerance", type=float, default=0.0, help="diff: %% change still counted as equal")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.logs and str(args.logs[0]) == "diff":
        from carbonlink.cli.replay_diff import run_diff  # noqa: PLC0415 - lazy by design

        return run_diff(args.logs[1:], args.tolerance)
    from carbonlink.cli.replaying import run_replay  # noqa: PLC0415 - lazy by design

    return run_replay(args)
