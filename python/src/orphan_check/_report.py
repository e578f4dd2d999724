"""The report of one scenario: dataclasses mirroring the JSON schema v1 of
`orphan-check run --json`.

Parsing is tolerant: members this package does not know are ignored (the schema grows
by adding members; `Report.raw` keeps the whole document), members it knows but the
document lacks get their empty value. An incompatible change bumps `schema_version`,
which `parse_report` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import BinaryTooOld

#: The `schema` member of every report.
SCHEMA = "orphan-check/report"
#: The schema version this package reads.
SCHEMA_VERSION = 1

Json = Mapping[str, Any]


def _obj(data: Any) -> Json:
    return data if isinstance(data, Mapping) else {}


def _list(data: Any) -> Sequence[Any]:
    return data if isinstance(data, list) else []


def _int(data: Json, key: str, default: int = 0) -> int:
    v = data.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _opt_int(data: Json, key: str) -> int | None:
    v = data.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float(data: Json, key: str, default: float = 0.0) -> float:
    v = data.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def _opt_float(data: Json, key: str) -> float | None:
    v = data.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str(data: Json, key: str, default: str = "") -> str:
    v = data.get(key)
    return v if isinstance(v, str) else default


def _opt_str(data: Json, key: str) -> str | None:
    v = data.get(key)
    return v if isinstance(v, str) else None


def _bool(data: Json, key: str) -> bool:
    return data.get(key) is True


def _opt_bool(data: Json, key: str) -> bool | None:
    v = data.get(key)
    return v if isinstance(v, bool) else None


def _strs(data: Json, key: str) -> tuple[str, ...]:
    return tuple(v for v in _list(data.get(key)) if isinstance(v, str))


def _ints(data: Json, key: str) -> tuple[int, ...]:
    return tuple(v for v in _list(data.get(key)) if isinstance(v, int))


@dataclass(frozen=True)
class Escape:
    """One way a survivor escaped cleanup: `kind` (`new_session`, `daemonized`,
    `shell_true`, `no_cleanup`, ...) and the kind's own members (`shell_pid`, ...)."""

    kind: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Escape:
        d = _obj(data)
        return cls(
            kind=_str(d, "kind", "unknown"), details={k: v for k, v in d.items() if k != "kind"}
        )

    def __str__(self) -> str:
        if not self.details:
            return self.kind
        return f"{self.kind} ({', '.join(f'{k}={v}' for k, v in self.details.items())})"


@dataclass(frozen=True)
class Survivor:
    """A descendant of the agent still alive at the deadline."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    comm: str
    cmdline: tuple[str, ...]
    start_ticks: int
    uid: int
    pid_in_namespace: int | None
    #: TCP ports it listens on.
    ports: tuple[int, ...]
    #: Its parent when first seen, before it was reparented.
    original_parent: int | None
    #: Whether its environment still carries ORPHAN_CHECK_RUN (None: unreadable).
    env_marker: bool | None
    #: How it escaped.
    escapes: tuple[Escape, ...]
    #: Which common cleanups would have missed it (`group_kill`, `parent_walk`, ...).
    missed_by: tuple[str, ...]
    #: One line toward the fix per escape.
    hints: tuple[str, ...]

    @property
    def command(self) -> str:
        """Its command line, words joined by spaces (its name when unreadable)."""
        return " ".join(self.cmdline) if self.cmdline else self.comm

    @classmethod
    def from_json(cls, data: Any) -> Survivor:
        d = _obj(data)
        return cls(
            pid=_int(d, "pid"),
            ppid=_int(d, "ppid"),
            pgid=_int(d, "pgid"),
            sid=_int(d, "sid"),
            state=_str(d, "state"),
            comm=_str(d, "comm"),
            cmdline=_strs(d, "cmdline"),
            start_ticks=_int(d, "start_ticks"),
            uid=_int(d, "uid"),
            pid_in_namespace=_opt_int(d, "pid_in_namespace"),
            ports=_ints(d, "ports"),
            original_parent=_opt_int(d, "original_parent"),
            env_marker=_opt_bool(d, "env_marker"),
            escapes=tuple(Escape.from_json(e) for e in _list(d.get("escapes"))),
            missed_by=_strs(d, "missed_by"),
            hints=_strs(d, "hints"),
        )


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a watched port."""

    pid: int
    command: str
    #: Whether it descends from the agent.
    descendant: bool

    @classmethod
    def from_json(cls, data: Any) -> PortHolder:
        d = _obj(data)
        return cls(
            pid=_int(d, "pid"), command=_str(d, "command"), descendant=_bool(d, "descendant")
        )


