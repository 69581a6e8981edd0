"""Frame checksums of the reference EV bus.

The simulator writes them and the agent checks them, with this one implementation.

CRC-8 SAE J1850: polynomial 0x1D, initial value 0xFF, final XOR 0xFF, no reflection — the CRC
AUTOSAR names ``Crc_CalculateCRC8``. Its check value over ASCII ``123456789`` is 0x4B.
"""

from functools import cache

_POLYNOMIAL = 0x1D
_INITIAL = 0xFF
_FINAL_XOR = 0xFF


@cache
def _table() -> tuple[int, ...]:
    # A pure memo: the 256 remainders of the polynomial, computed once.
    entries = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ _POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        entries.append(crc)
    return tuple(entries)


def crc8_j1850(data: bytes) -> int:
    """The CRC-8 SAE J1850 of ``data``."""
    table = _table()
    crc = _INITIAL
    for byte in data:
        crc = table[crc ^ byte]
    return crc ^ _FINAL_XOR
