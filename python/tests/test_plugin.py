"""The pytest plugin, run in a child pytest (pytester): the per-test guard fails exactly
the tests that leave a process alive, names each survivor and how it escaped, kills
it, and never takes an exit status from the test's own code; the fixture shows its
reports in the failure output.

Expected verdicts follow from how the kernel reparents orphans: pytest, a child
subreaper, adopts every orphan of its tree, so a process started in a new session, in
a new group, or by a shell that exited (double fork) is still found; a process that
ended before the test did is not a leftover.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AGENTS

pytest_plugins = ["pytester"]

LEAKY = """
import os, subprocess, sys, pytest

def record(name, pid):
    with open(os.path.join(os.environ["OC_PIDS"], name), "w") as f:
        f.write(str(pid))

def test_clean_popen():
    p = subprocess.Popen(["sleep", "60"])
    p.terminate()
    assert p.wait() == -15

def test_leaks_a_new_session():
    p = subprocess.Popen(["sleep", "61"], start_new_session=True)
    record("session", p.pid)

def test_leaks_a_new_group():
    p = subprocess.Popen(["sleep", "62"], preexec_fn=os.setpgrp)
    record("group", p.pid)

def test_leaks_by_double_fork():
    out = subprocess.run(["sh", "-c", "sleep 63 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    record("daemon", int(out.stdout))

def test_a_child_that_ends_in_time_is_fine():
    subprocess.run(["sh", "-c", "(exec true) & wait"], check=True)

@pytest.mark.orphan_check(enabled=False)
def test_guard_off_for_this_one():
    p = subprocess.Popen(["sleep", "64"], start_new_session=True)
    record("unguarded", p.pid)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _pids(d: Path) -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in d.iterdir()}


@pytest.fixture
def pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory the inner tests write their children's pids to; whatever is still
    alive at the end (the unguarded test's child) is killed here, by pid."""
    d = tmp_path / "pids"
    d.mkdir()
    monkeypatch.setenv("OC_PIDS", str(d))
    yield d
    for pid in _pids(d).values():
        if _alive(pid):
            os.kill(pid, 9)


def test_the_guard_fails_exactly_the_leaking_tests(pytester: pytest.Pytester, pids: Path) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest_subprocess("--orphan-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_leaky.py::test_leaks_a_new_session*",
            "FAILED test_leaky.py::test_leaks_a_new_group*",
            "FAILED test_leaky.py::test_leaks_by_double_fork*",
        ],
        consecutive=False,
    )
    found = _pids(pids)
    out = result.stdout.str()
    # Each survivor is named with its pid, its command and how it escaped.
    for name, command, escape in [
        ("session", "sleep 61", "new session (setsid)"),
        ("group", "sleep 62", "new process group (setpgid)"),
        ("daemon", "sleep 63", "double fork"),
    ]:
        pid = found[name]
        block = out[out.index(f"  pid {pid} ") :].split("\n__")[0].split("\n==")[0]
        assert block.splitlines()[0].split(maxsplit=2)[2] == command, block
        assert f"escaped: {escape}" in block, block
        # ... and killed, so the next test starts clean.
        assert not _alive(pid), f"{name} ({pid}) still alive"
    assert "left 1 process running" in out
    # The unguarded test's child was left alone.
    assert _alive(found["unguarded"])


def test_without_the_option_nothing_is_guarded(pytester: pytest.Pytester, pids: Path) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_the_ini_setting_turns_the_guard_on(pytester: pytest.Pytester, pids: Path) -> None:
    pytester.makeini("[pytest]\norphan_check = true\n")
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3)