@dataclass(frozen=True)
class PortVerdict:
    """Whether a watched port went free after the kill, and who held it if not."""

    port: int
    free: bool
    checked_after_kill_ms: int
    holders: tuple[PortHolder, ...]

    @classmethod
    def from_json(cls, data: Any) -> PortVerdict:
        d = _obj(data)
        return cls(
            port=_int(d, "port"),
            free=_bool(d, "free"),
            checked_after_kill_ms=_int(d, "checked_after_kill_ms"),
            holders=tuple(PortHolder.from_json(h) for h in _list(d.get("holders"))),
        )


@dataclass(frozen=True)
class FileChange:
    """A file written in a watched directory after the kill."""

    path: str
    #: `created`, `modified`, `replaced` or `removed`.
    change: str
    #: Surviving processes that likely wrote it.
    writers: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Any) -> FileChange:
        d = _obj(data)
        return cls(path=_str(d, "path"), change=_str(d, "change"), writers=_ints(d, "writers"))


@dataclass(frozen=True)
class SentSignal:
    """A signal the plan sent."""

    signal: str
    #: `agent`, `group` or `member`.
    target: str
    to: int
    at_ms: float
    #: False when the target was already gone.
    delivered: bool

    @classmethod
    def from_json(cls, data: Any) -> SentSignal:
        d = _obj(data)
        return cls(
            signal=_str(d, "signal"),
            target=_str(d, "target"),
            to=_int(d, "to"),
            at_ms=_float(d, "at_ms"),
            delivered=_bool(d, "delivered"),
        )


@dataclass(frozen=True)
class ExitRecord:
    """How a process of the tree ended."""

    at_ms: float
    #: `exit status 0`, `killed by SIGTERM`.
    how: str


@dataclass(frozen=True)
class TimelineEntry:
    """One process of the tree, from first sight to its end."""

    pid: int
    command: str
    original_parent: int | None
    pgid: int | None
    sid: int | None
    first_seen_ms: float | None
    exit: ExitRecord | None
    #: `sentinel`, `parent`, or None while alive.
    reaped_by: str | None
    needed_sigkill: bool
    survived: bool

    @classmethod
    def from_json(cls, data: Any) -> TimelineEntry:
        d = _obj(data)
        e = d.get("exit")
        exit_record = (
            ExitRecord(at_ms=_float(e, "at_ms"), how=_str(e, "how"))
            if isinstance(e, Mapping)
            else None
        )
        return cls(
            pid=_int(d, "pid"),
            command=_str(d, "command"),
            original_parent=_opt_int(d, "original_parent"),
            pgid=_opt_int(d, "pgid"),
            sid=_opt_int(d, "sid"),
            first_seen_ms=_opt_float(d, "first_seen_ms"),
            exit=exit_record,
            reaped_by=_opt_str(d, "reaped_by"),
            needed_sigkill=_bool(d, "needed_sigkill"),
            survived=_bool(d, "survived"),
        )


@dataclass(frozen=True)
class Plan:
    """The kill plan, as the report states it."""

    #: The command-line name: `sigkill`, `term-then-kill=5s`, ...
    name: str
    does: str
    simulates: str


@dataclass(frozen=True)
class Cost:
    """What the tree cost, from its cgroup."""

    cpu_usec: int | None
    memory_bytes: int | None


@dataclass(frozen=True)
class Output:
    """The head and tail of one of the agent's output streams."""

    head: tuple[str, ...]
    tail: tuple[str, ...]
    omitted: int
    total_lines: int

    @property
    def lines(self) -> tuple[str, ...]:
        """Every line kept (head, then tail)."""
        return self.head + self.tail

    @classmethod
    def from_json(cls, data: Any) -> Output:
        d = _obj(data)
        return cls(
            head=_strs(d, "head"),
            tail=_strs(d, "tail"),
            omitted=_int(d, "omitted"),
            total_lines=_int(d, "total_lines"),
        )


