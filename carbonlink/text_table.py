"""Plain-text tables for terminals: columns padded to their widest cell, two spaces between them."""

from collections.abc import Sequence


def aligned_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header and the rows as lines, each column as wide as its widest cell, trailing spaces cut."""
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
