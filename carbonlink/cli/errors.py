"""Exit codes and the one error type the CLI reports on a single stderr line."""

EXIT_OK = 0
EXIT_INVALID = 1
"""The input was read but is not valid (for example a record whose signature fails)."""
EXIT_USAGE = 2
"""Bad arguments or unreadable input (argparse uses 2 for usage errors as well)."""


class CliError(Exception):
    """A failure to report to the user as one line, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
