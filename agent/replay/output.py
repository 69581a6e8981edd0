"""A replay as JSON (``--json``) and as the table ``carbonlink replay`` prints.

Records use the field names of the signed record (``carbonlink.wire.record_to_json``), which are
those of the simulator's ground truth, plus ``type``, ``record_hash``, the truth's zero figures
(``energy_in_wh`` of a trip, ``distance_m`` of a charge) and, for trips, ``wh_per_km`` (net
battery energy per km). The decode report says what the logs held and what the decoder made
of it, so a profile that does not fit the logs shows as counts rather than as a silent empty table.
"""

from collections.abc import Iterable, Mapping, Sequence

from agent.replay.run import ReplayResult
from carbonlink.chain import record_hash
from carbonlink.records import ChargeRecord, Record, TripRecord
from carbonlink.text_table import aligned_rows
from carbonlink.wire import record_to_json

REPLAY_FORMAT = "carbonlink-replay/1"


def record_json(record: Record, signed: bytes) -> dict[str, object]:
    """One record for the JSON output: its signed fields plus type, record hash and Wh/km."""
    body: dict[str, object] = {"type": record.RECORD_TYPE, "record_hash": record_hash(signed).hex()}
    body |= record_to_json(record)
    # Every record carries the ground truth's figures, so runs and truths compare field by field:
    # a trip put nothing in from a charger, a charge session did not move.
    if isinstance(record, TripRecord):
        body["energy_in_wh"] = 0.0
        body["wh_per_km"] = wh_per_km(record)
    else:
        body["distance_m"] = 0.0
    return body


def records_json(result: ReplayResult) -> list[dict[str, object]]:
    """Every record of the replay for the JSON output and the HTML report, in the order sealed."""
    return [record_json(record, signed) for record, signed in zip(result.records, result.signed, strict=True)]


def wh_per_km(record: TripRecord) -> float | None:
    """Net battery energy (out minus regen) per km driven; None for a trip that did not move."""
    if record.distance_m <= 0:
        return None
    return (record.energy_out_wh - record.energy_regen_wh) / (record.distance_m / 1000)


def decode_report(result: ReplayResult) -> dict[str, object]:
    """What was read, used and refused, over all logs, and per log."""
    gaps = sum(record.quality.gaps for record in result.records)
    return {
        "frames_read": sum(report.frames_read for report in result.logs),
        "frames_used": result.decode.frames_used,
        "unknown_ids": sum(report.unknown_ids for report in result.logs),
        "bad_lines": _summed(report.bad_lines for report in result.logs),
        "timestamps_backwards": sum(report.backwards for report in result.logs),
        "decode_errors": {
            "truncated": result.decode.truncated,
            "bad_checksum": result.decode.bad_checksum,
            "counter_jumps": result.decode.counter_jumps,
            "frames_dropped": result.decode.frames_dropped,
            "out_of_range": result.decode.out_of_range,
            "unavailable": result.decode.unavailable,
        },
        "gaps": gaps,
        "gap_duration_s": sum(record.quality.gap_duration_s for record in result.records),
        "discarded_segments": result.discarded_segments,
        "logs": [report.to_json() for report in result.logs],
    }


def _summed(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for per_log in counts:
        for kind, count in per_log.items():
            total[kind] = total.get(kind, 0) + count
    return dict(sorted(total.items()))


def replay_json(result: ReplayResult) -> dict[str, object]:
    """The whole ``--json`` document."""
    return {
        "format": REPLAY_FORMAT,
        "profile": result.profile_id,
        "interrupted": result.interrupted,
        "elapsed_s": round(result.elapsed_s, 3),
        "signed_by": None if result.signed_with is None else result.signed_with.device_id,
        "records": records_json(result),
        "decode": decode_report(result),
    }


_COLUMNS = ("#", "TYPE", "START", "END", "KM", "KWH OUT", "KWH REGEN", "KWH IN", "WH/KM", "SOC %", "FLAGS")


def render_table(records: Sequence[Record]) -> list[str]:
    """One row per trip or charge session, aligned, in the order sealed."""
    return aligned_rows(_COLUMNS, [_row(index, record) for index, record in enumerate(records, 1)])


def _row(index: int, record: Record) -> tuple[str, ...]:
    if isinstance(record, TripRecord):
        per_km = wh_per_km(record)
        figures = (
            f"{record.distance_m / 1000:.2f}",
            f"{record.energy_out_wh / 1000:.3f}",
            f"{record.energy_regen_wh / 1000:.3f}",
            "",
            "" if per_km is None else f"{per_km:.0f}",
        )
    else:
        assert isinstance(record, ChargeRecord)  # noqa: S101 - the two record types
        figures = ("", "", "", f"{record.energy_in_wh / 1000:.3f}", "")
    return (
        str(index),
        record.RECORD_TYPE,
        record.start_at.strftime("%Y-%m-%d %H:%M:%S"),
        record.end_at.strftime("%H:%M:%S"),
        *figures,
        _soc(record),
        ",".join(record.quality.flags) or "-",
    )


def _soc(record: Record) -> str:
    if record.soc_start_pct is None or record.soc_end_pct is None:
        return "?"
    return f"{record.soc_start_pct:.1f}→{record.soc_end_pct:.1f}"
