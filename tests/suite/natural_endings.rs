//! Endings that are not kills: the agent's own exit, a launcher that exits before it is
//! ready, end of file on stdin; and the survivors that hold the agent's pipes.
//!
//! Each cell states its verdict, derived from how the kernel and the shell behave:
//!
//! - A process that exits sends nothing to its children; they are reparented (here, to
//!   the sentinel) and live on. So an agent that exits without stopping its server leaks
//!   it (cause 1; cause 2 when it exits by an exception), and one that kills and reaps
//!   its child before it exits leaves nothing.
//! - A launcher (`sh -c '… SERVER & exit N'`) exits at once; its server is reparented.
//!   Started through `setsid`, the server is in a session and group of its own: no plan
//!   reaches it, not even a group plan. Otherwise (plain, or `nohup`) it stays in the
//!   agent's process group, which outlives its leader while a member lives: a pid plan
//!   finds nothing to signal (the agent is gone), a group plan reaches the server member
//!   by member. `nohup` sets SIGHUP to ignored, so a SIGHUP to the group leaves it.
//!   (The server starts only once the launcher is reaped, so its exit always comes
//!   first; `setsid CMD` typed as the agent is tested through the CLI.)
//! - A read of a pipe returns end of file once no process holds a write end. The harness
//!   holds the only write end of a [`Stdin::Pipe`]; an agent holds the only write end of
//!   its child's stdin pipe, and the kernel closes it when the agent dies. A stdio server
//!   that exits on end of file leaves nothing; one that ignores it survives.
//! - A process started with a pipe as stdout or stderr holds it until it exits or closes
//!   it; a survivor that inherited the agent's stdout is named as holding it.
//!
//! The listener holds the cell's port exactly while it lives.

use std::process::Command;
use std::time::Duration;

use orphan_check::fixture::ExampleAgent;
use orphan_check::kill::SignalForwarder;
use orphan_check::outcome::FailureReason;
use orphan_check::report::Stream;
use orphan_check::scenario::Stdin;
use orphan_check::signal::{Recipient, Signal};
use orphan_check::{Error, Escape, Fixture, KillPlan, Ready, Scenario, Verdict};

use crate::common::{pids_with_env, run_with_port, tag, DEADLINE};

fn python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 is not installed");
    }
    ok
}

