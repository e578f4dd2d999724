//! A fork storm judged and killed, side by side with what a user would otherwise run.
//!
//! The storm is the `fork-storm` fixture (`--max N`: long-lived children up to N, plus a
//! stream of short-lived ones, forking as fast as it can), the setsid'd child of an agent
//! that dies of the plan's SIGTERM, as in `faults::a_fork_storm_is_contained_and_cleaned`.
//! Each storm is first grown to its full N long-lived children, so both sides of a row
//! face the same tree. `cargo bench --bench fork_storm` prints, as medians:
//!
//! 1. the verdict's cost past its deadline: `survivors_after` once the deadline has
//!    passed (a zero one: a snapshot of the storm, each survivor diagnosed), against
//!    scanning `/proc/*/environ` for the run's marker (how a user finds what carries it
//!    without orphan-check, pids only);
//! 2. the cleanup without a cgroup: `drop(Outcome)` (the sentinel's SIGKILL-and-reap loop),
//!    against a storm the bench starts in its own process group, `kill -9 -PGID`, then
//!    waiting (pidfds) until every member of the group has exited;
//! 3. with a writable cgroup v2: `drop(Outcome)` with `CgroupMode::Required`, against
//!    writing `cgroup.kill` and waiting for `populated 0`.
//!
//! Nothing here asserts a time (the test asserts what the verdict finds and that nothing
//! is left). Every storm the bench starts itself is SIGKILLed by its group from a guard,
//! also on panic; the scenarios' storms are the library's to clean up.
//!
//! `BENCH_QUICK=1` runs fewer storms of 2 000.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{cgroup_kill_and_wait, ratio, scenario_cgroup, Stat};
use orphan_check::scenario::CgroupMode;
use orphan_check::{Fixture, KillPlan, Outcome, Ready, Scenario, RUN_ENV};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{
    getrlimit, kill_process_group, pidfd_open, setrlimit, Pid, PidfdFlags, Resource, Rlimit, Signal,
};

/// How long a storm may take to grow, or a tree to go, before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

// ---------------------------------------------------------------------------------
// Measurement helpers.

/// The rows of the closing table.
#[derive(Default)]
struct Results(Vec<[String; 4]>);

impl Results {
    fn add(&mut self, figure: &str, ours: Stat, baseline_name: &str, baseline: Stat) {
        let row = [
            figure.to_string(),
            ours.to_string(),
            format!("{baseline_name}: {baseline}"),
            format!("{:.2}×", ratio(ours.median, baseline.median)),
        ];
        println!(
            "  => {}: {} | baseline: {} | ratio: {}",
            row[0], row[1], row[2], row[3]
        );
        self.0.push(row);
    }

    fn markdown(&self) -> String {
        let mut s = String::from(
            "| figure | orphan-check | baseline (what a user would otherwise do) | ratio |\n\
             | --- | --- | --- | --- |\n",
        );
        for [figure, ours, baseline, ratio] in &self.0 {
            let _ = writeln!(s, "| {figure} | {ours} | {baseline} | {ratio} |");
        }
        s
    }
}

// ---------------------------------------------------------------------------------
// Reading /proc.

/// The direct children of a single-threaded process.
fn children(pid: i32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map_or(0, |s| s.split_whitespace().count())
}

/// Waits (1 → 50 ms backoff) until the storm `pid` has `size` children.
fn grow(pid: i32, size: usize) {
    let until = Instant::now() + PATIENCE;
    let mut nap = Duration::from_millis(1);
    while children(pid) < size {
        assert!(Instant::now() < until, "the storm did not reach {size}");
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

fn numeric_dirs() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// Pids whose environment holds `ORPHAN_CHECK_RUN=<run_id>`.
fn carrying_marker(run_id: &str) -> Vec<i32> {
    let wanted = format!("{RUN_ENV}={run_id}");
    numeric_dirs()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
        })
        .collect()
}

/// Pids in process group `pgid`, from each `/proc/<pid>/stat`.
fn group_members(pgid: i32) -> Vec<i32> {
    numeric_dirs()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the command's closing parenthesis: state, ppid, pgrp.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<i32>().ok())
                    == Some(pgid)
            })
        })
        .collect()
}

