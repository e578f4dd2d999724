"""The per-test guard: this process becomes a child subreaper, so every orphan of its
tree is reparented to it instead of init; after a test, whatever the test started and
left alive is named, killed, and (if it is an orphan this process adopted) reaped.

What it never does: `waitpid(-1)` or reap a child that something in this process still
holds (a live `subprocess.Popen`, a `multiprocessing` child): those keep their exit
status for their owner. It reaps only adopted orphans, by pid. It never signals a
process without first opening a pidfd to it and checking its start time, so a reused
pid is never hit.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import _procs
from ._procs import Key, Proc

#: prctl(2) option that makes the caller a subreaper of its descendants' orphans.
PR_SET_CHILD_SUBREAPER = 36

#: How long killed survivors may take to be gone.
KILL_PATIENCE = 5.0


def become_subreaper() -> None:
    """Makes this process a child subreaper (Linux 3.4+); raises OSError otherwise."""
    if not sys.platform.startswith("linux"):
        raise OSError(f"a child subreaper needs Linux, not {sys.platform}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


@dataclass(frozen=True)
class Leftover:
    """A process a test left alive."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    command: str
    #: How it got away: `new session (setsid)`, `double fork: ...`, ...
    escapes: tuple[str, ...]
    #: Whether it is gone now (killed after the grace).
    killed: bool


def _held_pids() -> set[int]:
    """Children this process still holds: live Popen objects (collected ones too, which
    subprocess reaps later), multiprocessing children and its helper processes."""
    held: set[int] = set()
    for obj in gc.get_objects():
        if isinstance(obj, subprocess.Popen) and obj.returncode is None:
            held.add(obj.pid)
    for obj in getattr(subprocess, "_active", None) or ():
        pid = getattr(obj, "pid", None)
        if isinstance(pid, int):
            held.add(pid)
    held |= _multiprocessing_pids()
    return held


def _multiprocessing_pids() -> set[int]:
    """multiprocessing's children and its long-lived helpers (forkserver, resource
    tracker), if the module is in use."""
    out: set[int] = set()
    mp_process = sys.modules.get("multiprocessing.process")
    for child in getattr(mp_process, "_children", None) or ():
        pid = getattr(child, "pid", None)
        if isinstance(pid, int):
            out.add(pid)
    return out | helper_pids()


def helper_pids() -> set[int]:
    """multiprocessing's process-lifetime helpers: never a test's leftover."""
    out: set[int] = set()
    tracker = getattr(
        sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None
    )
    forkserver = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    for obj, attr in ((tracker, "_pid"), (forkserver, "_forkserver_pid")):
        pid = getattr(obj, attr, None)
        if isinstance(pid, int):
            out.add(pid)
    return out


