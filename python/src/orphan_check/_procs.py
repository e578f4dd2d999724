"""What the kernel says about processes, from /proc: enough to follow a process tree and
to tell a process from a later one that reuses its pid."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: A process's identity: its pid and its start time (clock ticks since boot).
Key = tuple[int, int]


@dataclass(frozen=True)
class Proc:
    """One process as /proc/<pid>/stat shows it."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    #: `R`, `S`, `Z` (zombie), `T` (stopped), ...
    state: str
    start_ticks: int
    comm: str

    @property
    def key(self) -> Key:
        return (self.pid, self.start_ticks)

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read(pid: int) -> Proc | None:
    """The process `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # `pid (comm) state ppid pgrp session ...`; comm may hold spaces and parentheses.
    open_paren, close_paren = raw.find("("), raw.rfind(")")
    if open_paren < 0 or close_paren < 0:
        return None
    fields = raw[close_paren + 2 :].split()
    try:
        return Proc(
            pid=pid,
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            state=fields[0],
            start_ticks=int(fields[19]),
            comm=raw[open_paren + 1 : close_paren],
        )
    except (IndexError, ValueError):
        return None


def command(pid: int) -> str:
    """The command line of `pid`, words joined by spaces (`[comm]` when it has none)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    if words:
        return " ".join(words)
    p = read(pid)
    return f"[{p.comm}]" if p else "<gone>"


def _children_files(pid: int) -> list[int] | None:
    """The children of every thread of `pid` (None when the kernel has no children files)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(w) for w in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended
            return None
        except OSError:
            continue
    return out


def _by_parent() -> dict[int, list[int]]:
    """Every process of the system by parent, from a scan of /proc."""
    out: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = read(int(name))
            if p is not None:
                out.setdefault(p.ppid, []).append(p.pid)
    return out


def descendants(root: int) -> dict[int, Proc]:
    """Every process below `root` (not `root` itself), by pid."""
    out: dict[int, Proc] = {}
    todo = [root]
    table: dict[int, list[int]] | None = None
    while todo:
        pid = todo.pop()
        kids = _children_files(pid) if table is None else None
        if kids is None:
            if table is None:
                table = _by_parent()
            kids = table.get(pid, [])
        for kid in kids:
            if kid in out or kid == root:
                continue
            p = read(kid)
            if p is not None and p.ppid == pid:
                out[kid] = p
                todo.append(kid)
    return out
