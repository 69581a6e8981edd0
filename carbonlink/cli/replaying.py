"""Running ``carbonlink replay``: the replay under a progress display, then its table and output files."""

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from carbonlink.cli.broker_url import broker_address
from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError
from carbonlink.cli.keyfile import load_device_key

if TYPE_CHECKING:
    from agent.outbox.tinydb_outbox import TinyDbOutbox
    from agent.replay.run import ReplayOptions, ReplayProgress, ReplayResult
    from agent.replay.series import SeriesPoint, SeriesRecorder

EXIT_INTERRUPTED = 130
"""As a shell reports a command ended by Ctrl-C: the outputs hold the partial replay."""
PROGRESS_LINE_EVERY_S = 2.0
"""When stderr is not a terminal (a log, CI), one progress line this often."""
PUBLISH_OUTBOX_RECORDS = 1_000_000
"""The outbox bound for --publish: a replay of a fleet's months fits; a car's own is far smaller."""


def run_replay(args: argparse.Namespace, *, out: Callable[[str], None] = print) -> int:
    from agent.errors import AgentError  # noqa: PLC0415 - the agent loads only when it runs
    from agent.replay.run import replay  # noqa: PLC0415

    options = _options(args)
    series = _series_recorder(options) if args.report is not None else None
    with _publishing_outbox(args, options) as outbox:
        try:
            with _progress_display(options.logs) as on_progress:
                result = replay(
                    options,
                    on_progress=on_progress,
                    on_reading=None if series is None else series.add,
                    outbox=outbox,
                )
        except AgentError as err:
            raise CliError(str(err), EXIT_USAGE) from err
        _show_and_write(args, result, series, out)
        delivered = _publish(args, options, outbox, result.interrupted, out)  # last: it may wait for acks
    if result.interrupted:
        out("interrupted: the table and the files hold what was replayed until then")
        return EXIT_INTERRUPTED
    return EXIT_OK if result.decode.frames_used > 0 and delivered else EXIT_INVALID


def _show_and_write(
    args: argparse.Namespace, result: "ReplayResult", series: "SeriesRecorder | None", out: Callable[[str], None]
) -> None:
    """The table and summary on stdout, then each output file asked for."""
    from agent.replay.output import render_table, replay_json  # noqa: PLC0415 - the agent loads only when it runs

    for line in render_table(result.records):
        out(line)
    for line in _summary(result):
        out(line)
    if args.json is not None:
        _write(args.json, (json.dumps(replay_json(result), indent=2) + "\n").encode())
        out(f"records and decode report: {args.json}")
    if series is not None:
        _write_report(args.report, result, series.points())
        out(f"report: {args.report}")
    if result.signed_with is not None:
        written = _write_signed(args.signed_dir, result)
        out(f"signed records: {written} in {args.signed_dir} (check one: carbonlink inspect FILE --public-key KEY)")


@contextmanager
def _publishing_outbox(args: argparse.Namespace, options: "ReplayOptions") -> "Iterator[TinyDbOutbox | None]":
    """With --publish, the real outbox the records are sealed into; else None."""
    if args.publish is None:
        yield None
        return
    from agent.errors import OutboxError  # noqa: PLC0415 - only for --publish
    from agent.outbox.tinydb_outbox import TinyDbOutbox  # noqa: PLC0415

    assert options.key is not None  # noqa: S101 - _options requires --sign with --publish
    try:
        outbox = TinyDbOutbox(args.outbox, PUBLISH_OUTBOX_RECORDS, options.key.public_key)
    except OutboxError as err:
        raise CliError(f"outbox {args.outbox}: {err}") from err
    try:
        yield outbox
    finally:
        outbox.close()


def _publish(
    args: argparse.Namespace,
    options: "ReplayOptions",
    outbox: "TinyDbOutbox | None",
    interrupted: bool,  # noqa: FBT001 - the replay's own flag
    out: Callable[[str], None],
) -> bool:
    """Deliver the outbox's records (--publish); True when nothing is left unsettled (or nothing to do)."""
    if outbox is None or options.key is None or interrupted:
        return True
    from agent.replay.publish import deliver  # noqa: PLC0415 - only for --publish
    from agent.uplink.settings import UplinkSettings  # noqa: PLC0415

    host, port = broker_address(args.publish, "--publish")
    delivery = deliver(
        outbox,
        UplinkSettings(host=host, port=port, backoff_max_s=5.0),
        options.key.device_id,
        timeout_s=args.publish_timeout,
    )
    out(
        f"published to mqtt://{host}:{port} from {args.outbox}: {delivery.acknowledged} acknowledged, "
        f"{delivery.rejected} rejected, {delivery.waiting} waiting"
        + ("" if delivery.error is None else f" ({delivery.error})")
    )
    for rejected in outbox.rejected():
        out(
            f"  record {rejected.sequence} rejected: {rejected.reason}"
            + (f" ({rejected.detail})" if rejected.detail else "")
        )
    return delivery.waiting == 0 and delivery.error is None


