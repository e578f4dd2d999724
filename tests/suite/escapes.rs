//! Every way out is reproduced by a fixture and named in the report.
//!
//! Each test states what survives and how the report must name its escape, derived
//! from what the fixture does and how the kernel treats it.

use std::time::Duration;

use orphan_check::{Cleanup, Escape, Fixture, KillPlan, Ready, Scenario, Survivor};

use crate::common::{fixture, DEADLINE};

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
    assert!(report.signals[0].delivered && report.signals[0].signal == "SIGTERM");
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