def test_under_xdist_each_worker_guards_its_tests(pytester: pytest.Pytester, pids: Path) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest_subprocess("--orphan-check", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(["*new session (setsid)*", "*double fork*"], consecutive=False)
    for name in ("session", "group", "daemon"):
        assert not _alive(_pids(pids)[name])


def test_exit_statuses_stay_with_the_code_that_waits_for_them(pytester: pytest.Pytester) -> None:
    # A Popen the test holds exits (a zombie) before the test ends: the guard must not
    # reap it, or wait() would find no child and report 0. An orphan it adopted (the
    # shell's background child, ended in time) is reaped by pid: no zombie stays.
    pytester.makepyfile(
        test_status="""
import os, subprocess

HELD = {}

def test_start_a_child_that_exits_with_7():
    p = subprocess.Popen(["sh", "-c", "exit 7"])
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    HELD["p"] = p

def test_its_status_is_still_there():
    assert HELD["p"].wait() == 7

def test_an_adopted_orphan_that_ended_is_reaped():
    subprocess.run(["sh", "-c", "sh -c 'exit 3' & exit 0"], check=True)

def test_no_zombie_is_left():
    me = os.getpid()
    kids = []
    for tid in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{tid}/children") as f:
            kids += f.read().split()
    states = []
    for kid in kids:
        with open(f"/proc/{kid}/stat") as f:
            states.append(f.read().split(")")[-1].split()[0])
    assert "Z" not in states, list(zip(kids, states))
"""
    )
    result = pytester.runpytest_subprocess("--orphan-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_wider_fixtures_may_keep_their_processes(pytester: pytest.Pytester) -> None:
    # A session fixture set up lazily by the first test that asks for it starts a
    # server that lives until the session ends: that is no test's leak. A function
    # fixture that forgets to stop its process is.
    pytester.makepyfile(
        test_fixtures="""
import subprocess, pytest

@pytest.fixture(scope="session")
def server():
    p = subprocess.Popen(["sleep", "70"])
    yield p
    p.kill()
    p.wait()

@pytest.fixture
def forgetful():
    yield subprocess.Popen(["sleep", "71"], start_new_session=True)

def test_first_user(server):
    assert server.poll() is None

def test_second_user(server):
    assert server.poll() is None

def test_forgetful_fixture(forgetful):
    pass
"""
    )
    result = pytester.runpytest_subprocess("--orphan-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_fixtures.py::test_forgetful_fixture*"])
    assert "sleep 70" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*sleep 71*"])


def test_the_fixture_shows_its_report_when_a_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"AGENTS = {str(AGENTS)!r}\n")
    pytester.makepyfile(
        test_scenarios="""
import sys
from conftest import AGENTS
from orphan_check import plans, ready

def _argv(orphan_check, name):
    port = orphan_check.free_port()
    return [sys.executable, f"{AGENTS}/{name}", "--port", str(port)], port

def test_shell_true_cleans_up(orphan_check):
    argv, port = _argv(orphan_check, "cause4_shell_true.py")
    orphan_check.assert_clean(argv, ready=ready.line("ready"), kill=plans.SIGTERM, ports=[port])

def test_managed_subprocess_cleans_up(orphan_check):
    argv, port = _argv(orphan_check, "fix_managed_subprocess.py")
    report = orphan_check.assert_clean(argv, ready=ready.line("ready"), kill=plans.SIGTERM, ports=[port])
    assert orphan_check.reports == [report]
"""
    )
    result = pytester.runpytest_subprocess("--orphan-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: orphan-check: LEAK: 1 process survived*",
            "*SURVIVED*dev_server.py*",
            "*escaped: shell=True*",
            "*Captured orphan-check report 1 call*",
        ],
        consecutive=False,
    )


def test_the_grace_and_a_failure_of_the_test_itself(pytester: pytest.Pytester, pids: Path) -> None:
    # `cat` ends as soon as its stdin closes, which the test does without waiting: gone
    # within the grace, not a leftover. With a grace of 10 ms a process that lives on
    # (`sleep`) fails the test; a test that fails by itself and leaks shows both.
    pytester.makepyfile(
        test_grace="""
import os, subprocess, pytest

def record(name, pid):
    with open(os.path.join(os.environ["OC_PIDS"], name), "w") as f:
        f.write(str(pid))

def test_a_child_ending_after_the_test_within_the_grace():
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    cat.stdin.close()

@pytest.mark.orphan_check(grace=0.01)
def test_a_short_grace():
    p = subprocess.Popen(["sleep", "65"], start_new_session=True)
    record("short", p.pid)

def test_fails_and_leaks():
    p = subprocess.Popen(["sleep", "66"], start_new_session=True)
    record("both", p.pid)
    assert 1 == 2
"""
    )
    result = pytester.runpytest_subprocess("--orphan-check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*left 1 process running 0.01s after it ended*",
            "*sleep 65*",
            "*assert 1 == 2*",
            "*- orphan-check -*",
            "*sleep 66*",
        ],
        consecutive=False,
    )
    found = _pids(pids)
    assert not _alive(found["short"])
    assert not _alive(found["both"])


def test_the_guard_says_why_it_cannot_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--orphan-check", "--orphan-check-grace", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*orphan-check*must not be negative*"])


assert sys.platform.startswith("linux")
