"""``carbonlink agent``: run the in-car agent, and show what a running (or stopped) agent is doing."""

import argparse
from pathlib import Path
from typing import Any

from carbonlink.cli.errors import EXIT_OK

HELP = "run the in-car agent (CAN → signed trip and charge records → MQTT) and show its status"

RUN_DESCRIPTION = """\
Read the CAN bus (or a recorded log) named in agent.toml, cut the traffic into trips and charge
sessions, sign each as a record with the device key, keep it in the outbox and publish it over
MQTT until the gateway acknowledges it. Logs go to stderr, one event per line. SIGTERM or Ctrl-C
stops cleanly: on a bus the open trip is sealed as it stands; on a log it is left for the next
run, which resumes after the last sealed record.

Settings come from the TOML file, overridden by CARBONLINK_AGENT__<SECTION>__<KEY> environment
variables (e.g. CARBONLINK_AGENT__MQTT__HOST=10.0.0.5). See docs/agent.md.

exit status: 0 stopped or log done, 1 the broker refused the device for good or a record was
lost (outbox full for too long), 2 bad config, key, profile, outbox or source.

examples:
  carbonlink agent run --config /etc/carbonlink/agent.toml
  CARBONLINK_AGENT__SOURCE__CHANNEL=vcan0 carbonlink agent run --config agent.toml --log-format json"""

STATUS_DESCRIPTION = """\
Show the agent's outbox counts, last acknowledgement, last error, the records the gateway
rejected (with reasons) and what the bus delivered, as the agent using this config last wrote
them (every few seconds while it runs, and when it stops).

examples:
  carbonlink agent status --config agent.toml
  carbonlink agent status --config agent.toml --json"""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser("agent", help=HELP, description=HELP)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the agent until stopped (or until a log is read and delivered)",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, type=Path, metavar="FILE", help="agent.toml")
    source = run.add_argument_group("source (replaces the config's [source])")
    source.add_argument("-i", "--interface", help="python-can interface, e.g. socketcan, pcan, virtual")
    source.add_argument("-c", "--channel", help="python-can channel, e.g. can0")
    source.add_argument("-b", "--bitrate", type=int, help="bus bitrate in bit/s")
    source.add_argument("--fd", action="store_true", help="open the bus as CAN FD")
    source.add_argument("--log", type=Path, metavar="FILE", help="read a CAN log instead of a bus")
    run.add_argument(
        "--log-format", choices=("logfmt", "json"), default="logfmt", help="log line format (default logfmt)"
    )
    run.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info", help="(default info)"
    )
    run.set_defaults(run=_run)
    status = actions.add_parser(
        "status",
        help="show outbox counts, last ack, last error and rejected records",
        description=STATUS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--config", required=True, type=Path, metavar="FILE", help="agent.toml")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(run=_status)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.cli.agent_run import run_agent  # noqa: PLC0415 - lazy by design

    return run_agent(args, log_format=args.log_format, log_level=args.log_level)


def _status(args: argparse.Namespace) -> int:
    from carbonlink.cli.agent_status import show_status  # noqa: PLC0415 - lazy by design

    show_status(args.config, as_json=args.json)
    return EXIT_OK
