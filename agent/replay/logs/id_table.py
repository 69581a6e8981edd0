"""Which frame ids to keep, by the very text a log spells them with, learnt once per spelling.

A full bus carries tens of ids the profile does not need, each thousands of times. The text readers
cut the id out of a line (a find and a slice, or a split), look the text up here and move on when
the answer is ``SKIP``: no number is parsed, no payload read, no ``can.Message`` built. The first
time a spelling is met, the reader parses it and tells the table what it means (``learn``); every
later line with the same spelling costs one dictionary look-up. The same id spelled two ways
(``"0101"`` and ``"101"``, upper and lower case) is simply learnt twice.
"""

from typing import Final

from agent.replay.logs.report import LogReport

Key = tuple[int, bool]
"""(arbitration id, is extended), as the profile lists its frames."""

SKIP: Final[Key] = (-1, False)
"""The verdict for a spelling whose frames are not wanted (compared by identity in the hot loops)."""

MAX_SPELLINGS = 65_536
"""Spellings remembered per log; beyond (a fuzzed file), new ones are parsed every time, still correctly."""
MAX_UNKNOWN_IDS = 65_536
"""Distinct unneeded ids counted per log; ``unknown_ids`` stops growing there (a real bus has a few hundred)."""


class IdTable:
    """Spellings of frame ids met in one log → the (id, extended) key to keep, or ``SKIP``."""

    __slots__ = ("_report", "_unknown", "spellings", "wanted")

    def __init__(self, wanted: frozenset[Key], report: LogReport) -> None:
        self.wanted = wanted
        self.spellings: dict[bytes, Key] = {}
        """Look up a spelling with ``.get``: None means not met yet (call ``learn``)."""
        self._unknown: set[Key] = set()
        self._report = report

    def learn(self, spelling: bytes, arbitration_id: int, extended: bool, *, remember: bool = True) -> Key:  # noqa: FBT001 - mirrors can.Message's fields
        """The verdict for a parsed id (its key, or ``SKIP``), remembered for ``spelling`` unless told not to."""
        verdict = self.verdict(arbitration_id, extended)
        if remember and len(self.spellings) < MAX_SPELLINGS:
            self.spellings[spelling] = verdict
        return verdict

    def verdict(self, arbitration_id: int, extended: bool) -> Key:  # noqa: FBT001 - mirrors can.Message's fields
        """The key of a wanted frame, or ``SKIP`` (and the id counted as unknown)."""
        key = (arbitration_id, extended)
        if key in self.wanted:
            return key
        if key not in self._unknown and len(self._unknown) < MAX_UNKNOWN_IDS:
            self._unknown.add(key)
            self._report.unknown_ids = len(self._unknown)
        return SKIP

    def skip_always(self, spelling: bytes) -> None:
        """Frames spelled so are never wanted and are no unknown id either (error frames)."""
        if len(self.spellings) < MAX_SPELLINGS:
            self.spellings[spelling] = SKIP
