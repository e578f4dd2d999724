//! The harness never leaks, even when the test process dies mid-scenario: the sentinel
//! reads EOF on its lifeline and kills its whole subtree.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use orphan_check::{Fixture, KillPlan, Ready, Scenario, RUN_ENV};

use crate::common::{pids_with_env, Watched};

/// Not a test on its own: the process the lifeline tests kill. It runs a scenario whose
/// tree survives the plan (a setsid escaper and a fork storm), prints the tree, and then
/// waits to be SIGKILLed, or panics, as asked.
#[test]
#[ignore = "started by the lifeline tests as a child process"]
fn lifeline_child() {
    let Ok(mode) = std::env::var("OC_LIFELINE_MODE") else {
        return;
    };
    let mut cmd = Fixture::Agent.command();
    cmd.args(["--child", "setsid-escaper", "--how", "plain"]);
    let escaper = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("scenario");
    let storm = Scenario::new(Fixture::ForkStorm.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::signal(
            orphan_check::signal::Signal::Usr2,
            orphan_check::signal::Target::Agent,
        ))
        .run()
        .expect("scenario");
    let mut pids = vec![escaper.sentinel_pid(), storm.sentinel_pid()];
    for o in [&escaper, &storm] {
        pids.extend(o.tree_before_kill().iter().map(|p| p.pid));
    }
    let list: Vec<String> = pids.iter().map(i32::to_string).collect();
    println!("runs {} {}", escaper.run_id(), storm.run_id());
    println!("tree {}", list.join(" "));
    // Wait until the parent watches every process, then die as asked.
    let mut go = String::new();
    let _ = std::io::stdin().read_line(&mut go);
    if mode == "panic" {
        panic!("the test panics while its scenarios are alive");
    }
    loop {
        std::thread::park();
    }
}

struct Child {
    run_ids: Vec<String>,
    pids: Vec<i32>,
    process: KillOnDrop,
}

/// The child test process, SIGKILLed when the test ends however it ends (an assertion
/// failing here must not leave the child parked forever with live scenarios).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child(mode: &str) -> Child {
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lifeline::lifeline_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OC_LIFELINE_MODE", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let process = KillOnDrop(process);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut run_ids = Vec::new();
    let mut pids = Vec::new();
    while pids.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child reports its tree");
        if let Some(rest) = line.strip_prefix("runs ") {
            run_ids = rest.split(' ').map(str::to_owned).collect();
        }
        if let Some(rest) = line.strip_prefix("tree ") {
            pids = rest.split(' ').map(|p| p.parse().unwrap()).collect();
        }
    }
    Child {
        run_ids,
        pids,
        process,
    }
}

fn assert_nothing_left(child: Child, mode: &str) {
    let Child {
        run_ids,
        pids,
        mut process,
    } = child;
    // Some of the tree is already gone (the agent SIGTERMed, the storm's short-lived
    // children); watch the rest, the sentinels and the survivors among them.
    let watched = Watched::new(pids.iter().copied());
    assert!(
        watched.len() >= 4,
        "the sentinels and the survivors are alive: {}",
        watched.len()
    );
    let mut stdin = process.0.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    if mode == "sigkill" {
        let _ = process.0.kill();
    }
    let _ = process.0.wait();
    let alive = watched.wait_all_gone(Duration::from_secs(10));
    assert!(
        alive.is_empty(),
        "still alive after the harness died: {alive:?}"
    );
    // The sentinels are gone, and they only exit once their subtree is empty: so nothing
    // with the runs' marker may be left (the fork storm's later children included).
    for id in run_ids {
        assert!(
            pids_with_env(RUN_ENV, &id).is_empty(),
            "run {id} left processes"
        );
    }
}

#[test]
fn a_sigkilled_harness_leaves_nothing_behind() {
    let child = start_child("sigkill");
    assert_nothing_left(child, "sigkill");
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let child = start_child("panic");
    assert_nothing_left(child, "panic");
}

/// A chain of sessions, each process the only child of the one above it and each in a
/// session of its own: no group kill reaches the next, and each is the sentinel's child
/// only once its parent has died. The drop must keep finding the next one, down to the
/// last, before it returns (with and without a cgroup: without one, the sentinel's
/// lifeline cleanup alone does it).
#[test]
fn a_dropped_outcome_ends_a_chain_each_exposed_only_by_its_parents_death() {
    for mode in [
        orphan_check::scenario::CgroupMode::Off,
        orphan_check::scenario::CgroupMode::Auto,
    ] {
        // Four sessions deep; the deepest shell prints `deep` (the agent's stdout,
        // inherited down the chain) once its `sleep` is forked, so every link exists.
        let mut agent = Command::new("sh");
        agent
            .args(["-c", "setsid sh -c \"$L1\" & exec sleep 1000"])
            .env("L1", "setsid sh -c \"$L2\" & wait")
            .env("L2", "setsid sh -c \"$L3\" & wait")
            .env("L3", "sleep 1000 & echo deep; wait");
        let outcome = Scenario::new(agent)
            .ready_when(Ready::stdout_line("deep"))
            .kill(KillPlan::sigkill())
            .cgroup(mode)
            .run()
            .expect("the chain starts");
        let tree: Vec<i32> = outcome.tree_before_kill().iter().map(|p| p.pid).collect();
        // The agent, three shells and the deepest sleep.
        assert!(tree.len() >= 5, "{mode:?}: the whole chain: {tree:?}");
        let watched = Watched::new(tree.iter().copied());
        // The agent is gone by the deadline; the chain stays.
        let survivors = outcome.survivors_after(crate::common::DEADLINE);
        assert_eq!(survivors.len(), 4, "{mode:?}: the chain outlived the agent");
        drop(outcome);
        // Nothing waits here: the drop has returned, so each must be gone already.
        let alive = watched.wait_all_gone(Duration::ZERO);
        assert!(
            alive.is_empty(),
            "{mode:?}: alive after the drop: {alive:?}"
        );
    }
}
