"""The errors of the package: the binary could not be found or is too old, or the
harness could not do its job (the command line's exit code 2)."""

from __future__ import annotations


class OrphanCheckError(Exception):
    """Base class of every error raised by orphan_check."""


class BinaryNotFound(OrphanCheckError):
    """The `orphan-check` command is not installed where this package looks for it."""


class BinaryTooOld(OrphanCheckError):
    """The `orphan-check` command found cannot produce the report this package reads."""


class HarnessError(OrphanCheckError):
    """The harness could not do its job: bad arguments, the agent missing or not
    executable, never ready, a watched port busy before the start.

    `message` is orphan-check's one-line reason; `exit_code` and `stderr` are what the
    command returned.
    """

    def __init__(self, message: str, *, exit_code: int, stderr: str) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.stderr = stderr
