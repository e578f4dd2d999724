//! The report's tree shows what each process runs at the verdict, not what it ran when
//! it was first seen: a child seen between its fork and its `exec` (the parent's own
//! command line) and found alive later has exec'd since, and is named for its program.
//! Who started it (its original parent) stays what the first sighting said.

use std::time::{Duration, Instant};

use orphan_check::{KillPlan, Ready, Scenario};

use crate::common::DEADLINE;

#[test]
fn a_survivor_that_exec_d_after_its_first_sighting_is_named_for_its_program() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("go");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The subshell is seen at readiness as `sh`; it execs `sleep` only once the test
    // writes to the fifo, after the kill.
    let script = format!(
        "( read x < '{}'; exec sleep 301 ) & echo ready; wait",
        fifo.display()
    );
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", &script]);
    let outcome = Scenario::new(sh)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("the scenario runs");
    let child = outcome
        .tree_before_kill()
        .iter()
        .find(|p| p.pid != outcome.agent_pid())
        .expect("the subshell was seen at readiness")
        .clone();
    assert_eq!(child.comm, "sh");
    std::fs::write(&fifo, "go\n").unwrap();
    // Wait for the exec itself (an event with a deadline), then judge.
    let deadline = Instant::now() + Duration::from_secs(10);
    let execed = loop {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.pid)).unwrap_or_default();
        if comm.trim() == "sleep" {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::yield_now();
    };
    assert!(execed, "the subshell never exec'd sleep");
    let survivors = outcome.survivors_after(DEADLINE);
    let report = outcome.report();
    assert_eq!(survivors.len(), 1, "{report}");
    assert_eq!(survivors[0].process.comm, "sleep", "{report}");
    let text = report.to_string();
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("SURVIVED"))
        .unwrap_or_else(|| panic!("no survivor row\n{text}"));
    assert!(row.contains("sleep 301"), "{row}\n{text}");
    let entry = report
        .timeline
        .iter()
        .find(|t| t.pid == child.pid)
        .expect("in the timeline");
    assert!(entry.command.starts_with("sleep 301"), "{}", entry.command);
    // Its original parent is still the agent that forked it.
    assert_eq!(entry.original_parent, Some(outcome.agent_pid()));
}