class Guard:
    """The subreaper and what it knows: processes that existed before a test (or were
    started by a fixture wider than one test) are not that test's leftovers."""

    def __init__(self) -> None:
        become_subreaper()
        self.me = os.getpid()
        self.me_proc = _procs.read(self.me)
        #: Processes started by session-, module- or class-scoped fixtures.
        self.owned: set[Key] = set()

    def snapshot(self) -> dict[int, Proc]:
        """This process's descendants now."""
        return _procs.descendants(self.me)

    def adopt_as_owned(self, before: dict[int, Proc]) -> None:
        """Marks what appeared since `before` as owned by a wider fixture."""
        old = {p.key for p in before.values()}
        self.owned |= {p.key for p in self.snapshot().values() if p.key not in old}

    def _judged(
        self, baseline: dict[int, Proc], now: dict[int, Proc] | None = None
    ) -> dict[int, Proc]:
        """Descendants alive now (in `now`, a snapshot just taken, when given) that the
        test is answerable for: new since `baseline`, not below a process that existed
        before (a server of a session fixture may start workers), not a multiprocessing
        helper."""
        if now is None:
            now = self.snapshot()
        old = {p.key for p in baseline.values()} | self.owned
        helpers = helper_pids()
        out: dict[int, Proc] = {}
        for pid, p in now.items():
            if p.zombie or p.key in old or pid in helpers:
                continue
            up, below_old = now.get(p.ppid), False
            while up is not None:
                if up.key in old and up.pid not in helpers:
                    below_old = True
                    break
                up = now.get(up.ppid)
            if not below_old:
                out[pid] = p
        return out

    def check(self, baseline: dict[int, Proc], grace: float) -> list[Leftover]:
        """Waits up to `grace` seconds for what the test started to be gone; names what
        is still alive then, kills it, and reaps the orphans among it."""
        deadline = time.monotonic() + grace
        now = self.snapshot()
        alive = self._judged(baseline, now)
        while alive and time.monotonic() < deadline:
            _wait_any_exit(alive.values(), deadline)
            now = self.snapshot()
            alive = self._judged(baseline, now)
        if not alive:
            # The snapshot just taken shows the zombies to reap: no second walk.
            self.reap_adopted(now)
            return []
        held = _held_pids()
        leftovers = [self._describe(p, alive, held) for p in alive.values()]
        self._kill(baseline)
        still_alive = set(self._judged(baseline))
        leftovers = [
            Leftover(
                pid=x.pid,
                ppid=x.ppid,
                pgid=x.pgid,
                sid=x.sid,
                command=x.command,
                escapes=x.escapes,
                killed=x.pid not in still_alive,
            )
            for x in leftovers
        ]
        self.reap_adopted()
        return sorted(leftovers, key=lambda x: x.pid)

    def _describe(self, p: Proc, alive: dict[int, Proc], held: set[int]) -> Leftover:
        me = self.me_proc
        escapes: list[str] = []
        if me is not None and p.sid != me.sid:
            escapes.append("new session (setsid): out of reach of every group kill")
        elif me is not None and p.pgid != me.pgid:
            escapes.append("new process group (setpgid): out of reach of a kill of the group")
        if p.ppid == self.me and p.pid not in held:
            escapes.append(
                "double fork: its parent exited without stopping it, and it was "
                "reparented to the test process"
            )
        elif p.ppid == self.me:
            escapes.append("started by the test and still running (a child it never stopped)")
        elif p.ppid in alive:
            escapes.append(f"its parent (pid {p.ppid}) was left running too")
        return Leftover(
            pid=p.pid,
            ppid=p.ppid,
            pgid=p.pgid,
            sid=p.sid,
            command=_procs.command(p.pid),
            escapes=tuple(escapes),
            killed=False,
        )

    def _kill(self, baseline: dict[int, Proc]) -> None:
        """SIGKILLs the leftovers (and what they start meanwhile) until none is alive."""
        deadline = time.monotonic() + KILL_PATIENCE
        while time.monotonic() < deadline:
            alive = self._judged(baseline)
            if not alive:
                return
            for p in alive.values():
                _signal_verified(p, signal.SIGKILL)
            _wait_any_exit(alive.values(), deadline, every=True)
            self.reap_adopted()

    def reap_adopted(self, now: dict[int, Proc] | None = None) -> None:
        """Reaps, by pid, the zombie children that nothing in this process holds: the
        orphans it adopted as a subreaper. `now` is a snapshot of the descendants just
        taken, when there is one (it shows every zombie child with its parent); without
        it the children are read now."""
        if now is None:
            now = self.snapshot()
        zombies = [pid for pid, p in now.items() if p.zombie and p.ppid == self.me]
        if not zombies:
            return
        held = _held_pids()
        for pid in zombies:
            if pid in held:
                continue
            # ECHILD: its owner reaped it meanwhile.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _signal_verified(p: Proc, sig: int) -> None:
    """Sends `sig` to `p` only if it is still that very process (pidfd, then start time)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    send = getattr(signal, "pidfd_send_signal", None)
    if pidfd_open is None or send is None:
        now = _procs.read(p.pid)
        if now is not None and now.start_ticks == p.start_ticks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
        return
    try:
        fd = pidfd_open(p.pid)
    except ProcessLookupError:
        return
    try:
        now = _procs.read(p.pid)
        if now is not None and now.start_ticks == p.start_ticks:
            send(fd, sig)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def _wait_any_exit(procs: Iterable[Proc], deadline: float, *, every: bool = False) -> None:
    """Returns when one of `procs` (or, with `every`, all of them) has exited, or at the
    deadline: polls their pidfds, or /proc with a short backoff where there are none."""
    pidfd_open = getattr(os, "pidfd_open", None)
    fds: list[int] = []
    try:
        if pidfd_open is not None:
            for p in procs:
                try:
                    fd = pidfd_open(p.pid)
                except ProcessLookupError:
                    if not every:
                        return
                    continue
                fds.append(fd)
                now = _procs.read(p.pid)
                gone = now is None or now.zombie or now.start_ticks != p.start_ticks
                if gone and not every:
                    return
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            waiting = len(fds)
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                events = poller.poll(max(1, int(left * 1000)))
                for fd, _ in events:
                    poller.unregister(fd)
                    waiting -= 1
                if events and not every:
                    return
            return
        # No pidfds (Python < 3.9 or an old kernel): look again with a short backoff.
        watched = list(procs)
        pause = 0.001
        while time.monotonic() < deadline:
            states = [_procs.read(p.pid) for p in watched]
            ended = [
                s is None or s.zombie or s.start_ticks != p.start_ticks
                for s, p in zip(states, watched)
            ]
            if all(ended) if every else any(ended):
                return
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.02)
    finally:
        for fd in fds:
            os.close(fd)