/// Waits until every process behind `fds` has exited; false at `PATIENCE`.
fn wait_exited(fds: &[OwnedFd]) -> bool {
    let until = Instant::now() + PATIENCE;
    let mut left: Vec<&OwnedFd> = fds.iter().collect();
    while !left.is_empty() {
        let remaining = until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        // poll takes a bounded number of descriptors at once: wait on a slice of them.
        let mut slice: Vec<PollFd<'_>> = left
            .iter()
            .take(1024)
            .map(|fd| PollFd::new(*fd, PollFlags::IN))
            .collect();
        let timeout = Timespec {
            tv_sec: remaining.as_secs() as i64,
            tv_nsec: remaining.subsec_nanos() as i64,
        };
        let _ = poll(&mut slice, Some(&timeout));
        let exited: Vec<bool> = slice.iter().map(|p| !p.revents().is_empty()).collect();
        drop(slice);
        let polled = exited.len();
        let mut rest: Vec<&OwnedFd> = left
            .iter()
            .zip(&exited)
            .filter(|(_, gone)| !**gone)
            .map(|(fd, _)| *fd)
            .collect();
        rest.extend(left.iter().skip(polled).copied());
        left = rest;
    }
    true
}

// ---------------------------------------------------------------------------------
// The storms.

/// A storm in a scenario: the agent has died of SIGTERM, the storm lives on, grown to
/// `size`. Returns the outcome and how many processes the storm had when grown.
fn storm_scenario(mode: CgroupMode, size: usize) -> (Outcome, usize) {
    let mut cmd = Fixture::Agent.command();
    let max = size.to_string();
    cmd.args([
        "--child",
        "fork-storm",
        "--how",
        "session",
        "--",
        "--max",
        &max,
    ]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(60))
        .kill(KillPlan::sigterm())
        .cgroup(mode)
        .run()
        .expect("the storm runs");
    let storm = outcome
        .tree_before_kill()
        .iter()
        .find(|p| p.ppid == outcome.agent_pid())
        .map(|p| p.pid)
        .expect("the storm is the agent's child");
    grow(storm, size);
    (outcome, children(storm) + 1)
}

/// A storm the bench started itself, leading its own process group. Dropping it
/// SIGKILLs the group (whose id the unreaped leader still pins) and reaps the leader.
struct OwnStorm {
    leader: Child,
}

impl OwnStorm {
    fn start(size: usize) -> OwnStorm {
        let mut child = Fixture::ForkStorm
            .command()
            .args(["--max", &size.to_string()])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the storm starts");
        let stdout = child.stdout.take().expect("piped");
        let storm = OwnStorm { leader: child };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the storm's ready line");
        assert!(line.starts_with("ready"), "{line:?}");
        grow(storm.pgid(), size);
        storm
    }

    fn pgid(&self) -> i32 {
        self.leader.id() as i32
    }

    /// `kill -9 -PGID`, then wait until every member has exited; the members and
    /// whether they all exited in time.
    fn kill_and_wait(&mut self) -> (usize, bool) {
        let pgid = Pid::from_raw(self.pgid()).expect("a pid");
        kill_process_group(pgid, Signal::KILL).expect("kill -9 -PGID");
        // A group signal and fork exclude each other: no member is born after it.
        let fds: Vec<OwnedFd> = group_members(self.pgid())
            .into_iter()
            .filter_map(|p| pidfd_open(Pid::from_raw(p)?, PidfdFlags::empty()).ok())
            .collect();
        (fds.len(), wait_exited(&fds))
    }
}

impl Drop for OwnStorm {
    fn drop(&mut self) {
        if let Some(pgid) = Pid::from_raw(self.pgid()) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.leader.wait();
    }
}

// ---------------------------------------------------------------------------------

