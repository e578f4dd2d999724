//! The report looks at everything it shows itself: what it says does not depend on
//! which verdicts were asked before it, and the harness's own cleanup does not turn a
//! leak into "clean".

use std::process::Command;
use std::time::Duration;

use orphan_check::{KillPlan, Ready, Report, Scenario, Verdict};

use crate::common::{expect_held_at_ready, holding_port_after_sigterm, run_with_port, DEADLINE};

/// A slow port holder that keeps its port after SIGTERM while it lives.
fn holding_a_port() -> (orphan_check::Outcome, u16) {
    let (outcome, port) = run_with_port(holding_port_after_sigterm);
    expect_held_at_ready(&outcome, port);
    (outcome, port)
}

/// The report's verdict, survivors and ports: the agent survived and holds `port`.
#[track_caller]
fn shows_the_holder(report: &Report, agent: i32, port: u16) {
    assert_eq!(report.verdict, Verdict::Leak, "{report}");
    let survivors: Vec<i32> = report.survivors.iter().map(|s| s.pid()).collect();
    assert_eq!(survivors, [agent], "{report}");
    assert_eq!(report.ports.len(), 1, "{report}");
    let verdict = &report.ports[0];
    assert_eq!(verdict.port, port);
    assert!(!verdict.free, "{report}");
    let holders: Vec<i32> = verdict.holders.iter().map(|h| h.pid).collect();
    assert_eq!(holders, [agent], "{report}");
}

#[test]
fn the_report_judges_every_watched_port_whether_or_not_a_verdict_asked() {
    let (outcome, port) = holding_a_port();
    let agent = outcome.agent_pid();
    // No verdict yet: the report looks at the port itself.
    shows_the_holder(&outcome.report(), agent, port);
    // Verdicts about one part each, then the report again: the same answer.
    assert_eq!(outcome.survivors_after(DEADLINE).len(), 1);
    shows_the_holder(&outcome.report(), agent, port);
    assert!(!outcome.port_verdict(port, DEADLINE).free);
    shows_the_holder(&outcome.report(), agent, port);
}

#[test]
fn the_harness_kill_does_not_make_a_leak_clean() {
    let (outcome, port) = holding_a_port();
    let agent = outcome.agent_pid();
    // No verdict was asked before the cleanup: the report still shows what was left.
    assert!(outcome.kill_remaining(Duration::from_secs(10)).is_some());
    shows_the_holder(&outcome.report(), agent, port);
    // The verdicts answer from the same look.
    assert_eq!(outcome.survivors_after(DEADLINE).len(), 1);
    let failure = outcome.check_port_free(port, DEADLINE).unwrap_err();
    shows_the_holder(&failure.report, agent, port);
}

#[test]
fn the_report_lists_writes_under_every_watched_dir_whichever_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let gate = dir.path().join("gate");
    let made = Command::new("mkfifo").arg(&gate).status().unwrap();
    assert!(made.success());
    // The agent ignores SIGTERM, waits for the test to open the gate, writes one file
    // in each directory and exits.
    let mut agent = Command::new("sh");
    agent
        .args([
            "-c",
            r#"trap '' TERM; echo ready; read go < "$1"; echo b > "$3/written"; echo a > "$2/written""#,
            "sh",
        ])
        .args([&gate, &a, &b]);
    let outcome = Scenario::new(agent)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .watch_dir(&a)
        .watch_dir(&b)
        .run()
        .unwrap();
    // Opening the FIFO for writing waits for the agent to open it for reading.
    std::fs::write(&gate, "go\n").unwrap();
    let written = |report: &Report| -> Vec<String> {
        let mut paths: Vec<String> = report
            .files
            .iter()
            .map(|c| {
                c.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        paths.sort();
        paths
    };
    // The agent's exit (after both writes) ends the wait.
    let under_a = outcome.writes_after_kill(&a, Duration::from_secs(10));
    assert_eq!(under_a.len(), 1, "{}", outcome.report());
    assert!(outcome.survivors_after(DEADLINE).is_empty());
    for ask in [&a, &b] {
        assert_eq!(outcome.writes_after_kill(ask, DEADLINE).len(), 1);
        let report = outcome.report();
        assert_eq!(written(&report), ["a/written", "b/written"], "{report}");
        assert_eq!(report.verdict, Verdict::Leak);
    }
}