fn agent_script(name: &str) -> String {
    format!("{}/fixtures/agents/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn listener() -> String {
    Fixture::Listener.path().display().to_string()
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

// The agent's own exit.

#[test]
fn own_exit_cause1_agent_that_exits_leaves_its_server_as_cause_1() {
    if !python() {
        return;
    }
    let (outcome, p) = run_with_port(|p| {
        let mut cmd = ExampleAgent::Cause1NoCleanup.command();
        cmd.args(["--port", &p.to_string(), "--exit"]);
        Scenario::new(cmd)
            .ready_when(Ready::stdout_line("ready"))
            .ready_timeout(Duration::from_secs(20))
            .kill(KillPlan::own_exit())
            .watch_port(p)
    });
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert_eq!(survivors[0].escapes, [Escape::NoCleanup], "{report}");
    assert_eq!(survivors[0].escapes[0].cause(), Some(1));
    assert!(!outcome.port_verdict(p, DEADLINE).free, "{report}");
    // No signal was sent; t=0 of every deadline is the agent's reap.
    let exit = outcome.agent_exit().expect("the agent exited");
    assert_eq!(exit.code, Some(0));
    assert!(!exit.before_ready, "{report}");
    assert!(report.signals.is_empty(), "{report}");
    assert_eq!(report.killed_ms, exit.at_ms, "{report}");
    let text = report.to_string();
    assert!(text.contains("(cause 1)"), "{text}");
    assert!(
        text.contains("no signal: the agent exited by itself"),
        "{text}"
    );
}

#[test]
fn own_exit_cause2_an_exception_leaves_its_server_as_cause_2() {
    if !python() {
        return;
    }
    let (outcome, _) = run_with_port(|p| {
        let mut cmd = ExampleAgent::Cause2ExceptionPath.command();
        cmd.args(["--port", &p.to_string()]);
        Scenario::new(cmd)
            .ready_when(Ready::stdout_line("ready"))
            .ready_timeout(Duration::from_secs(20))
            .kill(KillPlan::own_exit())
            .watch_port(p)
    });
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert_eq!(
        survivors[0].escapes,
        [Escape::ExceptionPath {
            agent_status: "exit status 1".into()
        }],
        "{report}"
    );
    assert_eq!(survivors[0].escapes[0].cause(), Some(2));
    assert!(report.to_string().contains("(cause 2)"));
}

#[test]
fn own_exit_an_agent_that_stops_and_reaps_its_child_is_clean() {
    let script = format!("{} --port 0 & kill $!; wait", listener());
    let outcome = Scenario::new(sh(&script))
        .kill(KillPlan::own_exit())
        .run()
        .unwrap();
    outcome.assert_no_survivors(DEADLINE);
    assert_eq!(outcome.report().verdict, Verdict::Clean);
}

#[test]
fn own_exit_an_agent_that_never_exits_did_not_finish_and_is_cleaned_up() {
    let tag = tag();
    let mut cmd = Fixture::Listener.command();
    cmd.args(["--port", "0"]).env("OC_TEST_TAG", &tag);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::own_exit())
        .exit_timeout(Duration::from_millis(300))
        .run()
        .unwrap();
    // The tree is killed before `run` returns: nothing carries the tag any more.
    assert_eq!(pids_with_env("OC_TEST_TAG", &tag), Default::default());
    assert!(outcome.did_not_finish());
    let failure = outcome.check_no_survivors(DEADLINE).unwrap_err();
    assert_eq!(
        failure.reason,
        FailureReason::DidNotFinish(Duration::from_millis(300))
    );
    let report = outcome.report();
    assert_eq!(report.verdict, Verdict::DidNotFinish);
    assert!(report.is_leak(), "never clean");
    assert!(
        report
            .timeline
            .iter()
            .any(|t| t.pid == outcome.agent_pid() && t.needed_sigkill),
        "{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("DID NOT FINISH") && text.contains("within 300ms"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["verdict"], "did_not_finish");
    assert_eq!(json["exit_timeout_ms"], 300);
}

#[test]
fn own_exit_a_signal_forwarded_before_the_start_reaches_the_agent() {
    // A runner's SIGTERM that comes while the scenario starts is kept, not lost: the
    // listener dies of it (default action) instead of running into the exit timeout.
    let forwarder = SignalForwarder::new();
    assert!(forwarder.forward(Signal::Term));
    let outcome = Scenario::new(Fixture::Listener.command())
        .kill(KillPlan::own_exit())
        .exit_timeout(Duration::from_secs(20))
        .forward_signals(&forwarder)
        .run()
        .unwrap();
    assert!(!outcome.did_not_finish());
    assert_eq!(outcome.agent_exit().unwrap().signal, Some("SIGTERM"));
    let report = outcome.report();
    assert!(
        report
            .signals
            .iter()
            .any(|s| s.target == Recipient::Forwarded && s.signal == Signal::Term && s.delivered),
        "{report}"
    );
    outcome.assert_no_survivors(DEADLINE);
    // The scenario is over: nothing takes signals any more.
    assert!(!forwarder.forward(Signal::Term));
}

// Launchers that exit before they are ready.

/// Runs `script(listener, port)` as the agent, ready when the port listens.
fn launcher(script: impl Fn(&str, u16) -> Command, plan: KillPlan) -> orphan_check::Outcome {
    let (outcome, _) = run_with_port(|p| {
        Scenario::new(script(&listener(), p))
            .ready_when(Ready::port(p))
            .kill(plan)
    });
    outcome
}

/// `sh -c '(…; exec SERVER) & exit CODE'`, where the server starts only once the
/// launcher is gone (`kill -0 $$` fails once the sentinel reaped it): the launcher's exit
/// always comes before readiness, however the scheduler orders the two processes.
fn launcher_script(server: &str, code: i32) -> Command {
    sh(&format!(
        "(while kill -0 $$ 2>/dev/null; do :; done; exec {server}) & exit {code}"
    ))
}

/// A launcher that leaves its server in a new session (`setsid` in a process that leads
/// no group calls setsid() itself and execs) and exits 0.
fn setsid_launcher(l: &str, p: u16) -> Command {
    launcher_script(&format!("setsid {l} --port {p}"), 0)
}

/// `nohup SERVER &`: SIGHUP ignored, the server in the launcher's group.
fn nohup_launcher(l: &str, p: u16) -> Command {
    launcher_script(&format!("nohup {l} --port {p}"), 0)
}

/// A launcher that starts its server, then fails.
fn failing_launcher(l: &str, p: u16) -> Command {
    launcher_script(&format!("{l} --port {p}"), 3)
}

/// The one survivor of a launcher, and checks common to every leaking launcher cell.
fn left_by_launcher(outcome: &orphan_check::Outcome, status: &str) -> orphan_check::Survivor {
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    let s = survivors[0].clone();
    assert_eq!(s.process.comm, "listener", "{report}");
    assert!(
        s.escapes.contains(&Escape::LauncherExited {
            agent_status: status.into()
        }),
        "{report}"
    );
    // Not cause 1, 2 or 3: the launcher meant to leave it.
    assert!(s.escapes.iter().all(|e| e.cause().is_none()), "{report}");
    let exit = outcome.agent_exit().expect("the launcher exited");
    assert!(exit.before_ready, "{report}");
    assert_eq!(exit.how, status);
    let text = report.to_string();
    let exited = text.find("  exited   the agent itself").expect("exit line");
    assert!(exited < text.find("  ready    ").unwrap(), "{text}");
    s
}

#[test]
fn launcher_setsid_sigkill_leaks_the_server_with_nothing_to_signal() {
    let outcome = launcher(setsid_launcher, KillPlan::sigkill());
    let s = left_by_launcher(&outcome, "exit status 0");
    assert!(s.escapes.contains(&Escape::NewSession));
    let report = outcome.report();
    assert!(
        report.signals.iter().all(|s| !s.delivered),
        "nothing to signal: {report}"
    );
    assert!(report.to_string().contains("nothing to signal"));
}

#[test]
fn launcher_setsid_kill_group_leaks_the_server_out_of_the_group() {
    let outcome = launcher(setsid_launcher, KillPlan::sigkill_group());
    let s = left_by_launcher(&outcome, "exit status 0");
    assert!(s.escapes.contains(&Escape::NewSession));
    assert_ne!(s.process.pgid, outcome.agent_pid());
}

#[test]
fn launcher_nohup_sigkill_leaks_the_server() {
    let outcome = launcher(nohup_launcher, KillPlan::sigkill());
    let s = left_by_launcher(&outcome, "exit status 0");
    assert_eq!(s.process.pgid, outcome.agent_pid(), "still in the group");
}

#[test]
fn launcher_nohup_kill_group_reaches_the_server_member_by_member() {
    let outcome = launcher(nohup_launcher, KillPlan::sigkill_group());
    outcome.assert_no_survivors(DEADLINE);
    let report = outcome.report();
    assert!(
        report
            .signals
            .iter()
            .any(|s| s.target == Recipient::Member && s.delivered),
        "{report}"
    );
}

#[test]
fn launcher_nohup_hup_group_leaves_the_server_that_ignores_sighup() {
    let outcome = launcher(nohup_launcher, KillPlan::sighup_group());
    let s = left_by_launcher(&outcome, "exit status 0");
    assert!(
        s.escapes.contains(&Escape::SignalIgnored {
            signal: Signal::Hup
        }),
        "{:?}",
        s.escapes
    );
}

#[test]
fn launcher_failing_sigkill_leaks_the_server_naming_the_status() {
    let outcome = launcher(failing_launcher, KillPlan::sigkill());
    left_by_launcher(&outcome, "exit status 3");
}

#[test]
fn launcher_readiness_by_a_line_its_server_writes_after_it_exited() {
    // The server writes its ready line to the stdout it inherited, after the launcher
    // exited: the scenario is judged, not refused. (Whether the report calls it a
    // launcher's leftover or cause 2 depends on whether the harness read the exit before
    // the line; both arrive within a millisecond, so only the verdict is asserted.)
    let (outcome, _) = run_with_port(|p| {
        Scenario::new(failing_launcher(&listener(), p))
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill())
    });
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert_eq!(survivors[0].process.comm, "listener", "{report}");
    assert_eq!(outcome.agent_exit().unwrap().code, Some(3));
    assert!(report.is_leak());
}

#[test]
fn launcher_failing_kill_group_is_clean() {
    let outcome = launcher(failing_launcher, KillPlan::sigkill_group());
    outcome.assert_no_survivors(DEADLINE);
}

#[test]
fn launcher_whose_tree_is_gone_is_exited_before_ready() {
    let err = Scenario::new(sh("exit 0"))
        .ready_when(Ready::stdout_line("ready"))
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::ExitedBeforeReady { .. }), "{err:?}");
}

