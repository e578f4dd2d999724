"""The pytest plugin (registered by the package's `pytest11` entry point).

- The `orphan_check` fixture runs scenarios (`orphan_check.run(...)`); every report it
  made is attached to the test's output, so a failing test shows what ran.
- `pytest --orphan-check` (or `orphan_check = true` in the ini file) guards every test:
  the test process becomes a child subreaper, and a test that leaves a process alive
  past a short grace (`--orphan-check-grace`, ini `orphan_check_grace`, 1 s) fails with
  each survivor named (pid, command, how it escaped), which is then killed so the next
  test starts clean. `@pytest.mark.orphan_check(enabled=False)` turns it off for one
  test, `@pytest.mark.orphan_check(grace=5)` gives one test more time. Under
  pytest-xdist each worker guards its own tests.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from . import _run, plans
from ._duration import Seconds, seconds_of
from ._guard import Guard, Leftover
from ._report import Report
from ._run import StrPath
from .plans import KillPlan
from .ready import Ready

GRACE_DEFAULT = 1.0
MARKER = "orphan_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orphan-check", "leaked processes")
    group.addoption(
        "--orphan-check",
        action="store_true",
        dest="orphan_check",
        default=None,
        help="fail every test that leaves a process running (it is then killed)",
    )
    group.addoption(
        "--orphan-check-grace",
        type=float,
        dest="orphan_check_grace",
        default=None,
        metavar="SECONDS",
        help=f"how long a test's processes may take to end after it (default {GRACE_DEFAULT})",
    )
    parser.addini(
        "orphan_check",
        type="bool",
        default=False,
        help="fail every test that leaves a process running",
    )
    parser.addini(
        "orphan_check_grace",
        default=str(GRACE_DEFAULT),
        help="seconds a test's processes may take to end after it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(enabled=True, grace=None): turn the leaked-process guard off for one "
        "test, or give it a longer grace (seconds)",
    )
    enabled = config.getoption("orphan_check") or config.getini("orphan_check")
    if not enabled:
        return
    # An xdist controller runs no test: its workers guard their own.
    controller = getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")
    if controller:
        return
    grace_option = config.getoption("orphan_check_grace")
    try:
        grace = seconds_of(
            float(
                grace_option if grace_option is not None else config.getini("orphan_check_grace")
            ),
            "the orphan-check grace",
        )
    except (TypeError, ValueError) as e:
        raise pytest.UsageError(f"orphan-check: {e}") from None
    try:
        guard = Guard()
    except OSError as e:
        raise pytest.UsageError(f"--orphan-check cannot guard tests here: {e}") from None
    config.pluginmanager.register(GuardPlugin(guard, grace), "orphan_check_guard")


class GuardPlugin:
    """Runs each guarded test's protocol, then checks what it left behind before its
    reports are logged, so a leak fails the test itself."""

    def __init__(self, guard: Guard, grace: float) -> None:
        self.guard = guard
        self.grace = grace

    def _settings(self, item: pytest.Item) -> tuple[bool, float]:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            return True, self.grace
        enabled = bool(marker.kwargs.get("enabled", True))
        grace = marker.kwargs.get("grace")
        return enabled, self.grace if grace is None else seconds_of(grace, "grace")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        enabled, grace = self._settings(item)
        if not enabled:
            return None
        baseline = self.guard.snapshot()
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        leftovers = self.guard.check(baseline, grace)
        if leftovers:
            _fail(reports, _message(leftovers, grace))
        for report in reports:
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, None, None]:
        # What a session-, module- or class-scoped fixture starts lives past the test
        # that first asked for it, by design.
        if getattr(fixturedef, "scope", "function") == "function":
            yield
            return
        before = self.guard.snapshot()
        yield
        self.guard.adopt_as_owned(before)

    def pytest_unconfigure(self) -> None:
        self.guard.reap_adopted()


def _message(leftovers: Sequence[Leftover], grace: float) -> str:
    n = len(leftovers)
    lines = [
        f"orphan-check: this test left {n} process{'es' if n != 1 else ''} running "
        f"{grace:g}s after it ended (now killed):"
    ]
    for x in leftovers:
        lines.append(f"  pid {x.pid:<7} {x.command}")
        lines.append(f"      ppid {x.ppid}, pgid {x.pgid}, sid {x.sid}")
        for e in x.escapes:
            lines.append(f"      escaped: {e}")
        if not x.killed:
            lines.append("      NOT DEAD after SIGKILL")
    return "\n".join(lines)


def _fail(reports: Sequence[pytest.TestReport], message: str) -> None:
    """Fails the test's call report with `message` (or adds it to a failure already
    there); a test that never ran gets it on its teardown."""
    call = next((r for r in reports if r.when == "call"), None)
    if call is not None:
        if call.passed:
            call.outcome = "failed"
            call.longrepr = message
            if hasattr(call, "wasxfail"):
                del call.wasxfail
        else:
            call.sections.append(("orphan-check", message))
        return
    setup = reports[0]
    if setup.failed:
        setup.sections.append(("orphan-check", message))
        return
    teardown = reports[-1]
    teardown.outcome = "failed"
    teardown.longrepr = message


class Scenarios:
    """The `orphan_check` fixture: `run()` a scenario, and every report is shown with
    the test's output when the test fails."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node
        #: The reports of this test's scenarios, in order.
        self.reports: list[Report] = []

    def run(
        self,
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
        """`orphan_check.run(...)`, with the report attached to the test's output."""
        report = _run.run(
            argv,
            ready=ready,
            kill=kill,
            ports=ports,
            deadline=deadline,
            cwd=cwd,
            env=env,
            ready_timeout=ready_timeout,
            kill_after=kill_after,
            port_deadline=port_deadline,
            watch_dirs=watch_dirs,
            timeout=timeout,
        )
        self.reports.append(report)
        self._node.add_report_section(
            "call", f"orphan-check report {len(self.reports)}", report.text
        )
        return report

    def assert_clean(self, argv: Sequence[StrPath], **options: Any) -> Report:
        """`run(argv, **options)`, failing the test with the report unless it was clean."""
        report = self.run(argv, **options)
        report.assert_clean()
        return report

    def assert_leak(self, argv: Sequence[StrPath], **options: Any) -> Report:
        """`run(argv, **options)`, failing the test with the report unless it leaked."""
        report = self.run(argv, **options)
        report.assert_leak()
        return report

    @staticmethod
    def free_port() -> int:
        """A TCP port free on 127.0.0.1 right now."""
        return _run.free_port()


@pytest.fixture
def orphan_check(request: pytest.FixtureRequest) -> Scenarios:
    """Runs orphan-check scenarios: `orphan_check.run([...], ready=..., kill=...)`."""
    node = request.node
    assert isinstance(node, pytest.Item)
    return Scenarios(node)
