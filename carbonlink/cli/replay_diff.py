"""``carbonlink replay diff A.json B.json``: print how two replays differ, trip by trip."""

from collections.abc import Callable, Sequence
from pathlib import Path

from carbonlink.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, CliError


def run_diff(paths: Sequence[Path], tolerance_pct: float, *, out: Callable[[str], None] = print) -> int:
    """0 when every record pairs and no figure moved beyond the tolerance; 1 otherwise."""
    from agent.replay.diff import DiffError, load_run, pair_runs, render_diff  # noqa: PLC0415 - lazy by design

    if len(paths) != 2:  # noqa: PLR2004 - A and B
        raise CliError("replay diff takes two files: carbonlink replay diff A.json B.json", EXIT_USAGE)
    if tolerance_pct < 0:
        raise CliError(f"--tolerance must be 0 or more, not {tolerance_pct:g}", EXIT_USAGE)
    try:
        before, after = load_run(paths[0]), load_run(paths[1])
    except DiffError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    pairs = pair_runs(before, after)
    out(f"A: {paths[0]} ({len(before)} records)")
    out(f"B: {paths[1]} ({len(after)} records)")
    for line in render_diff(pairs, tolerance_pct):
        out(line)
    return EXIT_INVALID if any(pair.differs(tolerance_pct) for pair in pairs) else EXIT_OK