// What holds the agent's pipes.

#[test]
fn pipes_a_survivor_that_inherited_stdout_is_named_as_holding_it() {
    let outcome = launcher(nohup_launcher, KillPlan::sigkill());
    let s = left_by_launcher(&outcome, "exit status 0");
    assert!(
        s.holds_pipes.contains(&Stream::Stdout),
        "{:?}",
        s.holds_pipes
    );
    assert!(
        s.holds_pipes.contains(&Stream::Stderr),
        "{:?}",
        s.holds_pipes
    );
    let text = outcome.report().to_string();
    assert!(
        text.contains("holds the agent's stdout open: a caller that reads it to EOF hangs"),
        "{text}"
    );
}

#[test]
fn pipes_a_survivor_with_its_output_redirected_holds_none() {
    let outcome = launcher(
        |l, p| launcher_script(&format!("{l} --port {p} >/dev/null 2>&1"), 0),
        KillPlan::sigkill(),
    );
    let s = left_by_launcher(&outcome, "exit status 0");
    assert!(s.holds_pipes.is_empty(), "{:?}", s.holds_pipes);
}

// End of file on stdin.

fn stdio_server(ignore_eof: bool) -> Command {
    let mut c = Command::new("python3");
    c.arg(agent_script("stdio_server.py"));
    if ignore_eof {
        c.arg("--ignore-eof");
    }
    c
}

