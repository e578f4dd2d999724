"""Prove a program cleans up after itself.

`run()` launches an agent under the bundled `orphan-check` command, kills it the way
real life does (`plans`), and returns a typed `Report`: every descendant that survived,
how it escaped, which cleanups would have missed it, and whether the watched ports
went free.

    import sys
    import orphan_check
    from orphan_check import plans, ready

    report = orphan_check.run(
        [sys.executable, "agent.py", "--port", "3000"],
        ready=ready.port(3000),
        kill=plans.SIGTERM,
        ports=[3000],
    )
    report.assert_clean()   # AssertionError with the text report otherwise

The pytest plugin (installed with the package) adds the `orphan_check` fixture and,
with `pytest --orphan-check`, a guard that fails every test leaving a process behind.
"""

from __future__ import annotations

from . import plans, ready
from ._binary import BIN_ENV, checked_binary, find_binary
from ._errors import BinaryNotFound, BinaryTooOld, HarnessError, OrphanCheckError
from ._report import (
    SCHEMA_VERSION,
    Cost,
    Escape,
    ExitRecord,
    FileChange,
    Output,
    Plan,
    PortHolder,
    PortVerdict,
    Report,
    SentSignal,
    Survivor,
    TimelineEntry,
    parse_report,
)
from ._run import free_port, run
from .plans import KillPlan
from .ready import Ready


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("orphan-check")
    except Exception:  # not installed as a distribution (a source checkout)
        return "0+unknown"


__version__ = _version()

__all__ = [
    "BIN_ENV",
    "SCHEMA_VERSION",
    "BinaryNotFound",
    "BinaryTooOld",
    "Cost",
    "Escape",
    "ExitRecord",
    "FileChange",
    "HarnessError",
    "KillPlan",
    "OrphanCheckError",
    "Output",
    "Plan",
    "PortHolder",
    "PortVerdict",
    "Ready",
    "Report",
    "SentSignal",
    "Survivor",
    "TimelineEntry",
    "__version__",
    "checked_binary",
    "find_binary",
    "free_port",
    "parse_report",
    "plans",
    "ready",
    "run",
]
