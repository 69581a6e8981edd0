"""Running ``carbonlink gateway run``: config loaded, the gateway run under signal handlers."""

import logging
import os
import threading
from pathlib import Path

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.cli.logs import configure_logging
from carbonlink.cli.signals import on_stop_signal


def run_gateway(config_path: Path, *, log_format: str, log_level: str) -> int:
    from gateway.app import Gateway  # noqa: PLC0415 - the gateway loads only when it runs
    from gateway.config import load_config  # noqa: PLC0415
    from gateway.errors import GatewayError  # noqa: PLC0415

    configure_logging(log_format, log_level)
    try:
        config = load_config(config_path, os.environ)
        gateway = Gateway(config)
    except GatewayError as err:
        raise CliError(f"gateway: {err}", EXIT_USAGE) from err
    stop = threading.Event()

    def on_signal(signal_name: str) -> None:
        # Everything acknowledged is committed already; agents resend the rest after a kill.
        logging.getLogger("carbonlink.gateway").info(
            "gateway.stopping signal=%s again_to_kill_at_once=yes", signal_name
        )
        stop.set()

    on_stop_signal(on_signal)
    try:
        report = gateway.run_until(stop)
    except (GatewayError, OSError) as err:
        gateway.stop()
        raise CliError(f"gateway: {err}", EXIT_USAGE) from err
    return EXIT_OK if report.intake_drained and report.acks_confirmed else EXIT_INVALID
