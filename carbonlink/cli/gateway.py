"""``carbonlink gateway``: run the gateway, and manage its device registry."""

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELP = "run the gateway (MQTT → verify → store → ack → credit) and manage its devices, owners and ledger"

RUN_DESCRIPTION = """\
Subscribe to every vehicle's records over MQTT, verify each record (size, topic, envelope, key,
signature, schema, chain, plausibility), store what is accepted, and acknowledge each vehicle after
the commit. Serves the operator API, /metrics and the dashboard. Logs go to stderr, one event per
line. SIGTERM or Ctrl-C stops cleanly: no new messages are taken, queued ones are committed and
every ack is confirmed sent before the process ends.

Settings come from the TOML file, overridden by CARBONLINK_GATEWAY__<SECTION>__<KEY> environment
variables (e.g. CARBONLINK_GATEWAY__STORE__URL=postgresql://gw@db/carbonlink). See docs/gateway.md.

exit status: 0 stopped cleanly, 1 stopped with work left (agents will resend), 2 bad config or
the broker refused the gateway.

examples:
  carbonlink gateway run --config /etc/carbonlink/gateway.toml"""

DEVICES_DESCRIPTION = """\
The device registry: a device is known by its id and Ed25519 public key; records signed by any
other key are refused. Revoking a device refuses all its records from then on; rotating its key
retires the old key (still valid for records that ended before the rotation).

The store is the one named in gateway.toml (--config) or given as a URL (--store).

examples:
  carbonlink gateway devices --config gateway.toml add --device-id ev-0001 --public-key 8a88e3dd... \\
      --vin WVWZZZE1ZNP000001 --vehicle-class compact
  carbonlink gateway devices --config gateway.toml list
  carbonlink gateway devices --store sqlite:///gateway.db revoke --device-id ev-0001
  carbonlink gateway devices --config gateway.toml rotate-key --device-id ev-0001 --public-key 5c1f..."""


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser("gateway", help=HELP, description=HELP)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run the gateway until stopped",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, type=Path, metavar="FILE", help="gateway.toml")
    run.add_argument(
        "--log-format", choices=("logfmt", "json"), default="logfmt", help="log line format (default logfmt)"
    )
    run.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info", help="(default info)"
    )
    run.set_defaults(run=_run)
    devices = actions.add_parser(
        "devices",
        help="add, list, revoke devices and rotate their keys",
        description=DEVICES_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = devices.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, metavar="FILE", help="gateway.toml, for its [store] url")
    where.add_argument("--store", metavar="URL", help="sqlite:///FILE or postgresql://USER@HOST:PORT/DB")
    verbs = devices.add_subparsers(title="device actions", metavar="DEVICE_ACTION", required=True)
    add = verbs.add_parser("add", help="register a device with its public key")
    add.add_argument("--device-id", required=True)
    add.add_argument("--public-key", required=True, help="64 hex digits (or base64), as 'keys show' prints")
    add.add_argument("--vin", help="the vehicle's VIN (stored only as its hash)")
    add.add_argument("--vehicle-class", help="compact, suv, van, bus (default: unspecified)")
    add.set_defaults(run=_devices, verb="add")
    listing = verbs.add_parser("list", help="show every device, its keys and when it was last seen")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_devices, verb="list")
    revoke = verbs.add_parser("revoke", help="refuse every further record of a device (or of one key)")
    revoke.add_argument("--device-id", required=True)
    revoke.add_argument("--kid", help="revoke only this key (hex kid); without it the whole device")
    revoke.set_defaults(run=_devices, verb="revoke")
    rotate = verbs.add_parser("rotate-key", help="give a device a new key; the old one is retired")
    rotate.add_argument("--device-id", required=True)
    rotate.add_argument("--public-key", required=True)
    rotate.set_defaults(run=_devices, verb="rotate-key")
    _register_crediting(actions)


