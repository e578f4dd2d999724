"""Readiness: when the agent is ready to be killed.

`ready.line("ready")` (a stdout line starting with the text), `ready.port(3000)`
(something listens on the port), `ready.file(path)` (it exists), `ready.after(2.0)`.
Without one, the agent is killed as soon as it started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._duration import Seconds, cli_duration


@dataclass(frozen=True)
class Ready:
    """A readiness condition, as `orphan-check run --ready` writes it."""

    condition: str

    def __str__(self) -> str:
        return self.condition


def port(number: int) -> Ready:
    """Ready when something listens on TCP `number`."""
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
        raise ValueError(f"a TCP port is 1-65535 (got {number!r})")
    return Ready(f"port:{number}")


def line(prefix: str) -> Ready:
    """Ready when the agent prints a stdout line starting with `prefix`."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("ready.line needs the text a stdout line starts with")
    if "\n" in prefix:
        raise ValueError(f"ready.line matches one line; {prefix!r} has a newline")
    return Ready(f"line:{prefix}")


def file(path: str | os.PathLike[str]) -> Ready:
    """Ready when `path` exists."""
    text = os.fspath(path)
    if not text:
        raise ValueError("ready.file needs a path")
    return Ready(f"file:{text}")


def after(delay: Seconds) -> Ready:
    """Ready `delay` seconds after the start."""
    return Ready(f"after:{cli_duration(delay, 'ready.after')}")
