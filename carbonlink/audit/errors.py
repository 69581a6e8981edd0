"""The one error of the audit: the first discrepancy found, with the line it is on."""

from carbonlink.errors import CarbonlinkError


class AuditError(CarbonlinkError, ValueError):
    """An export that does not verify: ``line_no`` is the line where the audit stopped, ``problem`` why."""

    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no
        self.problem = problem
