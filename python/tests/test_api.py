"""orphan_check.run() over the example agents of fixtures/agents/, whose behaviour
under each plan is measured in fixtures/agents/EXPECTED.md: leaks and clean runs both."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import AGENTS, agent, kinds, run_agent

import orphan_check
from orphan_check import plans, ready


def test_shell_true_leaks_the_server_past_sigterm() -> None:
    # The agent's handler terminates the shell (dash does not forward SIGTERM), so the
    # server, reparented, keeps running and keeps the port.
    report = run_agent("cause4_shell_true.py", kill=plans.SIGTERM)
    assert report.leaked and not report.clean
    assert report.exit_code == 1
    assert report.verdict == "leak"
    assert report.plan.name == "sigterm"
    assert "shell_true" in kinds(report)
    server = report.survivors[0]
    assert "dev_server.py" in server.command
    assert server.pid != report.agent_pid
    held = [p for p in report.ports if not p.free]
    assert held and held[0].holders[0].pid == server.pid
    assert held[0].holders[0].descendant
    assert any(t.pid == server.pid and t.survived for t in report.timeline)
    agent_entry = next(t for t in report.timeline if t.pid == report.agent_pid)
    assert agent_entry.exit is not None and agent_entry.exit.how == "exit status 143"
    with pytest.raises(AssertionError) as raised:
        report.assert_clean()
    # The message is the text report, survivors and hints included.
    assert "SURVIVED" in str(raised.value)
    assert str(server.pid) in str(raised.value)
    assert "hint:" in str(raised.value)
    report.assert_leak()


def test_managed_subprocess_is_clean_on_sigterm() -> None:
    # SIGTERM -> SystemExit -> the `finally` kills the server's group and waits.
    report = run_agent("fix_managed_subprocess.py", kill=plans.SIGTERM)
    report.assert_clean()
    assert report.clean and report.exit_code == 0
    assert report.survivors == ()
    assert all(p.free for p in report.ports)
    assert report.quiet_after_kill_ms is not None
    assert report.signals[0].signal == "SIGTERM" and report.signals[0].delivered
    with pytest.raises(AssertionError, match="expected a leak"):
        report.assert_leak()


def test_sigkill_of_the_agent_alone_orphans_the_server_but_a_group_kill_does_not() -> None:
    # cause 1: the server shares the agent's group and nothing ever signals it.
    leak = run_agent("cause1_no_cleanup.py", kill=plans.SIGKILL)
    assert leak.leaked and leak.survivors
    clean = run_agent("cause1_no_cleanup.py", kill=plans.KILL_GROUP)
    clean.assert_clean()


def test_a_new_session_escapes_the_group_kill() -> None:
    # start_new_session=True takes the server out of the agent's group.
    report = run_agent("fix_managed_subprocess.py", kill=plans.KILL_GROUP)
    assert report.leaked
    assert "new_session" in kinds(report)
    assert "group_kill" in report.survivors[0].missed_by


def test_term_then_kill_is_named_as_the_command_line_names_it() -> None:
    report = run_agent("cause3_sigkill_ungrouped.py", kill=plans.term_then_kill(1.5))
    report.assert_clean()
    assert report.plan.name == "term-then-kill=1.5s"


def test_a_plan_by_its_command_line_name() -> None:
    assert plans.named("sigterm") == plans.SIGTERM
    report = run_agent("cause3_sigkill_ungrouped.py", kill=plans.named("int-group"))
    report.assert_clean()
    assert report.plan.name == "int-group"
    with pytest.raises(orphan_check.HarnessError, match="unknown kill plan"):
        run_agent("cause3_sigkill_ungrouped.py", kill=plans.named("no-such-plan"))


def test_ready_on_a_port() -> None:
    port = orphan_check.free_port()
    report = orphan_check.run(
        agent("cause3_sigkill_ungrouped.py", port),
        ready=ready.port(port),
        kill=plans.SIGTERM,
        ports=[port],
    )
    report.assert_clean()
    assert report.ready.startswith("port") or str(port) in report.ready
    assert report.port(port).free
    with pytest.raises(KeyError):
        report.port(port + 1 if port < 65535 else port - 1)


def test_a_node_agent_leaks_without_detached() -> None:
    report = run_agent("node_no_detached.js", kill=plans.SIGTERM)
    assert report.leaked
    assert any("dev_server.js" in s.command for s in report.survivors)


def test_cwd_and_env_reach_the_agent(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(
        "import os, sys\n"
        "print('ready', os.getcwd(), os.environ['OC_TEST_VALUE'], flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = dict(os.environ, OC_TEST_VALUE="forty-two")
    report = orphan_check.run(
        [sys.executable, str(script)], ready=ready.line("ready"), cwd=tmp_path, env=env
    )
    report.assert_clean()
    assert report.stdout.lines == (f"ready {tmp_path} forty-two",)


def test_a_missing_agent_is_a_harness_error() -> None:
    with pytest.raises(orphan_check.HarnessError) as raised:
        orphan_check.run([str(AGENTS / "no_such_agent")])
    assert raised.value.exit_code == 2
    assert "no_such_agent" in raised.value.message


def test_a_busy_port_is_refused_before_the_start() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(orphan_check.HarnessError, match="already in use"):
            orphan_check.run(agent("cause3_sigkill_ungrouped.py", port), ports=[port])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: orphan_check.run("python3 agent.py"), TypeError),
        (lambda: orphan_check.run([]), ValueError),
        (lambda: orphan_check.run(["true"], ports=[0]), ValueError),
        (lambda: orphan_check.run(["true"], deadline=-1), ValueError),
        (lambda: orphan_check.run(["true"], deadline=0), ValueError),
        (lambda: orphan_check.run(["true"], kill="sigterm"), TypeError),  # type: ignore[arg-type]
        (lambda: orphan_check.run(["true"], ready="port:3000"), TypeError),  # type: ignore[arg-type]
        (lambda: ready.port(0), ValueError),
        (lambda: ready.line(""), ValueError),
        (lambda: plans.named("two words"), ValueError),
        (lambda: plans.term_then_kill(0), ValueError),
    ],
)
def test_bad_input_is_refused_before_anything_runs(call: object, error: type) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]


def _fake_binary(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "orphan-check"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_missing_binary_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(orphan_check.BIN_ENV, str(tmp_path / "nothing-here"))
    with pytest.raises(orphan_check.BinaryNotFound, match="nothing-here"):
        orphan_check.run(["true"])


def test_a_binary_too_old_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path, 'echo "orphan-check 0.0.9"\n')
    monkeypatch.setenv(orphan_check.BIN_ENV, str(fake))
    with pytest.raises(orphan_check.BinaryTooOld, match=r"0\.0\.9.*0\.1\.0"):
        orphan_check.run(["true"])


def test_a_report_of_another_schema_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A command that answers --version but writes a schema this package cannot read.
    fake = _fake_binary(
        tmp_path,
        'if [ "$1" = --version ]; then echo "orphan-check 9.0.0"; exit 0; fi\n'
        'while [ "$1" != --json ]; do shift; done\n'
        'echo \'{"schema": "orphan-check/report", "schema_version": 2}\' > "$2"\n',
    )
    monkeypatch.setenv(orphan_check.BIN_ENV, str(fake))
    with pytest.raises(orphan_check.BinaryTooOld, match=r"version 2.*upgrade this package"):
        orphan_check.run(["true"])


def test_unknown_members_are_ignored_and_missing_ones_get_empty_values() -> None:
    report = run_agent("cause4_shell_true.py", kill=plans.SIGTERM)
    document = json.loads(json.dumps(dict(report.raw)))
    document["a_member_from_the_future"] = {"x": 1}
    document["survivors"][0]["new_field"] = [1, 2]
    document["survivors"][0]["escapes"].append({"kind": "a_new_escape", "detail": "x"})
    del document["timeline"]
    again = orphan_check.parse_report(document)
    assert again.survivors[0].pid == report.survivors[0].pid
    assert again.survivors[0].escapes[-1] == orphan_check.Escape("a_new_escape", {"detail": "x"})
    assert again.timeline == ()
    assert again.leaked


def test_the_package_under_test_is_the_installed_one() -> None:
    if os.environ.get("ORPHAN_CHECK_EXPECT_INSTALLED") != "1":
        pytest.skip("only when the suite runs against an installed wheel")
    assert "site-packages" in orphan_check.__file__
    binary = Path(orphan_check.find_binary())
    assert binary.parent == Path(sys.prefix) / "bin"
    assert orphan_check.__version__ == os.environ["ORPHAN_CHECK_EXPECT_VERSION"]


def test_an_agent_that_exits_by_itself_leaves_its_server_as_cause_1() -> None:
    # No signal at all: the agent finishes and exits; its server is reparented and lives.
    report = run_agent("cause1_no_cleanup.py", "--exit", kill=plans.OWN_EXIT)
    assert report.leaked
    assert report.plan.name == "own-exit"
    assert report.signals == ()
    assert "no_cleanup" in kinds(report)
    assert "cause 1" in report.text


def test_new_plans_are_named_as_the_command_line_names_them() -> None:
    assert plans.docker_stop(2.5).name == "docker-stop=2500ms"
    assert plans.close_stdin_then_kill(1).name == "close-stdin-then-kill=1000ms"
    assert plans.PARENT_DEATH.name == "parent-death"
    assert plans.CLOSE_STDIN.name == "close-stdin"
