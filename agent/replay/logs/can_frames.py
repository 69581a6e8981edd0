"""Facts about CAN frames that every log reader checks its fields against (ISO 11898-1)."""

from typing import Final

STANDARD_ID_MAX: Final = 0x7FF
"""Largest 11-bit (standard) identifier."""
EXTENDED_ID_MAX: Final = 0x1FFFFFFF
"""Largest 29-bit (extended) identifier."""
CLASSIC_MAX_BYTES: Final = 8
FD_LENGTHS: Final = frozenset((*range(9), 12, 16, 20, 24, 32, 48, 64))
"""Payload lengths a CAN FD frame can have."""
_DLC_LENGTHS: Final = (*range(9), 12, 16, 20, 24, 32, 48, 64)
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"


def is_hex(text: bytes) -> bool:
    """Whether ``text`` is one or more hex digits and nothing else (``int`` would also take ``0x``, ``_``, signs)."""
    return bool(text) and not text.strip(_HEX_DIGITS)


def id_fits(arbitration_id: int, extended: bool) -> bool:  # noqa: FBT001 - mirrors can.Message's fields
    """Whether the id fits its kind: 11 bits for a standard frame, 29 for an extended one."""
    return 0 <= arbitration_id <= (EXTENDED_ID_MAX if extended else STANDARD_ID_MAX)


def payload_fits(length: int, *, fd: bool) -> bool:
    """Whether a frame of that kind can carry ``length`` bytes."""
    return length in FD_LENGTHS if fd else 0 <= length <= CLASSIC_MAX_BYTES


def dlc_to_length(dlc: int, *, fd: bool) -> int:
    """Payload bytes a data length code stands for (classic CAN caps codes 9–15 at 8 bytes)."""
    if not 0 <= dlc <= len(_DLC_LENGTHS) - 1:
        raise ValueError(f"a data length code is 0–15, not {dlc}")
    return _DLC_LENGTHS[dlc] if fd else min(dlc, CLASSIC_MAX_BYTES)
