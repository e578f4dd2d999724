//! Helpers shared by the suite.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use orphan_check::{Fixture, Outcome, Scenario};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

/// The kill plan a test names, read as the CLI reads `--kill`: `sigkill`,
/// `term-then-kill=300ms`, `int-group`, ….
pub fn plan(name: &str) -> orphan_check::KillPlan {
    name.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Panics with the report unless a process of the tree listened on `port` when the agent
/// was ready. Every fixture and example agent prints its ready line only once it holds
/// its port, so a port not held then means the fixture never got it (another process
/// took it first; the server died with `EADDRINUSE`), and the verdict that follows,
/// clean or leak, would be about nothing.
#[track_caller]
pub fn expect_held_at_ready(outcome: &Outcome, port: u16) {
    let at = outcome
        .port_at_ready(port)
        .unwrap_or_else(|| panic!("port {port} is not watched"));
    assert!(
        at.held_by_tree,
        "the fixture never held its port {port}: at readiness {}\n{}",
        if at.holders.is_empty() {
            "nobody listened on it".to_string()
        } else {
            format!("{:?} listened on it", at.holders)
        },
        outcome.report()
    );
}

/// Runs the scenario `build` makes for a port from [`orphan_check::free_port`]: unique
/// within this process and reserved against others, so no retry is needed.
pub fn run_with_port(build: impl Fn(u16) -> Scenario) -> (Outcome, u16) {
    let p = orphan_check::free_port();
    let outcome = build(p)
        .run()
        .unwrap_or_else(|e| panic!("the scenario runs: {e}"));
    (outcome, p)
}

/// How long a survivor must outlive the kill to count. Clean scenarios return as soon as
/// the tree is empty; only leaks wait this long.
pub const DEADLINE: Duration = Duration::from_millis(500);

/// An upper bound for what a test expects to end after the kill (a process's exit, a
/// handler's cleanup) on a loaded machine. Every wait on it returns at its event: it
/// costs only a test whose expectation fails.
pub const SETTLE: Duration = Duration::from_secs(10);

/// The `comm` names of the survivors, sorted.
pub fn survivor_names(outcome: &Outcome) -> Vec<String> {
    let mut v: Vec<String> = outcome
        .survivors_after(DEADLINE)
        .into_iter()
        .map(|s| s.process.comm)
        .collect();
    v.sort();
    v
}

/// The fixture's sibling command, with `args`.
pub fn fixture(f: Fixture, args: &[&str]) -> std::process::Command {
    let mut c = f.command();
    c.args(args);
    c
}

/// A slow port holder on `port` that keeps it after SIGTERM for as long as it lives (it
/// waits for an event that never comes), ready once it listens, ended by SIGTERM: a
/// leak of a process and a port that outlasts every deadline by construction.
pub fn holding_port_after_sigterm(port: u16) -> Scenario {
    Scenario::new(fixture(
        Fixture::SlowPortHolder,
        &["--port", &port.to_string(), "--hold-ms", "forever"],
    ))
    .ready_when(orphan_check::Ready::port(port))
    .kill(orphan_check::KillPlan::sigterm())
}

/// Pids of every process whose environment contains `KEY=VALUE` exactly.
pub fn pids_with_env(key: &str, value: &str) -> BTreeSet<i32> {
    let wanted = format!("{key}={value}");
    pids_where_env(|kv| kv == wanted.as_bytes())
}

/// Pids of every process with an environment entry (`KEY=VALUE` bytes) that `matches`.
pub fn pids_where_env(matches: impl Fn(&[u8]) -> bool) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(&matches) {
                out.insert(pid);
            }
        }
    }
    out
}

/// A unique tag for a test's processes.
pub fn tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Pidfds for processes that are not our children: readable once each one exits.
pub struct Watched(Vec<(i32, OwnedFd)>);

impl Watched {
    pub fn new(pids: impl IntoIterator<Item = i32>) -> Watched {
        Watched(
            pids.into_iter()
                .filter_map(|p| Some((p, pidfd_open(Pid::from_raw(p)?, PidfdFlags::empty()).ok()?)))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Waits until every watched process has exited or `deadline` passes; returns the
    /// pids still alive.
    pub fn wait_all_gone(&self, within: Duration) -> Vec<i32> {
        let until = Instant::now() + within;
        loop {
            let mut fds: Vec<PollFd<'_>> = self
                .0
                .iter()
                .map(|(_, fd)| PollFd::new(fd, PollFlags::IN))
                .collect();
            let left = until.saturating_duration_since(Instant::now());
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let _ = poll(&mut fds, Some(&timeout));
            let alive: Vec<i32> = self
                .0
                .iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_empty())
                .map(|((p, _), _)| *p)
                .collect();
            if alive.is_empty() || left.is_zero() {
                return alive;
            }
            drop(fds);
            // Block until one of the remaining ones exits (or the deadline).
            let mut rest: Vec<PollFd<'_>> = self
                .0
                .iter()
                .filter(|(p, _)| alive.contains(p))
                .map(|(_, fd)| PollFd::new(fd, PollFlags::IN))
                .collect();
            let ts = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            };
            let _ = poll(&mut rest, Some(&ts));
        }
    }
}
