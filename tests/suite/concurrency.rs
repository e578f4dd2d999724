//! The sentinel is forked from a multi-threaded process: it must work while other threads
//! allocate and spawn processes, and scenarios must not see each other's processes.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orphan_check::{Fixture, KillPlan, Ready, Scenario};

use crate::common::survivor_names;

#[test]
fn scenarios_fork_safely_while_other_threads_allocate_and_spawn() {
    let stop = Arc::new(AtomicBool::new(false));
    let noise: Vec<_> = (0..3)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut spawned = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<String> = (0..200).map(|n| format!("{i}-{n}")).collect();
                    std::hint::black_box(&v);
                    if Command::new("true").status().is_ok() {
                        spawned += 1;
                    }
                }
                spawned
            })
        })
        .collect();
    for _ in 0..20 {
        let outcome = Scenario::new(Fixture::DoubleForkDaemon.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill())
            .run()
            .expect("the scenario runs");
        // The daemon outlives the SIGKILL of its launcher, every time.
        assert_eq!(
            survivor_names(&outcome),
            ["double-fork-dae"],
            "{}",
            outcome.report()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in noise {
        assert!(t.join().unwrap() > 0, "the noise threads really ran");
    }
}

#[test]
fn parallel_scenarios_see_only_their_own_descendants() {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                let mut cmd = Fixture::Agent.command();
                cmd.args(["--child", "sigterm-ignorer", "--how", "session"]);
                let outcome = Scenario::new(cmd)
                    .ready_when(Ready::stdout_line("ready"))
                    .kill(KillPlan::sigkill())
                    .run()
                    .unwrap();
                let survivors = outcome.survivors_after(Duration::from_millis(300));
                let before: Vec<i32> = outcome.tree_before_kill().iter().map(|p| p.pid).collect();
                assert_eq!(survivors.len(), 1);
                assert!(
                    before.contains(&survivors[0].process.pid),
                    "a survivor from another scenario"
                );
                survivors[0].process.pid
            })
        })
        .collect();
    let mut pids: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 8, "every scenario found its own survivor");
}

/// CPU time (user + system, in clock ticks) a process has used.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (3).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn the_sentinel_sleeps_while_it_waits() {
    // A sentinel with a live tree waits for SIGCHLD and commands in poll(); a broken
    // wait (a closed signalfd) would spin and burn a core for the whole deadline.
    for cgroup in [
        orphan_check::scenario::CgroupMode::Off,
        orphan_check::scenario::CgroupMode::Auto,
    ] {
        let outcome = Scenario::new(Fixture::SigtermIgnorer.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .cgroup(cgroup)
            .run()
            .unwrap();
        let before = cpu_ticks(outcome.sentinel_pid());
        assert_eq!(outcome.survivors_after(Duration::from_millis(500)).len(), 1);
        let used = cpu_ticks(outcome.sentinel_pid()) - before;
        // 500 ms of spinning is ~50 ticks even on a loaded machine's share; idle is 0.
        assert!(
            used <= 5,
            "{cgroup:?}: the sentinel used {used} ticks of CPU while idle"
        );
    }
}
