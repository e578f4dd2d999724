//! Every way out is reproduced by a fixture and named in the report.
//!
//! Each test states what survives and how the report must name its escape, derived
//! from what the fixture does and how the kernel treats it.

use std::time::Duration;

use orphan_check::diagnosis::Cleanup;
use orphan_check::fixture::ExampleAgent;
use orphan_check::outcome::FailureReason;
use orphan_check::signal::Signal;
use orphan_check::{free_port, Escape, Fixture, KillPlan, Ready, Scenario, Survivor};

use crate::common::{expect_held_at_ready, fixture, DEADLINE};

fn run(cmd: std::process::Command, plan: KillPlan) -> orphan_check::Outcome {
    Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(plan)
        .run()
        .expect("the scenario runs")
}

fn agent(child: &str, how: &str, child_args: &[&str]) -> std::process::Command {
    let mut c = Fixture::Agent.command();
    c.args(["--child", child, "--how", how, "--"])
        .args(child_args);
    c
}

fn kinds(s: &Survivor) -> Vec<String> {
    s.escapes
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn double_fork_daemon_survives_a_group_kill_and_is_named_a_daemon() {
    let o = run(
        Fixture::DoubleForkDaemon.command(),
        KillPlan::sigkill_group(),
    );
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    // The session was made by the middle process, so the daemon is in it but does not
    // lead it (it can never acquire a terminal): the classic double fork.
    assert_ne!(
        s[0].process.sid,
        o.sentinel_pid(),
        "the daemon left the agent's session"
    );
    assert_ne!(s[0].process.sid, s[0].process.pid);
    assert_eq!(kinds(&s[0]), ["daemonized"], "{}", o.report());
    assert!(s[0].missed_by.contains(&Cleanup::GroupKill));
    assert!(s[0].missed_by.contains(&Cleanup::ParentWalk));
}

#[test]
fn setsid_escaper_leaves_the_session() {
    let o = run(Fixture::SetsidEscaper.command(), KillPlan::sigkill_group());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(s[0].escapes[0], Escape::NewSession, "{}", o.report());
    assert!(s[0].missed_by.contains(&Cleanup::GroupKill));
}

#[test]
fn pgid_escaper_leaves_the_group_but_not_the_session() {
    let o = run(Fixture::PgidEscaper.command(), KillPlan::sigint_group());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(s[0].escapes[0], Escape::NewProcessGroup, "{}", o.report());
    assert_eq!(
        s[0].process.sid,
        o.sentinel_pid(),
        "same session as the agent"
    );
}

#[test]
fn env_scrubber_is_invisible_to_a_marker_sweep() {
    let o = run(Fixture::EnvScrubber.command(), KillPlan::sigkill());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(s[0].env_marker, Some(false));
    assert!(
        s[0].escapes.contains(&Escape::EnvironmentScrubbed),
        "{}",
        o.report()
    );
    assert!(s[0].missed_by.contains(&Cleanup::EnvMarkerSweep));
    // It shares the agent's group: SIGKILL of the agent alone is what let it live.
    assert!(
        s[0].escapes.contains(&Escape::UngroupedSigkill),
        "{}",
        o.report()
    );
}

#[test]
fn respawner_child_outlives_its_supervisor_killed_alone() {
    let o = run(fixture(Fixture::Respawner, &[]), KillPlan::sigkill());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(
        s.iter()
            .map(|s| s.process.comm.as_str())
            .collect::<Vec<_>>(),
        ["listener"],
        "{}",
        o.report()
    );
    // Killed as a group, supervisor and child go together: nothing is restarted.
    let o = run(fixture(Fixture::Respawner, &[]), KillPlan::sigkill_group());
    o.assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn fork_storm_is_contained_by_a_group_kill_but_not_by_a_pid_kill() {
    let o = run(
        fixture(Fixture::ForkStorm, &["--max", "40"]),
        KillPlan::sigkill_group(),
    );
    o.assert_no_survivors(Duration::from_secs(5));
    let o = run(
        fixture(Fixture::ForkStorm, &["--max", "40"]),
        KillPlan::sigkill(),
    );
    let s = o.survivors_after(DEADLINE);
    assert!(
        s.len() >= 10,
        "the long-lived children survive: {}",
        s.len()
    );
    assert!(
        s.iter()
            .all(|s| s.escapes.contains(&Escape::UngroupedSigkill)),
        "{}",
        o.report()
    );
}

#[test]
fn stopped_child_ignores_the_group_signal_until_continued() {
    // The stopped child shares the agent's group; its group is not orphaned (the
    // sentinel, its new parent, is in the same session), so no SIGCONT comes.
    let o = run(Fixture::StoppedChild.command(), KillPlan::sigint_group());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert!(s[0].process.is_stopped());
    assert!(s[0].escapes.contains(&Escape::Stopped), "{}", o.report());
    // SIGKILL works on a stopped process: the cleanup leaves nothing.
    assert!(o.kill_remaining(Duration::from_secs(5)).is_some());
}

#[test]
fn zombies_of_a_surviving_parent_are_reported_as_zombies() {
    let o = run(
        agent("zombie-maker", "session", &["--count", "3"]),
        KillPlan::sigkill(),
    );
    let s = o.survivors_after(DEADLINE);
    let zombies: Vec<&Survivor> = s.iter().filter(|s| s.process.is_zombie()).collect();
    assert_eq!(zombies.len(), 3, "{}", o.report());
    let parent = s
        .iter()
        .find(|s| !s.process.is_zombie())
        .expect("the parent survives");
    for z in zombies {
        assert_eq!(
            z.escapes,
            [Escape::Zombie {
                parent: parent.process.pid
            }]
        );
    }
    assert!(o.report().to_string().contains("ZOMBIE"));
}

#[test]
fn wrapper_chain_leaves_the_inner_shell_and_the_server() {
    let o = run(Fixture::WrapperChain.command(), KillPlan::sigterm());
    let s = o.survivors_after(DEADLINE);
    let mut names: Vec<&str> = s.iter().map(|s| s.process.comm.as_str()).collect();
    names.sort();
    assert_eq!(names, ["listener", "sh"], "{}", o.report());
    let inner = s.iter().find(|s| s.process.comm == "sh").unwrap();
    assert!(
        matches!(inner.escapes[0], Escape::ShellTrue { .. }),
        "{}",
        o.report()
    );
    let server = s.iter().find(|s| s.process.comm == "listener").unwrap();
    assert_eq!(
        server.escapes,
        [Escape::ParentSurvived {
            parent: inner.process.pid
        }]
    );
}

#[test]
fn controls_leave_nothing() {
    // exec-replace: the shell became the server, so the pid signal reaches it.
    run(Fixture::ExecReplace.command(), KillPlan::sigterm())
        .assert_no_survivors(Duration::from_secs(2));
    // pdeathsig-child: the kernel kills the child with its parent. The harness does not
    // invent a survivor for a process that is merely dying.
    run(Fixture::PdeathsigChild.command(), KillPlan::sigkill())
        .assert_no_survivors(Duration::from_secs(2));
    run(Fixture::Listener.command(), KillPlan::sigterm())
        .assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn a_file_watcher_that_survives_keeps_writing_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let o = Scenario::new(agent("file-watcher", "session", &["--dir", &d]))
        .ready_when(Ready::stdout_line("ready"))
        .watch_dir(dir.path())
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    let failure = o
        .check_no_writes_after_kill(dir.path(), Duration::from_millis(300))
        .unwrap_err();
    let watcher = o.survivors_after(DEADLINE)[0].process.pid;
    assert!(!failure.report.files.is_empty());
    assert!(
        failure
            .report
            .files
            .iter()
            .any(|f| f.writers.contains(&watcher)),
        "{failure}"
    );
    assert!(failure.to_string().contains("files written after the kill"));
}

#[test]
fn a_file_watcher_killed_with_its_agent_writes_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let o = Scenario::new(fixture(Fixture::FileWatcher, &["--dir", &d]))
        .ready_when(Ready::stdout_line("ready"))
        .watch_dir(dir.path())
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    o.assert_no_writes_after_kill(dir.path(), Duration::from_secs(2));
    o.assert_no_survivors(Duration::from_secs(2));
}

#[test]
fn writes_in_a_directory_that_was_never_watched_are_an_error_not_a_leak() {
    // Files already there before the start: without a record of them, each would read
    // as "created after the kill".
    let watched = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("old.txt"), "from before").unwrap();
    let sub = watched.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let o = Scenario::new(fixture(
        Fixture::FileWatcher,
        &["--dir", watched.path().to_str().unwrap()],
    ))
    .ready_when(Ready::stdout_line("ready"))
    .watch_dir(watched.path())
    .kill(KillPlan::sigkill())
    .run()
    .unwrap();
    let failure = o
        .check_no_writes_after_kill(other.path(), Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(
        failure.reason,
        FailureReason::NotWatched(other.path().to_path_buf())
    );
    assert!(failure.report.files.is_empty(), "{failure}");
    assert!(failure.to_string().contains("was not watched"), "{failure}");
    assert!(o
        .writes_after_kill(other.path(), Duration::from_millis(300))
        .is_empty());
    // A directory inside a watched one is watched.
    o.assert_no_writes_after_kill(&sub, Duration::from_secs(2));
}

#[test]
fn the_timeline_records_every_process_and_how_it_ended() {
    let o = run(
        agent("sigterm-ignorer", "plain", &[]),
        KillPlan::sigterm_then_sigkill(Duration::from_millis(200)),
    );
    let _ = o.survivors_after(DEADLINE);
    let report = o.report();
    let agent = report
        .timeline
        .iter()
        .find(|t| t.pid == o.agent_pid())
        .unwrap();
    assert_eq!(agent.exit.as_ref().unwrap().how, "killed by SIGTERM");
    assert!(
        !agent.needed_sigkill,
        "the agent died of SIGTERM, no SIGKILL needed"
    );
    let child = report
        .timeline
        .iter()
        .find(|t| t.original_parent == Some(o.agent_pid()))
        .unwrap();
    assert!(child.survived);
    // The grace was not needed: SIGTERM was delivered, and a SIGKILL, if the harness
    // sent one before it saw the exit (a starved reader thread), reached nobody.
    assert!(report.signals[0].delivered && report.signals[0].signal == Signal::Term);
    assert!(!report.agent_needed_sigkill);
    assert!(
        report.signals[1..].iter().all(|s| !s.delivered),
        "the grace was not needed: {:?}",
        report.signals
    );
    // After the cleanup the child was SIGKILLed by the harness.
    assert!(o.kill_remaining(Duration::from_secs(5)).is_some());
    let after = o.report();
    let child = after.timeline.iter().find(|t| t.pid == child.pid).unwrap();
    assert!(child.needed_sigkill, "{after}");
    assert_eq!(child.exit.as_ref().unwrap().how, "killed by SIGKILL");
}

// ------------------------------------------------ signals that arrive only indirectly
//
// The plan's signal goes to the agent (or its group); a survivor can still get it
// forwarded: by the agent's own handler, by a wrapper that passes signals on (tini,
// npm), by a shell's `trap`. Its dispositions (SigIgn, SigBlk, SigCgt in
// /proc/<pid>/status) are then the decisive part of its escape, named first, and a
// parent that handled the signal and exited is not "no cleanup" (cause 1).

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_sigterm_forwarded_by_the_agent_to_a_server_that_ignores_it() {
    if !python_available() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    // The agent's handler forwards SIGTERM to the server and exits with 143; the server
    // ignores SIGTERM and keeps its port.
    let port = free_port();
    let mut cmd = ExampleAgent::ForwardSigterm.command();
    cmd.args(["--port", &port.to_string()]);
    let o = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill(KillPlan::sigterm())
        .watch_port(port)
        .run()
        .expect("the agent runs");
    expect_held_at_ready(&o, port);
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(
        s[0].escapes,
        [
            Escape::SignalIgnored {
                signal: Signal::Term
            },
            Escape::ParentHandledSignal {
                parent: o.agent_pid(),
                parent_exit: Some("exit status 143".into())
            }
        ],
        "{}",
        o.report()
    );
    assert!(
        s[0].escapes.iter().all(|e| e.cause() != Some(1)),
        "the agent did clean up: not cause 1\n{}",
        o.report()
    );
    assert!(s[0].missed_by.contains(&Cleanup::SigtermCleanup));
    assert_eq!(s[0].hints.len(), 2);
    // Both reasons, with their hints, in the text and the JSON.
    let failure = o.check_no_survivors(DEADLINE).unwrap_err();
    let text = failure.to_string();
    assert!(
        text.contains("escaped: SIGTERM ignored (SigIgn)")
            && text.contains("handled the signal and exited (exit status 143)"),
        "{text}"
    );
    assert!(
        text.contains("hint: a process that ignores the stop signal needs SIGKILL"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&failure.report.to_json()).unwrap();
    let kinds: Vec<&str> = json["survivors"][0]["escapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["signal_ignored", "parent_handled_signal"]);
    assert_eq!(json["survivors"][0]["hints"].as_array().unwrap().len(), 2);
    assert!(json["survivors"][0]["missed_by"]
        .as_array()
        .unwrap()
        .contains(&"sigterm_cleanup".into()));
    assert!(!o.port_verdict(port, DEADLINE).free);
}

#[test]
fn a_wrapper_that_forwards_sigterm_and_waits_keeps_a_child_that_ignores_it() {
    // `agent --on-term forward` is a tini-like wrapper: it handles SIGTERM, passes it to
    // its child and waits for it. The child ignores SIGTERM, so both live: the wrapper
    // caught the signal and did not exit, the child ignored it and keeps its parent.
    let mut cmd = Fixture::Agent.command();
    cmd.args([
        "--child",
        "sigterm-ignorer",
        "--how",
        "plain",
        "--on-term",
        "forward",
    ]);
    let o = run(cmd, KillPlan::sigterm());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 2, "{}", o.report());
    let wrapper = s.iter().find(|s| s.pid() == o.agent_pid()).unwrap();
    assert_eq!(
        wrapper.escapes,
        [Escape::SignalCaught {
            signal: Signal::Term
        }],
        "{}",
        o.report()
    );
    let child = s.iter().find(|s| s.pid() != o.agent_pid()).unwrap();
    assert_eq!(
        child.escapes,
        [
            Escape::SignalIgnored {
                signal: Signal::Term
            },
            Escape::ParentSurvived {
                parent: o.agent_pid()
            }
        ],
        "{}",
        o.report()
    );
    assert!(child.missed_by.contains(&Cleanup::SigtermCleanup));
}

/// `sh -c` running the SIGTERM ignorer in the background, with `trap` (when given) for
/// SIGTERM. The ignorer prints the ready line.
fn shell_around_the_ignorer(trap: Option<&str>) -> std::process::Command {
    let ignorer = Fixture::SigtermIgnorer.path();
    let script = format!(
        "{}'{}' & c=$!; wait",
        trap.map(|t| format!("trap '{t}' TERM; "))
            .unwrap_or_default(),
        ignorer.display()
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    cmd
}

#[test]
fn a_shell_trap_that_forwards_sigterm_to_a_child_that_ignores_it() {
    // The shell handles SIGTERM (`trap`), forwards it and exits 0: not shell=True's
    // "the signal reached only the shell"; the child's SigIgn decides.
    let o = run(
        shell_around_the_ignorer(Some("kill -TERM $c; exit 0")),
        KillPlan::sigterm(),
    );
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(
        s[0].escapes,
        [
            Escape::SignalIgnored {
                signal: Signal::Term
            },
            Escape::ParentHandledSignal {
                parent: o.agent_pid(),
                parent_exit: Some("exit status 0".into())
            }
        ],
        "{}",
        o.report()
    );
    // Without the trap the shell dies of SIGTERM and forwards nothing: cause 4 first,
    // and a group SIGTERM (cause 4's fix) would not have stopped the child either.
    let o = run(shell_around_the_ignorer(None), KillPlan::sigterm());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(
        s[0].escapes,
        [
            Escape::ShellTrue {
                shell_pid: o.agent_pid()
            },
            Escape::SignalIgnored {
                signal: Signal::Term
            }
        ],
        "{}",
        o.report()
    );
}

#[test]
fn a_child_that_ignores_sigterm_under_sigkill_is_cause_3_first() {
    // Nothing was forwarded (SIGKILL runs no handler): cause 3 decides; the ignored
    // SIGTERM says a SIGTERM-only cleanup would have failed too.
    let o = run(agent("sigterm-ignorer", "plain", &[]), KillPlan::sigkill());
    let s = o.survivors_after(DEADLINE);
    assert_eq!(s.len(), 1, "{}", o.report());
    assert_eq!(
        s[0].escapes,
        [
            Escape::UngroupedSigkill,
            Escape::SignalIgnored {
                signal: Signal::Term
            }
        ],
        "{}",
        o.report()
    );
}
