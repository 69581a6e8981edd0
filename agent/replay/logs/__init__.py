"""Recorded CAN logs read fast and streamed: only the frames a profile needs, in time order, with counts.

    merge_logs(paths, profile.frame_ids) ──► (frames in time order, one LogReport per log)

Formats (``LOG_FORMATS``), told from the content (``detect_format``), gzip read through:

| format | files | read by |
|---|---|---|
| ``candump`` | candump ``-L``, python-can ``.log`` | ``candump``: id first, own parser |
| ``asc`` | Vector ASC | ``asc``: id first, own parser |
| ``savvycan`` | SavvyCAN / GVRET CSV | ``savvycan``: id first, own parser |
| ``csv`` | python-can's CSV | ``python_can_csv``: id first, own parser |
| ``blf`` | Vector BLF | python-can, filtered after |
| ``trc`` | PEAK TRC | python-can, filtered after |
| ``mf4`` | ASAM MDF 4 (needs asammdf) | python-can, filtered after |

The text readers look at a line's id before anything else and go no further for the ids the
profile does not need (``id_table``): on a full bus, where the profile needs a few ids out of
dozens, most lines cost a split and a dictionary look-up. A bad line is counted and skipped; a
file that ends early or is damaged ends its read with ``LogReport.error`` set.
"""

from agent.replay.logs.formats import LOG_FORMATS, LogFormatError, detect_format
from agent.replay.logs.merging import merge_logs
from agent.replay.logs.reading import read_log_frames
from agent.replay.logs.report import BAD_LINE_KINDS, LogReport

__all__ = [
    "BAD_LINE_KINDS",
    "LOG_FORMATS",
    "LogFormatError",
    "LogReport",
    "detect_format",
    "merge_logs",
    "read_log_frames",
]
