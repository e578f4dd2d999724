//! Bad input: each case gets a clear error, and nothing is left running.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use orphan_check::outcome::FailureReason;
use orphan_check::{Error, Fixture, KillPlan, Ready, Scenario};

use crate::common::{fixture, pids_with_env, tag};

/// Runs `cmd` tagged with a unique variable, and checks that after the call nothing
/// carrying the tag is alive.
fn run_tagged(mut scenario_cmd: Command, build: impl FnOnce(Scenario) -> Scenario) -> Error {
    let tag = tag();
    scenario_cmd.env("OC_TEST_TAG", &tag);
    let err = build(Scenario::new(scenario_cmd))
        .run()
        .expect_err("the scenario must fail");
    assert_eq!(
        pids_with_env("OC_TEST_TAG", &tag),
        Default::default(),
        "left running after: {err}"
    );
    err
}

#[test]
fn a_missing_executable_is_not_found() {
    let err = run_tagged(Command::new("no-such-agent-anywhere"), |s| s);
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-agent-anywhere"), "{err}");
    let err = run_tagged(Command::new("/nonexistent/agent"), |s| s);
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]
fn a_file_without_exec_permission_is_not_executable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sh");
    std::fs::write(&path, "#!/bin/sh\necho ready\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = run_tagged(Command::new(&path), |s| s);
    assert!(matches!(err, Error::NotExecutable { .. }), "{err:?}");
}

#[test]
fn a_file_the_kernel_cannot_exec_fails_at_exec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage");
    std::fs::write(&path, [0x7f, b'E', b'L', b'F', 0, 0, 0, 0]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = run_tagged(Command::new(&path), |s| s);
    assert!(
        matches!(err, Error::Launch { stage: "exec", .. }),
        "{err:?}"
    );
}

#[test]
fn a_missing_working_directory_fails_at_chdir() {
    let mut cmd = Fixture::Listener.command();
    cmd.current_dir("/nonexistent/dir");
    let err = run_tagged(cmd, |s| s);
    assert!(matches!(err, Error::Launch { .. }), "{err:?}");
    assert!(err.to_string().contains("working directory"), "{err}");
}