fn stdio_client(ignore_eof: bool) -> Command {
    let mut c = Command::new("python3");
    c.arg(agent_script("stdio_client.py"));
    if ignore_eof {
        c.arg("--ignore-eof");
    }
    c
}

fn stdio_run(cmd: Command, ready: &str, plan: KillPlan) -> orphan_check::Outcome {
    Scenario::new(cmd)
        .ready_when(Ready::stdout_line(ready))
        .ready_timeout(Duration::from_secs(20))
        .kill(plan)
        .run()
        .unwrap()
}

#[test]
fn stdin_server_close_stdin_exits_on_eof() {
    if !python() {
        return;
    }
    let outcome = stdio_run(stdio_server(false), "server-ready", KillPlan::close_stdin());
    outcome.assert_no_survivors(Duration::from_secs(5));
    let report = outcome.report();
    assert_eq!(report.stdin, "pipe");
    assert!(report.stdin_closed_ms.is_some(), "{report}");
    assert_eq!(outcome.agent_exit().unwrap().code, Some(0));
}

#[test]
fn stdin_server_ignoring_eof_close_stdin_survives_named_with_a_hint() {
    if !python() {
        return;
    }
    let outcome = stdio_run(stdio_server(true), "server-ready", KillPlan::close_stdin());
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert_eq!(survivors[0].pid(), outcome.agent_pid());
    assert!(
        survivors[0].escapes.contains(&Escape::StdinEofIgnored),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("ignored end of file on stdin"), "{text}");
    assert!(text.contains("treat EOF as shutdown"), "{text}");
}

#[test]
fn stdin_server_ignoring_eof_close_stdin_then_kill_needs_sigkill() {
    if !python() {
        return;
    }
    let outcome = stdio_run(
        stdio_server(true),
        "server-ready",
        KillPlan::close_stdin_then_sigkill(Duration::from_millis(300)),
    );
    outcome.assert_no_survivors(DEADLINE);
    assert!(outcome.plan_record().agent_needed_sigkill);
}

#[test]
fn stdin_server_sigkill_with_a_stdin_pipe_is_clean() {
    if !python() {
        return;
    }
    let outcome = Scenario::new(stdio_server(true))
        .ready_when(Ready::stdout_line("server-ready"))
        .ready_timeout(Duration::from_secs(20))
        .stdin(Stdin::Pipe)
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    outcome.assert_no_survivors(DEADLINE);
}

#[test]
fn stdin_server_own_exit_with_stdin_null_reads_eof_at_once() {
    if !python() {
        return;
    }
    let outcome = stdio_run(stdio_server(false), "server-ready", KillPlan::own_exit());
    outcome.assert_no_survivors(DEADLINE);
    assert_eq!(outcome.report().stdin, "null");
}

#[test]
fn stdin_client_sigkill_its_server_reads_eof_and_exits() {
    if !python() {
        return;
    }
    let outcome = stdio_run(stdio_client(false), "answer hello", KillPlan::sigkill());
    outcome.assert_no_survivors(Duration::from_secs(5));
}

#[test]
fn stdin_client_sigkill_its_server_ignoring_eof_survives_named() {
    if !python() {
        return;
    }
    let outcome = stdio_run(stdio_client(true), "answer hello", KillPlan::sigkill());
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert!(
        survivors[0].escapes.contains(&Escape::StdinEofIgnored),
        "{report}"
    );
}

#[test]
fn stdin_client_close_stdin_flags_only_the_reader_without_a_writer() {
    if !python() {
        return;
    }
    // The client never reads its stdin: closing it changes nothing, both live on. The
    // client's stdin has no writer left; the server's has one (the client).
    let outcome = stdio_run(stdio_client(false), "answer hello", KillPlan::close_stdin());
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 2, "{report}");
    for s in &survivors {
        let flagged = s.escapes.contains(&Escape::StdinEofIgnored);
        assert_eq!(flagged, s.pid() == outcome.agent_pid(), "{report}");
    }
}

#[test]
fn stdin_null_cannot_be_closed() {
    let err = Scenario::new(Fixture::Listener.command())
        .stdin(Stdin::Null)
        .kill(KillPlan::close_stdin())
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCommand(_)), "{err:?}");
    assert!(err.to_string().contains("Stdin::Pipe"), "{err}");
}