fn main() {
    let (size, reps) = if quick() { (2_000, 2) } else { (10_000, 5) };
    let pid_max: usize = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32_768);
    let nproc = getrlimit(Resource::Nproc).current.unwrap_or(u64::MAX);
    // The baseline holds a pidfd for every member of its storm.
    let files = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: files.maximum,
            maximum: files.maximum,
        },
    );
    let nofile = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "orphan-check fork storm: {size} processes a storm, {reps} storms a figure, {cores} cores"
    );
    if pid_max < 2 * size || nproc < 2 * size as u64 || nofile < size as u64 + 100 {
        println!(
            "skipped: pid_max {pid_max}, ulimit -u {nproc}, ulimit -n {nofile}: too low for {size}"
        );
        return;
    }
    let cgroup = orphan_check::scenario::cgroup_root().is_some();
    let mut verdict = (Vec::new(), Vec::new());
    let mut cleanup = (Vec::new(), Vec::new());
    let mut with_cgroup = (Vec::new(), Vec::new());
    let mut sizes = Vec::new();
    for _ in 0..reps {
        // 1 and 2 (ours): one storm, judged, then dropped.
        let (outcome, grown) = storm_scenario(CgroupMode::Off, size);
        sizes.push(grown);
        // Growing took longer than any deadline: what is measured is the look itself.
        let t = Instant::now();
        let survivors = outcome.survivors_after(Duration::ZERO);
        verdict.0.push(t.elapsed());
        // The storm itself and its long-lived children, less a few short-lived ones
        // that `grow` counted.
        assert!(survivors.len() > size - 10, "{} survivors", survivors.len());
        // 1 (baseline): the same storm, found by its marker.
        let t = Instant::now();
        let found = carrying_marker(outcome.run_id());
        verdict.1.push(t.elapsed());
        assert!(
            found.len() > size - 10,
            "{} found by the marker",
            found.len()
        );
        let run_id = outcome.run_id().to_string();
        let t = Instant::now();
        drop(outcome);
        cleanup.0.push(t.elapsed());
        assert!(carrying_marker(&run_id).is_empty(), "left after drop");

        // 2 (baseline): a storm of the same size in its own group.
        let mut own = OwnStorm::start(size);
        let t = Instant::now();
        let (members, gone) = own.kill_and_wait();
        cleanup.1.push(t.elapsed());
        assert!(
            gone && members > size - 10,
            "{members} members, all gone: {gone}"
        );
        drop(own);

        if cgroup {
            // 3: drop with the cgroup, against cgroup.kill alone.
            let (outcome, _) = storm_scenario(CgroupMode::Required, size);
            let t = Instant::now();
            drop(outcome);
            with_cgroup.0.push(t.elapsed());
            let (outcome, _) = storm_scenario(CgroupMode::Required, size);
            let dir = scenario_cgroup(&outcome).expect("the scenario's cgroup");
            let t = Instant::now();
            assert!(
                cgroup_kill_and_wait(&dir, PATIENCE),
                "cgroup.kill emptied the cgroup"
            );
            with_cgroup.1.push(t.elapsed());
            drop(outcome);
        }
    }
    sizes.sort_unstable();
    println!("storm sizes when grown: {sizes:?}");
    let mut results = Results::default();
    results.add(
        &format!("verdict over a {size}-process storm, past its deadline: survivors_after"),
        Stat::of(verdict.0),
        "scan /proc/*/environ for the run's marker (pids only)",
        Stat::of(verdict.1),
    );
    results.add(
        &format!("kill a {size}-process storm: drop(Outcome), CgroupMode::Off (sentinel's loop)"),
        Stat::of(cleanup.0),
        "kill -9 -PGID, then wait (pidfds) for every member to exit",
        Stat::of(cleanup.1),
    );
    if cgroup {
        results.add(
            "… drop(Outcome) with CgroupMode::Required (cgroup.kill, then the sentinel reaps)",
            Stat::of(with_cgroup.0),
            "write cgroup.kill, wait for `populated 0`",
            Stat::of(with_cgroup.1),
        );
    } else {
        println!("  (no writable cgroup v2: the cgroup row is skipped)");
    }
    println!("\n{}", results.markdown());
}