def _options(args: argparse.Namespace) -> "ReplayOptions":
    from agent.replay.run import ReplayOptions, logs_in_order  # noqa: PLC0415 - lazy by design

    for path in (args.json, args.report):
        if path is not None and not path.parent.is_dir():
            raise CliError(f"cannot write {path}: directory {path.parent} does not exist")
    if args.publish is not None:
        broker_address(args.publish, "--publish")
        if args.sign is None:
            raise CliError("--publish needs --sign KEY: the gateway accepts only records signed by a registered device")
        if args.publish_timeout <= 0:
            raise CliError(f"--publish-timeout must be more than 0, not {args.publish_timeout:g}")
    key = None
    if args.sign is not None:
        key = load_device_key(args.sign)
        if args.signed_dir.exists() and not args.signed_dir.is_dir():
            raise CliError(f"--signed-dir {args.signed_dir} exists and is not a directory")
    options = ReplayOptions(
        logs=logs_in_order(args.logs),
        channels=None if not args.channel else frozenset(args.channel),
        key=key,
    )
    if args.config is not None:
        options = _with_agent_config(options, args.config)
    if args.profile is not None:
        options = dataclasses.replace(options, profile=args.profile)
    return options


def _with_agent_config(options: "ReplayOptions", path: Path) -> "ReplayOptions":
    """The replay set up as the vehicle's agent is: its profile, VIN, battery capacity and thresholds."""
    from agent.config import load_config  # noqa: PLC0415 - the agent loads only when it runs
    from agent.errors import ConfigError  # noqa: PLC0415

    try:
        config = load_config(path, os.environ)
    except ConfigError as err:
        raise CliError(str(err)) from err
    return dataclasses.replace(
        options,
        profile=config.profile,
        segmentation=config.segmentation,
        battery_capacity_wh=config.battery_capacity_wh,
        vin_hash=config.vin_hash,
    )


def _series_recorder(options: "ReplayOptions") -> "SeriesRecorder":
    from agent.replay.series import SeriesRecorder  # noqa: PLC0415 - only for --report

    # The plots' energy uses the segmenter's gap and voltage-age limits, as the records do.
    return SeriesRecorder(settings=options.segmentation)


@contextmanager
def _progress_display(logs: tuple[Path, ...]) -> "Iterator[Callable[[ReplayProgress], None] | None]":
    """A live line with frames read and frames/s on a terminal's stderr; a line every few seconds when piped."""
    if not sys.stderr.isatty():
        yield _progress_lines()
        return
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn  # noqa: PLC0415

    with Progress(
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
    ) as progress:
        # The bar follows the bytes read from disk (of gzip logs: their compressed bytes).
        task = progress.add_task(f"replaying {len(logs)} log(s)", total=None)

        def show(now: "ReplayProgress") -> None:
            progress.update(
                task,
                completed=now.bytes_done,
                total=now.bytes_total or None,
                description=_progress_text(now),
            )

        yield show


def _progress_lines() -> "Callable[[ReplayProgress], None]":
    last_shown_s = 0.0

    def show(now: "ReplayProgress") -> None:
        nonlocal last_shown_s
        if now.elapsed_s - last_shown_s >= PROGRESS_LINE_EVERY_S:
            last_shown_s = now.elapsed_s
            print(f"replay: {_progress_text(now)}", file=sys.stderr, flush=True)

    return show


def _progress_text(now: "ReplayProgress") -> str:
    rate = now.frames_read / now.elapsed_s if now.elapsed_s > 0 else 0.0
    return f"{now.frames_read:,} frames read ({rate:,.0f}/s), {now.frames_used:,} used, {now.records} records"


def _summary(result: "ReplayResult") -> Iterator[str]:
    read = sum(report.frames_read for report in result.logs)
    rate = read / result.elapsed_s if result.elapsed_s > 0 else 0.0
    yield (
        f"replayed {len(result.logs)} log(s): {read:,} frames read, {result.decode.frames_used:,} used by profile "
        f"{result.profile_id}, in {result.elapsed_s:.1f} s ({rate:,.0f} frames/s)"
    )
    for report in result.logs:
        problems = [f"{count} {kind}" for kind, count in sorted(report.bad_lines.items())]
        if report.backwards:
            problems.append(f"{report.backwards} frames back in time (dropped)")
        if report.error is not None:
            problems.append(report.error)
        if problems:
            yield f"  {report.path}: " + "; ".join(problems)
    if result.decode.frames_used == 0:
        yield (
            f"none of the frames profile {result.profile_id} needs was found in the logs: "
            "is it the right profile (--profile) and channel (--channel)?"
        )


def _write(path: Path, data: bytes) -> None:
    from agent.adapters.atomic_file import write_atomically  # noqa: PLC0415 - the agent loads only when it runs

    try:
        write_atomically(path, data)
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}") from err


def _write_report(path: Path, result: "ReplayResult", points: "list[SeriesPoint]") -> None:
    from agent.replay.html_report import ReportError, write_html_report  # noqa: PLC0415 - only for --report
    from agent.replay.output import decode_report, records_json  # noqa: PLC0415

    try:
        write_html_report(
            path,
            title=f"carbonlink replay: {', '.join(report.path for report in result.logs)}",
            points=points,
            records=records_json(result),
            decode=decode_report(result),
        )
    except ReportError as err:
        raise CliError(str(err)) from err
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}") from err


def _write_signed(directory: Path, result: "ReplayResult") -> int:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create {directory}: {err.strerror or err}") from err
    for record, signed in zip(result.records, result.signed, strict=True):
        _write(directory / f"{record.sequence:06d}-{record.RECORD_TYPE}.cose", signed)
    return len(result.signed)