@dataclass(frozen=True, repr=False)
class Report:
    """Everything one scenario found, with the text report (`text`) people read."""

    schema_version: int
    #: `clean` or `leak`.
    verdict: str
    command: str
    run_id: str
    plan: Plan
    ready: str
    agent_pid: int
    ready_ms: float
    kill_after_ms: int
    killed_ms: float
    deadline_ms: int | None
    oracles: tuple[str, ...]
    survivors: tuple[Survivor, ...]
    ports: tuple[PortVerdict, ...]
    files: tuple[FileChange, ...]
    signals: tuple[SentSignal, ...]
    agent_needed_sigkill: bool
    timeline: tuple[TimelineEntry, ...]
    timeline_omitted: int
    quiet_after_kill_ms: float | None
    cost: Cost | None
    stdout: Output
    stderr: Output
    #: The report as orphan-check prints it for people.
    text: str = ""
    #: The command's exit code: 0 clean, 1 leak.
    exit_code: int = 0
    #: The whole JSON document, members this package does not know included.
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when nothing survived, every watched port is free and no file was written."""
        return self.verdict == "clean"

    @property
    def leaked(self) -> bool:
        """True when anything survived, a port is held, or files were written after the kill."""
        return not self.clean

    @property
    def headline(self) -> str:
        """The first line of the text report."""
        return self.text.splitlines()[0] if self.text else f"orphan-check: {self.verdict.upper()}"

    def port(self, number: int) -> PortVerdict:
        """The verdict on watched port `number`; `KeyError` when it was not watched."""
        for p in self.ports:
            if p.port == number:
                return p
        raise KeyError(f"port {number} was not watched (watched: {[p.port for p in self.ports]})")

    def assert_clean(self) -> None:
        """Raises `AssertionError` with the text report unless the run was clean."""
        if not self.clean:
            raise AssertionError(self.text or self.headline)

    def assert_leak(self) -> None:
        """Raises `AssertionError` with the text report unless the run leaked."""
        if self.clean:
            raise AssertionError("expected a leak, but:\n" + (self.text or self.headline))

    def __repr__(self) -> str:
        return f"<orphan_check.Report {self.headline.removeprefix('orphan-check: ')}>"


def parse_report(data: Any, *, text: str = "", exit_code: int = 0) -> Report:
    """A `Report` from the parsed JSON document; `BinaryTooOld` when it is not schema v1."""
    d = _obj(data)
    if _str(d, "schema") != SCHEMA:
        raise BinaryTooOld(f"the command wrote no {SCHEMA} document (got {str(data)[:80]!r})")
    version = _int(d, "schema_version", -1)
    if version != SCHEMA_VERSION:
        newer = "upgrade this package" if version > SCHEMA_VERSION else "upgrade the command"
        raise BinaryTooOld(
            f"the command wrote report schema version {version}; this package reads "
            f"version {SCHEMA_VERSION}: {newer}"
        )
    plan = _obj(d.get("plan"))
    cost = d.get("cost")
    return Report(
        schema_version=version,
        verdict=_str(d, "verdict", "leak"),
        command=_str(d, "command"),
        run_id=_str(d, "run_id"),
        plan=Plan(
            name=_str(plan, "name"), does=_str(plan, "does"), simulates=_str(plan, "simulates")
        ),
        ready=_str(d, "ready"),
        agent_pid=_int(d, "agent_pid"),
        ready_ms=_float(d, "ready_ms"),
        kill_after_ms=_int(d, "kill_after_ms"),
        killed_ms=_float(d, "killed_ms"),
        deadline_ms=_opt_int(d, "deadline_ms"),
        oracles=_strs(d, "oracles"),
        survivors=tuple(Survivor.from_json(s) for s in _list(d.get("survivors"))),
        ports=tuple(PortVerdict.from_json(p) for p in _list(d.get("ports"))),
        files=tuple(FileChange.from_json(f) for f in _list(d.get("files"))),
        signals=tuple(SentSignal.from_json(s) for s in _list(d.get("signals"))),
        agent_needed_sigkill=_bool(d, "agent_needed_sigkill"),
        timeline=tuple(TimelineEntry.from_json(t) for t in _list(d.get("timeline"))),
        timeline_omitted=_int(d, "timeline_omitted"),
        quiet_after_kill_ms=_opt_float(d, "quiet_after_kill_ms"),
        cost=(
            Cost(cpu_usec=_opt_int(cost, "cpu_usec"), memory_bytes=_opt_int(cost, "memory_bytes"))
            if isinstance(cost, Mapping)
            else None
        ),
        stdout=Output.from_json(d.get("stdout")),
        stderr=Output.from_json(d.get("stderr")),
        text=text,
        exit_code=exit_code,
        raw=d,
    )
