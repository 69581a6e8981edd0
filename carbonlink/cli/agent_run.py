"""Running ``carbonlink agent run``: config and key loaded, the agent run under signal handlers."""

import argparse
import dataclasses
import logging
import os
from typing import TYPE_CHECKING

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.cli.keyfile import load_device_key
from carbonlink.cli.signals import on_stop_signal

if TYPE_CHECKING:
    from agent.config import SourceConfig


def _source_from_arguments(args: argparse.Namespace) -> "SourceConfig | None":
    """The source the command line names, or None to keep the config's."""
    from agent.config import SourceConfig  # noqa: PLC0415 - the agent loads only when it runs

    if args.interface is None and args.channel is None and args.log is None:
        if args.bitrate is not None or args.fd:
            raise CliError("--bitrate and --fd go with -i/--interface and -c/--channel")
        return None
    return SourceConfig(
        interface=args.interface,
        channel=args.channel,
        bitrate=args.bitrate,
        fd=args.fd,
        log_file=None if args.log is None else args.log.resolve(),
    )


def run_agent(args: argparse.Namespace, *, log_format: str, log_level: str) -> int:
    from agent.app import Agent  # noqa: PLC0415 - the agent loads only when it runs
    from agent.config import load_config  # noqa: PLC0415
    from agent.errors import AgentError  # noqa: PLC0415
    from carbonlink.cli.logs import configure_logging  # noqa: PLC0415

    configure_logging(log_format, log_level)
    try:
        config = load_config(args.config, os.environ)
        source = _source_from_arguments(args)
        if source is not None:
            source.check()
            config = dataclasses.replace(config, source=source)
    except AgentError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    key = load_device_key(config.key_file)
    agent = Agent(config, key)

    def stop(signal_name: str) -> None:
        logging.getLogger("agent").info("agent.stopping signal=%s again_to_kill_at_once=yes", signal_name)
        agent.request_stop()

    on_stop_signal(stop)
    try:
        result = agent.run()
    except AgentError as err:
        raise CliError(f"agent: {err}", EXIT_USAGE) from err
    return EXIT_INVALID if result.reason == "uplink_refused" or result.lost_segments else EXIT_OK
