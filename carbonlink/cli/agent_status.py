"""Showing ``carbonlink agent status``: the status file the agent writes, for people or as JSON."""

import json
import os
from pathlib import Path
from typing import Any

from carbonlink.cli.errors import EXIT_USAGE, CliError


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def show_status(config_path: Path, *, as_json: bool) -> None:
    from agent.config import load_config  # noqa: PLC0415 - the agent loads only when asked
    from agent.errors import AgentError  # noqa: PLC0415
    from agent.status_file import read_status, status_path  # noqa: PLC0415

    try:
        config = load_config(config_path, os.environ)
        status = read_status(status_path(config.outbox_path))
    except AgentError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    # "running" in the file means nothing once its process is gone (killed, power cut).
    status["running"] = status.get("state") == "running" and _alive(status.get("pid"))
    if as_json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print("\n".join(describe(status)))


def describe(status: dict[str, Any]) -> list[str]:
    """The status as lines for a person."""
    state = f"running (pid {status.get('pid')})" if status["running"] else "not running"
    outbox = status.get("outbox") or {}
    pipeline = status.get("pipeline") or {}
    decoder = status.get("decoder") or {}
    uplink = status.get("uplink")
    lines = [
        f"agent {status.get('device_id')}: {state}; status written {status.get('updated_at')}",
        f"source       {status.get('source')}",
        (
            f"outbox       {outbox.get('pending', 0)} pending, {outbox.get('sent', 0)} sent (awaiting ack), "
            f"{outbox.get('rejected', 0)} rejected, {outbox.get('quarantined', 0)} quarantined, "
            f"{outbox.get('acknowledged_total', 0)} acknowledged in all (holds at most "
            f"{outbox.get('max_unacknowledged')} unacknowledged)"
        ),
    ]
    if uplink is None:
        lines.append("uplink       none configured ([mqtt] missing): records wait in the outbox")
    else:
        link = f"connected, MQTT {uplink.get('protocol')}" if uplink.get("connected") else "not connected"
        lines += [
            (
                f"uplink       {link}; published {uplink.get('published')}, resent {uplink.get('resends')}, "
                f"acks {uplink.get('acks_received')}"
            ),
            f"last ack     {uplink.get('last_ack_at') or 'none yet'}",
        ]
    lines += [
        f"last error   {status.get('last_error') or (uplink or {}).get('last_error') or 'none'}",
        (
            f"records      {pipeline.get('records_sealed', 0)} sealed this run, "
            f"{pipeline.get('discarded_segments', 0)} too short to seal, "
            f"{pipeline.get('unsealed', 0)} waiting for room, "
            f"{pipeline.get('lost_segments', 0)} lost"
        ),
        f"last sealed  {pipeline.get('last_sealed') or 'none this run'}",
        (
            f"frames       {decoder.get('frames_seen', 0)} seen, {decoder.get('frames_used', 0)} used, "
            f"{decoder.get('truncated', 0)} truncated, {decoder.get('bad_checksum', 0)} bad checksum, "
            f"{decoder.get('frames_dropped', 0)} dropped (counter jumps), {decoder.get('out_of_range', 0)} out of range"
        ),
    ]
    rejected = status.get("rejected") or []
    lines.append(f"rejected     {len(rejected) or 'none'}")
    lines += [
        f"  sequence {entry.get('sequence')} record {entry.get('record_id')}: {entry.get('reason')}"
        + (f" ({entry['detail']})" if entry.get("detail") else "")
        for entry in rejected
    ]
    return lines