#[test]
fn an_agent_that_exits_before_ready_reports_status_and_output() {
    // Its whole tree is gone before readiness: nothing is left to judge.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo starting; echo oops >&2; exit 3"]);
    let err = run_tagged(cmd, |s| s.ready_when(Ready::stdout_line("ready")));
    match &err {
        Error::ExitedBeforeReady {
            status,
            stdout,
            stderr,
            ..
        } => {
            assert_eq!(status, "exit status 3");
            assert!(stdout.lines().any(|l| l == "starting"), "{stdout}");
            assert!(stderr.lines().any(|l| l == "oops"), "{stderr}");
        }
        other => panic!("wrong error: {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("exit status 3") && text.contains("oops"),
        "{text}"
    );
}

#[test]
fn a_launcher_whose_tree_never_gets_ready_times_out_naming_its_exit() {
    // The agent exits at once but leaves a child: that is no failed start, the wait goes
    // on (any process of the tree could meet the condition) until the timeout, and the
    // error path cleans up the child. (Before, this was "exited before it was ready".)
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 1000 & echo starting; exit 3"]);
    let err = run_tagged(cmd, |s| {
        s.ready_when(Ready::stdout_line("ready"))
            .ready_timeout(Duration::from_millis(300))
    });
    match &err {
        Error::NeverReady { agent_exit, .. } => {
            let exit = agent_exit.as_deref().unwrap_or_default();
            assert!(exit.starts_with("exit status 3 at +"), "{err}");
        }
        other => panic!("wrong error: {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("the agent itself exited, exit status 3"),
        "{err}"
    );
}

#[test]
fn an_agent_that_is_never_ready_times_out_and_is_cleaned_up() {
    let cmd = fixture(Fixture::Listener, &["--quiet"]);
    let err = run_tagged(cmd, |s| {
        s.ready_when(Ready::stdout_line("ready"))
            .ready_timeout(Duration::from_millis(200))
    });
    assert!(matches!(err, Error::NeverReady { .. }), "{err:?}");
    assert!(err.to_string().contains("200ms"), "{err}");
}

#[test]
fn a_port_busy_before_the_start_names_its_holder() {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy = listener.local_addr().unwrap().port();
    let cmd = fixture(Fixture::Listener, &["--port", &busy.to_string()]);
    let err = run_tagged(cmd, |s| s.watch_port(busy));
    match &err {
        Error::PortBusy { port, holders } => {
            assert_eq!(*port, busy);
            assert!(
                holders
                    .iter()
                    .any(|h| h.pid == std::process::id() as i32 && !h.descendant),
                "{holders:?}"
            );
        }
        other => panic!("wrong error: {other:?}"),
    }
    // A readiness port is checked the same way.
    let cmd = fixture(Fixture::Listener, &["--port", &busy.to_string()]);
    let err = run_tagged(cmd, |s| s.ready_when(Ready::port(busy)));
    assert!(matches!(err, Error::PortBusy { .. }), "{err:?}");
}

#[test]
fn zero_and_absurd_deadlines_are_rejected_before_anything_starts() {
    type Build = Box<dyn FnOnce(Scenario) -> Scenario>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "ready_timeout",
            Box::new(|s| s.ready_timeout(Duration::ZERO)),
        ),
        (
            "ready_timeout",
            Box::new(|s| s.ready_timeout(Duration::from_secs(100_000))),
        ),
        (
            "kill_after",
            Box::new(|s| s.kill_after(Duration::from_secs(7200))),
        ),
        (
            "grace",
            Box::new(|s| s.kill(KillPlan::sigterm_then_sigkill(Duration::ZERO))),
        ),
        (
            "Ready::after",
            Box::new(|s| s.ready_when(Ready::after(Duration::from_secs(20)))),
        ),
        (
            "verdict_deadline",
            Box::new(|s| s.verdict_deadline(Duration::from_secs(7200))),
        ),
    ];
    for (what, build) in cases {
        let err = run_tagged(Fixture::Listener.command(), build);
        assert!(
            matches!(err, Error::InvalidDeadline { .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn a_verdict_deadline_over_the_cap_is_a_failure_that_says_so() {
    let outcome = Scenario::new(Fixture::Listener.command())
        .ready_when(Ready::stdout_line("ready"))
        .run()
        .unwrap();
    let two_hours = Duration::from_secs(7200);
    let failure = outcome.check_no_survivors(two_hours).unwrap_err();
    assert_eq!(failure.reason, FailureReason::InvalidDeadline(two_hours));
    assert!(
        failure.to_string().contains("invalid deadline"),
        "{failure}"
    );
    // Asking properly still works on the same outcome.
    outcome.assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn a_port_that_someone_else_holds_after_the_kill_names_a_stranger() {
    // The agent listens on nothing; a process outside the tree (this test) holds the
    // watched port after the start. The verdict blames the holder, not the agent.
    let p = orphan_check::free_port();
    let outcome = Scenario::new(Fixture::Listener.command())
        .ready_when(Ready::stdout_line("ready"))
        .watch_port(p)
        .run()
        .unwrap();
    let stranger = std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    let failure = outcome
        .check_port_free(p, Duration::from_millis(100))
        .unwrap_err();
    let verdict = &failure.report.ports[0];
    assert!(!verdict.free);
    assert!(verdict.holders.iter().all(|h| !h.descendant), "{verdict:?}");
    assert!(
        failure.to_string().contains("NOT a descendant"),
        "{failure}"
    );
    drop(stranger);
    outcome.assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn a_fixture_that_never_held_its_port_is_caught_at_readiness() {
    // The flake this guards against: another process takes the port after the harness
    // checked it free and before the fixture binds; the fixture dies of EADDRINUSE (or
    // an agent's wait-for-port connects to the stranger), and a test expecting a leak
    // sees a clean tree. Here the stranger is this test: it binds the watched port once
    // the agent runs (so after the check), then makes the agent ready.
    let p = orphan_check::free_port();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let tag = tag();
    let mut cmd = Command::new("sleep");
    cmd.arg("1000").env("OC_TEST_TAG", &tag);
    let stranger = {
        let (ready, tag) = (ready.clone(), tag.clone());
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + Duration::from_secs(20);
            let mut wait = Duration::from_millis(1);
            while pids_with_env("OC_TEST_TAG", &tag).is_empty() {
                assert!(std::time::Instant::now() < until, "the agent never started");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(20));
            }
            let l = std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
            std::fs::write(&ready, "").unwrap();
            l
        })
    };
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::file(&ready))
        .watch_port(p)
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    let held = stranger.join().unwrap();
    let at = outcome.port_at_ready(p).expect("a watched port");
    assert!(!at.held_by_tree, "{at:?}");
    // The stranger is named. (A sentinel another test thread forks while the stranger's
    // socket is open gets a copy of it until it closes what it inherited, so it can be
    // named too: it is not a descendant of this scenario either.)
    assert!(
        at.holders
            .iter()
            .any(|h| h.pid == std::process::id() as i32),
        "{at:?}"
    );
    assert!(at.holders.iter().all(|h| !h.descendant), "{at:?}");
    let report = outcome.report();
    assert_eq!(report.ports_at_ready.len(), 1);
    assert!(!report.ports_at_ready[0].held_by_tree);
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "{:<10} {p:>5}  no process of the tree listened on it at readiness",
            "NOT HELD"
        )),
        "{text}"
    );
    // The suite's check fails loudly, naming the reason, not the verdict it would skew.
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::common::expect_held_at_ready(&outcome, p)
    }))
    .expect_err("a port the fixture never held is caught");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains(&format!("the fixture never held its port {p}")),
        "{message}"
    );
    drop(held);
    outcome.assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn a_fixture_that_holds_its_port_is_seen_holding_it_at_readiness() {
    let p = orphan_check::free_port();
    let mut cmd = Fixture::Listener.command();
    cmd.args(["--port", &p.to_string()]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .watch_port(p)
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    let at = outcome.port_at_ready(p).expect("a watched port");
    assert!(at.held_by_tree, "{at:?}");
    assert_eq!(
        at.holders
            .iter()
            .map(|h| (h.pid, h.descendant))
            .collect::<Vec<_>>(),
        [(outcome.agent_pid(), true)]
    );
    crate::common::expect_held_at_ready(&outcome, p);
    assert!(!outcome.report().to_string().contains("NOT HELD"));
    outcome.assert_no_survivors(Duration::from_secs(2));
}
