"""Shared helpers: where the example agents are, and a port for each scenario."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import orphan_check

#: The example agents of the repository (`fixtures/agents/`), or where
#: ORPHAN_CHECK_AGENTS points when the suite runs from a copy.
AGENTS = Path(
    os.environ.get("ORPHAN_CHECK_AGENTS")
    or Path(__file__).resolve().parents[2] / "fixtures" / "agents"
)


def agent(name: str, port: int, *extra: str) -> list[str]:
    """argv of an example agent listening on `port`."""
    path = AGENTS / name
    interpreter = shutil.which("node") if name.endswith(".js") else sys.executable
    if interpreter is None:
        pytest.skip(f"{name} needs node")
    return [interpreter, str(path), "--port", str(port), *extra]


def run_agent(name: str, *extra: str, **options: Any) -> orphan_check.Report:
    """Runs an example agent with a fresh port, watched, ready at its `ready` line.

    A port picked free can be taken by something else before the start: then the
    harness refuses (port busy before the start) and another port is tried.
    """
    for _ in range(5):
        port = orphan_check.free_port()
        try:
            return orphan_check.run(
                agent(name, port, *extra),
                ready=orphan_check.ready.line("ready"),
                ports=[port],
                **options,
            )
        except orphan_check.HarnessError as e:
            if "already in use" not in e.message:
                raise
    raise AssertionError("no free port after 5 tries")


def kinds(report: orphan_check.Report) -> Sequence[str]:
    """Every escape kind of every survivor."""
    return [e.kind for s in report.survivors for e in s.escapes]


@pytest.fixture(autouse=True)
def _agents_exist() -> None:
    if not AGENTS.is_dir():
        pytest.skip(f"the example agents are not at {AGENTS} (set ORPHAN_CHECK_AGENTS)")
