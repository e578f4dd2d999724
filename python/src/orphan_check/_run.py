"""`run()`: one scenario through the bundled command, `orphan-check run --json`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Union

from . import plans
from ._binary import checked_binary
from ._duration import Seconds, cli_duration, seconds_of
from ._errors import BinaryTooOld, HarnessError
from ._report import Report, parse_report
from .plans import KillPlan
from .ready import Ready

StrPath = Union[str, "os.PathLike[str]"]


def _argv(argv: Sequence[StrPath]) -> list[str]:
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise TypeError(f"argv is a list of words, e.g. [sys.executable, 'agent.py'], not {argv!r}")
    words = [os.fspath(a) for a in argv]
    if not words or not words[0]:
        raise ValueError("argv needs at least the program to run")
    return [str(w) for w in words]


def _ports(ports: Iterable[int]) -> list[str]:
    out = []
    for p in ports:
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
            raise ValueError(f"a watched port is a TCP port, 1-65535 (got {p!r})")
        out.append(str(p))
    return out


def run(
    argv: Sequence[StrPath],
    *,
    ready: Ready | None = None,
    kill: KillPlan = plans.SIGKILL,
    ports: Iterable[int] = (),
    deadline: Seconds = 1.0,
    cwd: StrPath | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: Seconds | None = None,
    kill_after: Seconds | None = None,
    port_deadline: Seconds | None = None,
    watch_dirs: Iterable[StrPath] = (),
    timeout: Seconds | None = None,
) -> Report:
    """Launches `argv` as the agent, waits until it is `ready`, ends it by the `kill`
    plan, and reports every descendant alive `deadline` seconds later.

    `ports` must be free before the start and free again after the kill. `cwd` and `env`
    are the agent's (by default this process's). Nothing of the agent's tree is alive
    when this returns. Raises `HarnessError` when the harness could not do its job
    (the agent missing, never ready, a watched port busy before the start), with
    orphan-check's one-line reason; `BinaryNotFound` or `BinaryTooOld` when the command
    is missing or cannot write the report.

    >>> report = orphan_check.run([sys.executable, "agent.py"], ready=ready.line("ready"))
    >>> report.assert_clean()
    """
    words = _argv(argv)
    if not isinstance(kill, KillPlan):
        raise TypeError(f"kill is a plan such as orphan_check.plans.SIGTERM, not {kill!r}")
    if ready is not None and not isinstance(ready, Ready):
        raise TypeError(
            f"ready is a condition such as orphan_check.ready.port(3000), not {ready!r}"
        )
    binary = checked_binary()
    with tempfile.TemporaryDirectory(prefix="orphan-check-") as tmp:
        json_path = Path(tmp) / "report.json"
        cmd = [binary, "run", "--kill", kill.name, "--json", str(json_path)]
        cmd += ["--deadline", cli_duration(deadline, "deadline", positive=True)]
        if ready is not None:
            cmd += ["--ready", ready.condition]
        if ready_timeout is not None:
            cmd += ["--ready-timeout", cli_duration(ready_timeout, "ready_timeout", positive=True)]
        if kill_after is not None:
            cmd += ["--kill-after", cli_duration(kill_after, "kill_after")]
        if port_deadline is not None:
            cmd += ["--port-deadline", cli_duration(port_deadline, "port_deadline", positive=True)]
        for p in _ports(ports):
            cmd += ["--port", p]
        for d in watch_dirs:
            cmd += ["--watch-dir", os.fspath(d)]
        cmd += ["--", *words]
        limit = None if timeout is None else seconds_of(timeout, "timeout")
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limit,
            check=False,
        )
        if done.returncode not in (0, 1):
            raise HarnessError(
                _reason(done.stderr, done.returncode),
                exit_code=done.returncode,
                stderr=done.stderr,
            )
        try:
            document = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BinaryTooOld(
                f"{binary} exited {done.returncode} without writing the --json report"
            ) from None
        except ValueError as e:
            raise BinaryTooOld(f"{binary} wrote a report that is not JSON: {e}") from None
    return parse_report(document, text=done.stderr, exit_code=done.returncode)


def _reason(stderr: str, code: int) -> str:
    """The `orphan-check: error: ...` line, or the last words of stderr."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("orphan-check: error: "):
            return line[len("orphan-check: error: ") :]
    tail = stderr.strip().splitlines()[-3:]
    how = f"exit status {code}" if code >= 0 else f"killed by signal {-code}"
    return f"orphan-check ended with {how}" + (f": {' / '.join(tail)}" if tail else "")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