CREDITS_DESCRIPTION = """\
Crediting: the gateway turns each accepted trip into a credit in a hash-chained ledger
(docs/methodology.md, docs/ledger.md). A credit is issued to an owner only once the vehicle is bound
to that owner with their consent; until then it accrues.

examples:
  carbonlink gateway owners --config gateway.toml add --owner-id alice --name "Alice Example"
  carbonlink gateway bind --config gateway.toml --vehicle vin:3f2a... --owner alice --consent-method app
  carbonlink gateway exclude-charge --config gateway.toml --record-hash 9c1e... --reason "credited to the CPO"
  carbonlink gateway credits --config gateway.toml --period 2026-11
  carbonlink gateway export --config gateway.toml --out ledger.jsonl && carbonlink audit ledger.jsonl"""


def _store_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, metavar="FILE", help="gateway.toml, for its [store] url")
    where.add_argument("--store", metavar="URL", help="sqlite:///FILE or postgresql://USER@HOST:PORT/DB")


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from err
    if not 1 <= value <= 10_000:  # noqa: PLR2004 - the store's largest listing
        raise argparse.ArgumentTypeError(f"must be from 1 to 10000, not {value}")
    return value


def _utc_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from err
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"give the time zone (e.g. 2026-11-24T08:00:00Z): {text!r}")
    return moment.astimezone(UTC)


def _register_crediting(actions: "argparse._SubParsersAction[Any]") -> None:
    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=CREDITS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        _store_options(parser)
        parser.set_defaults(run=_credits, verb=name)
        return parser

    export = action("export", "write the ledger, signed records and device keys as JSON lines for an audit")
    export.add_argument("--out", required=True, type=Path, metavar="FILE", help="e.g. ledger.jsonl")
    owners = action("owners", "add and list the owner accounts credits are issued to")
    owner_verbs = owners.add_subparsers(title="owner actions", metavar="OWNER_ACTION", required=True)
    add = owner_verbs.add_parser("add", help="add an owner account")
    add.add_argument("--owner-id", required=True, help="3-64 of a-z, 0-9, '_' and '-'")
    add.add_argument("--name", required=True)
    add.set_defaults(owner_verb="add")
    listing = owner_verbs.add_parser("list", help="list owner accounts")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(owner_verb="list")
    bind = action("bind", "bind a vehicle to an owner with their consent; issues what it accrued")
    bind.add_argument("--vehicle", required=True, help="vin:<hex VIN hash> or device:<device id>")
    bind.add_argument("--owner", required=True, help="the owner id")
    bind.add_argument("--consent-method", required=True, help="how consent was given: app, web, paper, ...")
    bind.add_argument("--consented-at", type=_utc_time, help="when (ISO 8601 with zone; default now)")
    bind.add_argument("--reference", default="", help="where the consent is kept (form id, ...)")
    exclude = action("exclude-charge", "mark a charge as credited elsewhere (its energy is not credited here)")
    exclude.add_argument("--record-hash", required=True, help="the charge record's hash (hex)")
    exclude.add_argument("--reason", required=True, help="e.g. 'credited to the charge point operator'")
    listing_credits = action("credits", "list credits")
    listing_credits.add_argument("--device-id")
    listing_credits.add_argument("--owner")
    listing_credits.add_argument("--period", help="YYYY-MM")
    listing_credits.add_argument("--limit", type=_page_size, default=100, help="1-10000 (default 100)")
    listing_credits.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _credits(args: argparse.Namespace) -> int:
    from carbonlink.cli.gateway_credits import run_credits_action  # noqa: PLC0415 - lazy by design

    return run_credits_action(args)


def _run(args: argparse.Namespace) -> int:
    from carbonlink.cli.gateway_run import run_gateway  # noqa: PLC0415 - lazy by design

    return run_gateway(args.config, log_format=args.log_format, log_level=args.log_level)


def _devices(args: argparse.Namespace) -> int:
    from carbonlink.cli.gateway_devices import manage_devices  # noqa: PLC0415 - lazy by design

    return manage_devices(args)
