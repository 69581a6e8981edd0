"""Running ``carbonlink gateway run``: config loaded, the gateway run under signal handlers."""

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.cli.logs import configure_logging

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # A second signal kills at once: everything acknowledged is committed, agents resend the rest.
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        logging.getLogger("carbonlink.gateway").info(
            "gateway.stopping signal=%s again_to_kill_at_once=yes", signal.Signals(signum).name
        )
        stop.set()

    for number in STOP_SIGNALS:
        signal.signal(number, on_signal)
    try:
        report = gateway.run_until(stop)
    except (GatewayError, OSError) as err:
        gateway.stop()
        raise CliError(f"gateway: {err}", EXIT_USAGE) from err
    return EXIT_OK if report.intake_drained and report.acks_confirmed else EXIT_INVALID
