//! Faults: harness death, bystanders, PID reuse, concurrency, fork storms, bad input.
//!
//! Several tests re-run this test binary as a child process (`current_exe() --exact
//! faults::<victim> --ignored`): the victims are `#[ignore]`d tests that do nothing unless
//! their environment says so. Every child process and canary is held by a guard that
//! SIGKILLs it by pid (it is our unreaped child, so the pid cannot be reused) and reaps
//! it on drop, so a failing assertion leaves nothing behind.
//!
//! Figures and the commands that produce them are in `docs/reliability.md`.
//! `OC_FAULT_ROUNDS` (default 20; CI sets 100) is the number of harness deaths;
//! `OC_FAULT_SEED` seeds the random kill moments.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use orphan_check::outcome::FailureReason;
use orphan_check::scenario::CgroupMode;
use orphan_check::{Error, Escape, Fixture, KillPlan, Outcome, Ready, Scenario, RUN_ENV};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::common::{fixture, pids_with_env, tag, Watched};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The bound this file promises: after the harness dies, or after an `Outcome` is
/// dropped, every process of its scenarios is gone within this long.
const GONE_BOUND: Duration = Duration::from_secs(5);

/// SplitMix64: a small seeded PRNG, so a failing round can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rounds() -> usize {
    env_num("OC_FAULT_ROUNDS", 20) as usize
}

fn seed() -> u64 {
    env_num("OC_FAULT_SEED", 0x5EED_0C0C)
}

/// A child process (test-binary child, canary, `unshare`) SIGKILLed and reaped on drop.
struct Guard(std::process::Child);

impl Guard {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Our own unreaped child: its pid cannot have been reused.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This test binary, running one ignored victim test.
fn victim(name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("own executable"));
    c.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    c.env_remove("OC_FAULT_VICTIM")
        .env_remove("OC_FAULT_PLAN")
        .env_remove("OC_FAULT_PIDNS")
        .env_remove(RUN_ENV);
    c
}

/// A Python that every user can run (the pyenv shim lives in root's home).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Whether `pid` is alive, through a pidfd (false when it cannot be opened: gone).
fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let _ = poll(&mut fds, Some(&zero));
    fds[0].revents().is_empty()
}

fn open_pidfd(pid: i32) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// Waits until `fd` is readable or `within` passes; true when readable.
fn readable(fd: &OwnedFd, within: Duration) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: within.as_secs() as i64,
        tv_nsec: within.subsec_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// Pids of processes whose environment has `ORPHAN_CHECK_RUN=<marker>` or
/// `ORPHAN_CHECK_RUN=<marker>.<anything>` (the run ids of scenarios started by a process
/// that carries `<marker>`; and that process's forked sentinels, which share its
/// environment).
fn pids_of_marker(marker: &str) -> BTreeSet<i32> {
    let exact = format!("{RUN_ENV}={marker}");
    let nested = format!("{exact}.");
    crate::common::pids_where_env(|kv| kv == exact.as_bytes() || kv.starts_with(nested.as_bytes()))
}

/// Waits (on pidfds, rescanning /proc after each wave) until no process carries
/// `marker`; returns how long it took, or the pids still alive at `within`.
fn wait_marker_gone(marker: &str, within: Duration) -> Result<Duration, BTreeSet<i32>> {
    let start = Instant::now();
    loop {
        let left = pids_of_marker(marker);
        if left.is_empty() {
            return Ok(start.elapsed());
        }
        let remaining = within.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            return Err(left);
        }
        // Block until this wave exits; the rescan catches what it forked meanwhile.
        let _ = Watched::new(left).wait_all_gone(remaining);
    }
}

/// A process that records every catchable signal it receives into a file, and dies
/// only of SIGKILL (checked through a pidfd). It lives in its own process group unless
/// `group` is given.
struct Canary {
    guard: Guard,
    pidfd: OwnedFd,
    log: PathBuf,
    name: String,
}

const CANARY: &str = r#"
import os, signal, sys
log = sys.argv[1]
def record(sig, frame):
    with open(log, "a") as f:
        f.write("%d\n" % sig)
    print("got %d" % sig, flush=True)
for s in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGCONT",
          "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGALRM", "SIGPIPE", "SIGWINCH", "SIGURG"):
    signal.signal(getattr(signal, s), record)
print("ready", flush=True)
while True:
    signal.pause()
"#;

impl Canary {
    /// Spawns a canary; `group`: join that process group instead of leading a new one.
    /// Returns once its handlers are installed.
    fn start(dir: &Path, name: &str, group: Option<i32>) -> Canary {
        let c = Canary::spawn(dir, name, group);
        c.await_ready();
        c
    }

    /// Spawns without waiting for the handlers (the pid is fixed at once).
    fn spawn(dir: &Path, name: &str, group: Option<i32>) -> Canary {
        let log = dir.join(format!("{name}.signals"));
        let mut cmd = Command::new(python());
        cmd.args(["-c", CANARY])
            .arg(&log)
            .env_remove(RUN_ENV)
            .env("OC_FAULT_CANARY", name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(group.unwrap_or(0));
        let child = cmd.spawn().expect("spawn a canary");
        let guard = Guard(child);
        let pidfd = open_pidfd(guard.pid()).expect("pidfd of our own child");
        Canary {
            guard,
            pidfd,
            log,
            name: name.to_string(),
        }
    }

    fn await_ready(&self) {
        // The guard owns the pipe; read through a duplicate so the guard keeps it.
        let out = self.guard.0.stdout.as_ref().expect("piped");
        let fd = out.try_clone_fd();
        let mut line = String::new();
        let got = readable(&fd, Duration::from_secs(30))
            && BufReader::new(std::fs::File::from(fd))
                .read_line(&mut line)
                .is_ok();
        assert!(
            got && line.trim() == "ready",
            "canary {} never got ready",
            self.name
        );
    }

    fn pid(&self) -> i32 {
        self.guard.pid()
    }

    /// Signals it recorded, and whether it is still alive.
    fn verdict(&self) -> (Vec<String>, bool) {
        let recorded = std::fs::read_to_string(&self.log).unwrap_or_default();
        let sigs = recorded.lines().map(|l| l.to_string()).collect();
        (sigs, alive(&self.pidfd))
    }

    #[track_caller]
    fn assert_untouched(&self, context: &str) {
        let (sigs, alive) = self.verdict();
        assert!(
            sigs.is_empty() && alive,
            "{context}: canary {} (pid {}) was signalled: recorded {sigs:?}, alive {alive}",
            self.name,
            self.pid()
        );
        // And not stopped either (SIGSTOP cannot be caught).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        assert_ne!(state, Some('T'), "{context}: canary {} stopped", self.name);
    }
}

trait TryCloneFd {
    fn try_clone_fd(&self) -> OwnedFd;
}

impl TryCloneFd for std::process::ChildStdout {
    fn try_clone_fd(&self) -> OwnedFd {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned().expect("dup")
    }
}

/// Reads a child's stdout lines on a thread.
fn lines_of(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line starting with `prefix` (other lines are kept in `seen`).
fn expect_line(
    rx: &mpsc::Receiver<String>,
    prefix: &str,
    within: Duration,
    seen: &mut Vec<String>,
) -> Option<String> {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            // libtest prints "test <name> ... " without a newline before the test's output.
            Ok(line) if line.contains(prefix) => return Some(line),
            Ok(line) => seen.push(line),
            Err(_) => return None,
        }
    }
}

/// A child process's whole output, with a deadline: kills it when the deadline passes.
fn run_with_deadline(mut cmd: Command, within: Duration) -> (Option<i32>, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard(cmd.spawn().expect("spawn"));
    let out = guard.0.stdout.take().unwrap();
    let err = guard.0.stderr.take().unwrap();
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = collect(Box::new(out));
    let err = collect(Box::new(err));
    let pidfd = open_pidfd(guard.pid()).expect("pidfd");
    let finished = readable(&pidfd, within);
    let code = if finished {
        guard.0.wait().ok().and_then(|s| s.code())
    } else {
        None
    };
    drop(guard);
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (code, text)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Harness death
// ---------------------------------------------------------------------------------------

/// Appends a phase to stdout (and to `OC_FAULT_PHASE_FILE`, for the nextest script).
fn phase(name: &str) {
    println!("phase {name}");
    if let Ok(path) = std::env::var("OC_FAULT_PHASE_FILE") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{name}");
        }
    }
}

/// The scenarios of a dying harness: an agent whose child escapes with setsid (the
/// escaper forks a setsid grandchild too), and an agent whose child, in its own session,
/// is a fork storm still forking when the agent is killed.
fn live_trees() -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    phase("run-escaper");
    let mut cmd = Fixture::Agent.command();
    cmd.args(["--child", "setsid-escaper", "--how", "session"]);
    outcomes.push(
        Scenario::new(cmd)
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .run()
            .expect("escaper scenario"),
    );
    phase("run-storm");
    let mut cmd = Fixture::Agent.command();
    cmd.args([
        "--child",
        "fork-storm",
        "--how",
        "session",
        "--",
        "--max",
        "200",
    ]);
    outcomes.push(
        Scenario::new(cmd)
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .run()
            .expect("storm scenario"),
    );
    phase("ready");
    outcomes
}

/// Not a test on its own: the harness that the harness-death tests kill.
/// `OC_FAULT_VICTIM=park`: run the scenarios and block (SIGKILL or a nextest timeout
/// ends it). `OC_FAULT_VICTIM=panic:<ms>`: run them on a worker thread, and panic on the
/// test thread after `<ms>`, whatever the worker is doing (in `run()`, or holding the
/// outcomes).
#[test]
#[ignore = "a victim: started by the harness-death tests and scripts/faults/nextest-timeout.sh"]
fn harness_victim() {
    let Ok(mode) = std::env::var("OC_FAULT_VICTIM") else {
        return;
    };
    phase("start");
    if let Some(ms) = mode.strip_prefix("panic:") {
        let ms: u64 = ms.parse().expect("panic delay");
        std::thread::spawn(|| {
            let outcomes = live_trees();
            loop {
                std::thread::park();
                std::hint::black_box(&outcomes);
            }
        });
        std::thread::sleep(Duration::from_millis(ms)); // the fault's moment, not a sync
        panic!("injected panic after {ms} ms");
    }
    let outcomes = live_trees();
    loop {
        std::thread::park();
        std::hint::black_box(&outcomes);
    }
}

struct DeathRound {
    delay: Duration,
    phase: String,
    gone_after: Duration,
}

/// Starts `par` victims in `mode_for(i)`, kills each at its moment (`kill`), and measures
/// how long their scenarios' processes take to disappear.
fn harness_deaths(label: &str, total: usize, kill: bool, delays: &mut SplitMix) -> Vec<DeathRound> {
    const PAR: usize = 5;
    const MAX_DELAY_MS: u64 = 700;
    let mut results = Vec::new();
    let mut done = 0;
    while done < total {
        let batch = PAR.min(total - done);
        let handles: Vec<_> = (0..batch)
            .map(|_| {
                let delay = Duration::from_millis(delays.below(MAX_DELAY_MS));
                let marker = format!("oc-fault-{}", tag());
                let mode = if kill {
                    "park".to_string()
                } else {
                    format!("panic:{}", delay.as_millis())
                };
                std::thread::spawn(move || -> Result<DeathRound, String> {
                    let mut cmd = victim("faults::harness_victim");
                    cmd.env("OC_FAULT_VICTIM", &mode)
                        .env(RUN_ENV, &marker)
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null());
                    let mut guard = Guard(cmd.spawn().map_err(|e| e.to_string())?);
                    let rx = lines_of(guard.0.stdout.take().unwrap());
                    let pidfd = open_pidfd(guard.pid()).ok_or("pidfd")?;
                    if kill {
                        std::thread::sleep(delay); // the random moment of the fault
                        let _ = guard.0.kill();
                    } else if !readable(&pidfd, Duration::from_secs(30)) {
                        return Err(format!("{marker}: the panicking victim did not exit"));
                    }
                    let status = guard.0.wait().map_err(|e| e.to_string())?;
                    let died_at = Instant::now();
                    if !kill && status.code() != Some(101) {
                        return Err(format!("{marker}: panic victim ended with {status}"));
                    }
                    let phase = rx
                        .try_iter()
                        .filter_map(|l| l.split("phase ").nth(1).map(str::to_owned))
                        .last()
                        .unwrap_or_else(|| "exec".into());
                    match wait_marker_gone(&marker, GONE_BOUND) {
                        Ok(_) => Ok(DeathRound {
                            delay,
                            phase,
                            gone_after: died_at.elapsed(),
                        }),
                        Err(left) => Err(format!(
                            "{marker} (killed {delay:?} after start, phase {phase}): still \
                             alive {GONE_BOUND:?} after the harness died: {left:?}"
                        )),
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join().expect("round thread") {
                Ok(r) => results.push(r),
                Err(e) => panic!("{label}: {e}"),
            }
        }
        done += batch;
    }
    let mut by_phase: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &results {
        *by_phase.entry(r.phase.as_str()).or_default() += 1;
    }
    let mut times: Vec<Duration> = results.iter().map(|r| r.gone_after).collect();
    let max = times.iter().max().copied().unwrap_or_default();
    let med = median(&mut times);
    let max_delay = results.iter().map(|r| r.delay).max().unwrap_or_default();
    println!(
        "FIGURE {label}: rounds={} bound={GONE_BOUND:?} gone_after max={max:?} median={med:?} \
         max_delay={max_delay:?} phases_at_death={by_phase:?}",
        results.len()
    );
    results
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn a_harness_sigkilled_at_random_moments_leaves_nothing() {
    let seed = seed();
    println!("OC_FAULT_SEED={seed}");
    let mut rng = SplitMix(seed);
    let results = harness_deaths("sigkill", rounds(), true, &mut rng);
    // The random moments really covered the inside of run(), not only the parked state.
    let during_run = results.iter().filter(|r| r.phase != "ready").count();
    assert!(
        during_run > 0 || results.len() < 5,
        "no kill landed before ready: widen MAX_DELAY_MS"
    );
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn a_harness_panicking_at_random_moments_leaves_nothing() {
    let seed = seed() ^ 0xDEAD;
    println!("OC_FAULT_SEED={seed} (panic)");
    let mut rng = SplitMix(seed);
    let n = (rounds() / 4).max(5);
    harness_deaths("panic", n, false, &mut rng);
}

// ---------------------------------------------------------------------------------------
// No bystanders
// ---------------------------------------------------------------------------------------

fn plan_by_index(i: usize) -> KillPlan {
    KillPlan::all(Duration::from_millis(200))[i]
}

/// Not a test on its own: runs one scenario with plan `OC_FAULT_PLAN` (an index into
/// `KillPlan::all`) in a process that leads its own process group, which a canary
/// shares. Readiness is the file `OC_FAULT_GATE`, which the parent creates once its
/// "during the run" canary is up.
#[test]
#[ignore = "a victim: started by no_bystanders_whatever_the_plan"]
fn bystander_victim() {
    let Ok(plan) = std::env::var("OC_FAULT_PLAN") else {
        return;
    };
    let plan = plan_by_index(plan.parse().unwrap());
    let gate = PathBuf::from(std::env::var("OC_FAULT_GATE").unwrap());
    // Wait for the go: the parent has put a canary into our group.
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    // Survivors of every kind: one ignoring SIGTERM in the agent's group, escapes by
    // setsid and by setpgid, a stopped child, a respawner.
    let dir = orphan_check::fixture::fixture_dir();
    let script = r#"d=$1
"$d/sigterm-ignorer" &
"$d/setsid-escaper" &
"$d/pgid-escaper" &
"$d/stopped-child" &
"$d/respawner" &
echo started
wait"#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).arg(dir);
    println!("phase running");
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::file(&gate))
        .ready_timeout(Duration::from_secs(20))
        .kill(plan)
        .run()
        .expect("the scenario runs");
    let survivors = outcome.survivors_after(Duration::from_millis(300));
    let tree: BTreeSet<i32> = outcome.tree_before_kill().iter().map(|p| p.pid).collect();
    let me = std::process::id() as i32;
    for s in &survivors {
        assert_ne!(s.process.pid, me, "the harness is its own survivor?");
        assert_ne!(s.process.pgid, me, "a survivor in the harness's group");
        assert_eq!(
            s.env_marker,
            Some(true),
            "survivor {} is not of this run",
            s.process.pid
        );
    }
    // The plan never went to anything but the agent or its group (or members of it).
    for sent in &outcome.plan_record().sent {
        let to = sent.to.abs();
        assert!(
            to == outcome.agent_pid() || tree.contains(&to),
            "{} went to {} outside the tree {tree:?}",
            sent.signal,
            sent.to
        );
    }
    let left = outcome.kill_remaining(GONE_BOUND);
    assert!(left.is_some(), "cleanup did not finish");
    drop(outcome);
    println!("phase done survivors={}", survivors.len());
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn no_bystanders_whatever_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    // The detector works: a control canary records the signal we send it.
    let control = Canary::start(dir.path(), "control", None);
    rustix::process::kill_process(
        Pid::from_raw(control.pid()).unwrap(),
        rustix::process::Signal::USR1,
    )
    .unwrap();
    let out = control.guard.0.stdout.as_ref().unwrap().try_clone_fd();
    assert!(
        readable(&out, Duration::from_secs(10)),
        "the control canary is deaf"
    );
    assert_eq!(control.verdict(), (vec![libc::SIGUSR1.to_string()], true));
    let before = Canary::start(dir.path(), "before", None);
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || -> Result<Vec<Canary>, String> {
                let gate = dir.join(format!("gate-{i}"));
                let mut cmd = victim("faults::bystander_victim");
                cmd.env("OC_FAULT_PLAN", i.to_string())
                    .env("OC_FAULT_GATE", &gate)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0);
                let mut guard = Guard(cmd.spawn().map_err(|e| e.to_string())?);
                let rx = lines_of(guard.0.stdout.take().unwrap());
                let err = lines_of(guard.0.stderr.take().unwrap());
                // A sibling in the harness's own process group, before the run.
                let group = Canary::start(&dir, &format!("group-{i}"), Some(guard.pid()));
                guard.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
                let mut seen = Vec::new();
                expect_line(&rx, "phase running", Duration::from_secs(20), &mut seen)
                    .ok_or(format!("plan {i}: the victim did not start: {seen:?}"))?;
                // One more, outside, started while run() waits for readiness.
                let during = Canary::start(&dir, &format!("during-{i}"), None);
                std::fs::write(&gate, "go").unwrap();
                let pidfd = open_pidfd(guard.pid()).ok_or("pidfd")?;
                if !readable(&pidfd, Duration::from_secs(40)) {
                    return Err(format!("plan {i}: the victim hung"));
                }
                let status = guard.0.wait().map_err(|e| e.to_string())?;
                if !status.success() {
                    let out: Vec<String> = rx.try_iter().chain(err.try_iter()).collect();
                    return Err(format!(
                        "plan {} ({}): the harness process ended with {status}:\n{}",
                        i,
                        plan_by_index(i).name(),
                        out.join("\n")
                    ));
                }
                Ok(vec![group, during])
            })
        })
        .collect();
    let mut canaries = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let got = h.join().expect("plan thread");
        canaries.push((i, got.unwrap_or_else(|e| panic!("{e}"))));
    }
    before.assert_untouched("before the runs");
    for (i, cs) in &canaries {
        for c in cs {
            c.assert_untouched(&plan_by_index(*i).name());
        }
    }
}

// ---------------------------------------------------------------------------------------
// PID reuse
// ---------------------------------------------------------------------------------------

/// How to enter a fresh PID namespace here, or why we cannot.
fn pidns_prefix() -> Result<Vec<&'static str>, String> {
    let base = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
    let probe = |extra: &[&'static str]| -> Option<Vec<&'static str>> {
        let mut args: Vec<&'static str> = base.to_vec();
        args.splice(1..1, extra.iter().copied());
        let ok = Command::new(args[0])
            .args(&args[1..])
            .args(["sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(args)
    };
    if let Some(a) = probe(&[]) {
        return Ok(a);
    }
    if let Some(a) = probe(&["--user", "--map-root-user"]) {
        return Ok(a);
    }
    Err(
        "cannot create a PID namespace with a writable ns_last_pid (needs root, or \
         unprivileged user namespaces for `unshare --map-root-user`)"
            .into(),
    )
}

/// Makes the next process spawned get `pid`, in this PID namespace: writes
/// `ns_last_pid` and spawns, retrying while something else takes the number first.
fn spawn_with_pid(pid: i32, dir: &Path, name: &str) -> Canary {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("write ns_last_pid");
        let c = Canary::spawn(dir, name, None);
        if c.pid() == pid {
            c.await_ready();
            return c;
        }
        drop(c);
        assert!(Instant::now() < until, "could not get pid {pid} for {name}");
        std::thread::yield_now();
    }
}

/// Waits until `pid` has exited and been reaped by its parent (its pid free again).
fn wait_reaped(pid: i32, within: Duration) {
    if let Some(fd) = open_pidfd(pid) {
        assert!(readable(&fd, within), "pid {pid} did not exit");
    }
    // Exited; the sentinel reaps on the SIGCHLD. Bounded retries, no sleep.
    let until = Instant::now() + within;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < until, "pid {pid} was never reaped");
        std::thread::yield_now();
    }
}

fn open_fifo(path: &Path, flags: rustix::fs::OFlags) -> OwnedFd {
    rustix::fs::open(
        path,
        flags | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open fifo")
}

/// Not a test on its own: runs as PID 1 of a fresh PID namespace. For every plan, forces
/// (1) the agent's pid, which is also its process group's id, to be reused by a stranger
/// that leads its own group, after the agent was reaped and before the plan runs, and
/// (2) a survivor's pid to be reused by a stranger between the verdict and the cleanup.
/// Neither stranger may receive any signal.
#[test]
#[ignore = "a victim: started inside a PID namespace by pid_reuse_never_signals_an_impostor"]
fn pid_reuse_victim() {
    if std::env::var("OC_FAULT_PIDNS").is_err() {
        return;
    }
    assert_eq!(std::process::id(), 1, "not in a fresh PID namespace");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = r#"D=$1
setsid sleep 1000 &
setsid sh -c 'read x < "$0/release"' "$D" &
echo "$$ $!" > "$D/pids"
echo ready
exit 0"#;
    for (i, plan) in KillPlan::all(Duration::from_millis(200))
        .into_iter()
        .enumerate()
    {
        for f in ["pids", "release"] {
            let _ = std::fs::remove_file(d.join(f));
            rustix::fs::mknodat(
                rustix::fs::CWD,
                d.join(f),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .expect("mkfifo");
        }
        let pids_fd = open_fifo(
            &d.join("pids"),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "sh"]).arg(d);
        let started = Instant::now();
        let runner = std::thread::spawn(move || {
            Scenario::new(cmd)
                .ready_when(Ready::stdout_line("ready"))
                .kill_after(Duration::from_millis(1500))
                .kill(plan)
                .run()
                .expect("the scenario runs")
        });
        let mut text = String::new();
        let until = Instant::now() + Duration::from_secs(10);
        while !text.ends_with('\n') {
            let left = until.saturating_duration_since(Instant::now());
            assert!(readable(&pids_fd, left), "the agent never wrote its pids");
            let mut buf = [0u8; 64];
            match rustix::io::read(&pids_fd, &mut buf) {
                Ok(n) => text.push_str(std::str::from_utf8(&buf[..n]).unwrap()),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => panic!("read pids: {e}"),
            }
        }
        let mut it = text.split_whitespace().map(|p| p.parse::<i32>().unwrap());
        let (agent, leaving) = (it.next().unwrap(), it.next().unwrap());

        // (1) The agent exits right after "ready"; once reaped, its pid goes to a stranger
        // that leads its own group: the group id the plan is about is now a stranger's.
        wait_reaped(agent, Duration::from_secs(5));
        let impostor_agent = spawn_with_pid(agent, d, &format!("agent-impostor-{i}"));
        let impostor_at = Instant::now();
        let outcome = runner.join().expect("scenario thread");
        assert_eq!(outcome.agent_pid(), agent);
        let first = outcome
            .plan_record()
            .sent
            .first()
            .expect("a signal was sent");
        assert!(
            impostor_at < started + Duration::from_secs_f64(first.at_ms / 1000.0),
            "{}: the impostor came after the plan: the test proved nothing",
            plan.name()
        );
        for s in &outcome.plan_record().sent {
            assert!(
                !s.delivered || s.to.abs() != agent,
                "{}: {} delivered to {} = the impostor's pid/group",
                plan.name(),
                s.signal,
                s.to
            );
        }

        // (2) Verdict: the two setsid'd survivors. Then one of them exits, is reaped, and
        // its pid goes to a stranger before the cleanup.
        let survivors: BTreeSet<i32> = outcome
            .survivors_after(Duration::from_millis(200))
            .iter()
            .map(|s| s.process.pid)
            .collect();
        assert!(
            survivors.contains(&leaving),
            "{survivors:?} lacks {leaving}"
        );
        assert_eq!(survivors.len(), 2, "{}", outcome.report());
        let release = open_fifo(
            &d.join("release"),
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK,
        );
        rustix::io::write(&release, b"x\n").unwrap();
        drop(release);
        wait_reaped(leaving, Duration::from_secs(5));
        let impostor_survivor = spawn_with_pid(leaving, d, &format!("survivor-impostor-{i}"));
        // A report now, and a second verdict, must not count the stranger as ours.
        let again = outcome.survivors_after(Duration::from_millis(100));
        assert!(
            again.iter().all(|s| s.process.pid != leaving),
            "{}: the stranger with a survivor's old pid is reported as a survivor",
            plan.name()
        );
        assert!(outcome.kill_remaining(GONE_BOUND).is_some(), "cleanup");
        drop(outcome);
        impostor_agent.assert_untouched(&plan.name());
        impostor_survivor.assert_untouched(&plan.name());
        println!(
            "plan {} ok: agent pid {agent}, survivor pid {leaving} reused",
            plan.name()
        );
    }
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn pid_reuse_never_signals_an_impostor() {
    let prefix = match pidns_prefix() {
        Ok(p) => p,
        Err(why) => {
            println!("SKIPPED pid_reuse_never_signals_an_impostor: {why}");
            return;
        }
    };
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .arg(exe)
        .args([
            "--exact",
            "faults::pid_reuse_victim",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OC_FAULT_PIDNS", "1")
        .env_remove(RUN_ENV);
    let (code, out) = run_with_deadline(cmd, Duration::from_secs(60));
    assert_eq!(
        code,
        Some(0),
        "the victim in the PID namespace failed:\n{out}"
    );
    assert_eq!(
        out.matches(" ok: agent pid").count(),
        6,
        "not every plan ran:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn fifty_parallel_scenarios_see_only_their_own_and_all_are_cleaned() {
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || -> Result<(String, BTreeSet<i32>), String> {
                // Alternate two shapes: a setsid escaper, and a child in the agent's group.
                let how = if i % 2 == 0 { "session" } else { "plain" };
                let mut cmd = Fixture::Agent.command();
                cmd.args(["--child", "sigterm-ignorer", "--how", how]);
                let run = Scenario::new(cmd)
                    .ready_when(Ready::stdout_line("ready"))
                    .kill(KillPlan::sigkill())
                    .run();
                // All 50 trees are alive at once before anyone asks for a verdict (every
                // thread reaches the barrier, even one whose run failed).
                barrier.wait();
                let outcome = run.map_err(|e| format!("scenario {i}: {e}"))?;
                let survivors = outcome.survivors_after(Duration::from_millis(300));
                let tree: BTreeSet<i32> =
                    outcome.tree_before_kill().iter().map(|p| p.pid).collect();
                let mine = pids_with_env(RUN_ENV, outcome.run_id());
                let ids: BTreeSet<i32> = survivors.iter().map(|s| s.process.pid).collect();
                if ids.len() != 1 || !ids.is_subset(&tree) || !ids.is_subset(&mine) {
                    return Err(format!(
                        "scenario {i}: survivors {ids:?}, own tree {tree:?}, own marker \
                         {mine:?}\n{}",
                        outcome.report()
                    ));
                }
                let run_id = outcome.run_id().to_string();
                drop(outcome);
                Ok((run_id, ids))
            })
        })
        .collect();
    let mut all: BTreeMap<i32, String> = BTreeMap::new();
    let mut runs = Vec::new();
    for h in handles {
        let (run_id, ids) = h
            .join()
            .expect("scenario thread")
            .unwrap_or_else(|e| panic!("{e}"));
        for id in ids {
            if let Some(other) = all.insert(id, run_id.clone()) {
                panic!("pid {id} named by both {other} and {run_id}");
            }
        }
        runs.push(run_id);
    }
    assert_eq!(all.len(), N);
    // Dropped: none of the 50 runs has a live process (drop waits for the sentinel).
    for run_id in runs {
        assert!(
            pids_with_env(RUN_ENV, &run_id).is_empty(),
            "{run_id} left processes"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Fork storm
// ---------------------------------------------------------------------------------------

/// The two storms never run at once (under `cargo test` every test of the binary shares
/// one process and runs in parallel): 20 000 processes on a small runner starve the rest.
static STORM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fork_storm(mode: CgroupMode, label: &str) {
    let _one_at_a_time = STORM.lock().unwrap_or_else(|e| e.into_inner());
    const MAX: &str = "10000";
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
        .current
        .unwrap_or(u64::MAX);
    if pid_max < 20_000 || nproc < 20_000 {
        println!("SKIPPED fork storm: pid_max {pid_max}, ulimit -u {nproc}: too low for 10 000");
        return;
    }
    // The storm runs in its own session under an agent that dies of the SIGTERM: after
    // the plan it keeps forking as fast as it can (bounded by --max long-lived children
    // and 10 short-lived ones at a time).
    let mut cmd = Fixture::Agent.command();
    cmd.args([
        "--child",
        "fork-storm",
        "--how",
        "session",
        "--",
        "--max",
        MAX,
    ]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .cgroup(mode)
        .run()
        .expect("the storm runs");
    let run_id = outcome.run_id().to_string();
    // How long the verdict and the cleanup take is a figure of `benches/fork_storm.rs`;
    // here only what they find and leave.
    let survivors = outcome.survivors_after(Duration::from_millis(500));
    assert!(survivors.len() > 10, "the storm grew: {}", survivors.len());
    assert!(
        // A zombie's environment cannot be read (None); only Some(false) is a stranger.
        survivors.iter().all(|s| s.env_marker != Some(false)),
        "a survivor outside this run"
    );
    assert!(
        survivors.len() <= 10_000 + 10 + 2,
        "more survivors than the storm can make: {}",
        survivors.len()
    );
    drop(outcome);
    let gone = wait_marker_gone(&run_id, GONE_BOUND);
    assert!(gone.is_ok(), "{label}: left after drop: {gone:?}");
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn a_fork_storm_is_contained_and_cleaned() {
    fork_storm(CgroupMode::Auto, "cgroup-auto");
}

#[test]
#[ignore = "heavy: CI runs it alone (cargo nextest run --run-ignored only -E 'test(/^faults::/)')"]
fn a_fork_storm_is_contained_and_cleaned_without_cgroup() {
    fork_storm(CgroupMode::Off, "cgroup-off");
}

// ---------------------------------------------------------------------------------------
// Bad input (errors.rs has: missing and non-executable programs, exec and chdir
// failures, exit before ready, never ready, port busy, zero/absurd scenario deadlines, a
// zero verdict deadline)
// ---------------------------------------------------------------------------------------

/// Runs a scenario whose processes carry a unique tag; after `check` and the drop,
/// nothing with the tag may be alive.
fn tagged(
    mut cmd: Command,
    build: impl FnOnce(Scenario) -> Scenario,
    check: impl FnOnce(&Outcome),
) {
    let t = tag();
    cmd.env("OC_FAULT_TAG", &t);
    let outcome = build(Scenario::new(cmd)).run().expect("the scenario runs");
    check(&outcome);
    drop(outcome);
    assert!(
        pids_with_env("OC_FAULT_TAG", &t).is_empty(),
        "processes left after drop"
    );
}

#[test]
fn an_agent_that_exits_at_once_without_a_condition_is_clean() {
    tagged(
        Command::new("true"),
        |s| s.kill(KillPlan::sigterm_then_sigkill(Duration::from_millis(200))),
        |o| {
            o.assert_no_survivors(Duration::from_secs(2));
            assert!(!o.plan_record().agent_needed_sigkill);
            assert!(o.report().quiet_after_kill_ms.is_some());
        },
    );
}

#[test]
fn absurd_verdict_deadlines_are_refused_and_a_huge_one_returns_at_once_when_clean() {
    tagged(
        fixture(Fixture::Listener, &[]),
        |s| s.ready_when(Ready::stdout_line("ready")),
        |o| {
            let two_hours = Duration::from_secs(7200);
            for r in [
                o.check_no_survivors(two_hours).map(|_| ()),
                o.check_port_free(1, two_hours).map(|_| ()),
                o.check_no_writes_after_kill("/tmp", two_hours).map(|_| ()),
                o.check_graceful_stop(two_hours).map(|_| ()),
            ] {
                let f = r.expect_err("refused");
                assert!(matches!(f.reason, FailureReason::InvalidDeadline(_)));
            }
            // A clean tree answers the moment it is empty, whatever the deadline.
            let t = Instant::now();
            assert!(o.survivors_after(Duration::MAX).is_empty());
            assert!(t.elapsed() < Duration::from_secs(5));
        },
    );
}

#[test]
fn an_agent_that_closes_stdout_and_stderr_still_gets_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("up");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"exec >&- 2>&-; setsid sleep 1000 & touch "$1"; wait"#,
        "sh",
    ])
    .arg(&gate);
    tagged(
        cmd,
        |s| s.ready_when(Ready::file(&gate)).kill(KillPlan::sigkill()),
        |o| {
            let s = o.survivors_after(Duration::from_millis(300));
            assert_eq!(s.len(), 1, "{}", o.report());
            assert_eq!(s[0].process.comm, "sleep");
            assert!(o.stdout().lines().next().is_none());
            assert!(o.kill_remaining(GONE_BOUND).is_some());
        },
    );
    // Waiting for a stdout line that can never come is NeverReady, not a hang.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec >&- 2>&-; sleep 1000 & wait"]);
    let t = tag();
    cmd.env("OC_FAULT_TAG", &t);
    let err = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_millis(300))
        .run()
        .expect_err("never ready");
    assert!(matches!(err, Error::NeverReady { .. }), "{err:?}");
    assert!(pids_with_env("OC_FAULT_TAG", &t).is_empty());
}

#[test]
fn a_stopped_survivor_is_reported_stopped_and_still_cleaned() {
    let mut cmd = Fixture::Agent.command();
    cmd.args(["--child", "stopped-child", "--how", "plain"]);
    tagged(
        cmd,
        |s| {
            s.ready_when(Ready::stdout_line("ready"))
                .kill(KillPlan::sigkill())
        },
        |o| {
            let s = o.survivors_after(Duration::from_millis(300));
            let stopped: Vec<_> = s.iter().filter(|s| s.process.state == 'T').collect();
            assert_eq!(stopped.len(), 1, "{}", o.report());
            assert_eq!(stopped[0].process.state_word(), "stopped");
            assert!(
                stopped[0].escapes.contains(&Escape::Stopped),
                "{:?}",
                stopped[0].escapes
            );
            let pidfd = open_pidfd(stopped[0].process.pid).expect("pidfd");
            assert!(o.kill_remaining(GONE_BOUND).is_some(), "cleanup");
            assert!(!alive(&pidfd), "the stopped survivor outlived the cleanup");
        },
    );
}

const VFORK: &str = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.vfork() == 0:
    libc.write(1, b"ready\n", 6)
    libc.pause()
    libc._exit(0)
libc.pause()
"#;

#[test]
fn a_survivor_in_uninterruptible_sleep_is_reported_and_cleaned() {
    // A vfork parent waits (TASK_KILLABLE, shown as D) until its child execs or exits;
    // the child never does. The sh agent is SIGKILLed; both survive.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#""$1" -c "$2" & wait"#, "sh", python(), VFORK]);
    tagged(
        cmd,
        |s| {
            s.ready_when(Ready::stdout_line("ready"))
                .kill(KillPlan::sigkill())
        },
        |o| {
            let s = o.survivors_after(Duration::from_millis(300));
            let d: Vec<_> = s.iter().filter(|s| s.process.state == 'D').collect();
            if d.is_empty() && s.len() == 2 {
                println!(
                    "SKIPPED D state: this kernel shows the vfork parent as {:?}",
                    s
                );
                return;
            }
            assert_eq!(d.len(), 1, "{}", o.report());
            assert!(
                s.iter().any(|c| c.process.ppid == d[0].process.pid),
                "the vfork child survives with its D-state parent\n{}",
                o.report()
            );
            assert_eq!(d[0].process.state_word(), "uninterruptible");
            let fds: Vec<OwnedFd> = s.iter().filter_map(|s| open_pidfd(s.process.pid)).collect();
            assert!(o.kill_remaining(GONE_BOUND).is_some(), "cleanup");
            assert!(
                fds.iter().all(|f| !alive(f)),
                "a D-state survivor outlived cleanup"
            );
        },
    );
}

/// Not a test: the agent moves into the sentinel's process group.
const JOIN_SENTINEL_GROUP: &str = r#"
import os
os.setpgid(0, os.getppid())
os.execvp("sh", ["sh", "-c", "sleep 1000 & echo ready; wait"])
"#;

#[test]
fn an_agent_in_the_sentinels_group_never_gets_the_sentinel_signalled() {
    for plan in KillPlan::all(Duration::from_millis(200)) {
        let mut cmd = Command::new(python());
        cmd.args(["-c", JOIN_SENTINEL_GROUP]);
        tagged(
            cmd,
            |s| s.ready_when(Ready::stdout_line("ready")).kill(plan),
            |o| {
                let sentinel = o.sentinel_pid();
                let agent = o.tree_before_kill().iter().find(|p| p.pid == o.agent_pid());
                assert_eq!(agent.map(|a| a.pgid), Some(sentinel), "the agent moved");
                let sentinel_fd = open_pidfd(sentinel).expect("sentinel alive");
                for s in &o.plan_record().sent {
                    assert!(
                        s.to != -sentinel && s.to != sentinel,
                        "{}: {} sent to the sentinel ({})",
                        plan.name(),
                        s.signal,
                        s.to
                    );
                }
                let survivors = o.survivors_after(Duration::from_millis(300));
                assert!(alive(&sentinel_fd), "{}: the sentinel died", plan.name());
                // Sane: the agent's child always survives (nothing reaches the sentinel's
                // group), the agent survives the plans that could not reach it, and
                // nothing named is the sentinel or outside the tree.
                assert!(
                    survivors.iter().any(|s| s.process.pid != o.agent_pid()),
                    "{}: {}",
                    plan.name(),
                    o.report()
                );
                for s in &survivors {
                    assert_ne!(s.process.pid, sentinel);
                    assert_eq!(s.env_marker, Some(true));
                }
                let agent_survived = survivors.iter().any(|s| s.process.pid == o.agent_pid());
                assert_eq!(
                    agent_survived,
                    plan.targets_group(),
                    "{}: the agent's fate\n{}",
                    plan.name(),
                    o.report()
                );
                assert!(o.kill_remaining(GONE_BOUND).is_some());
            },
        );
    }
}

#[test]
fn an_agent_that_left_its_group_is_diagnosed_when_it_survives_a_group_plan() {
    // Every survivor must come with a diagnosis (matrix.rs asserts it for every cell).
    // The agent below moved into the sentinel's group, so the group plans (sent to the
    // group whose id is the agent's pid) reach nobody and the agent survives: the report
    // must say why (it left its process group), and not that its target was "already
    // gone".
    for plan in [
        KillPlan::sigint_group(),
        KillPlan::sigkill_group(),
        KillPlan::sighup_group(),
    ] {
        let mut cmd = Command::new(python());
        cmd.args(["-c", JOIN_SENTINEL_GROUP]);
        tagged(
            cmd,
            |s| s.ready_when(Ready::stdout_line("ready")).kill(plan),
            |o| {
                let survivors = o.survivors_after(Duration::from_millis(300));
                let agent = survivors
                    .iter()
                    .find(|s| s.process.pid == o.agent_pid())
                    .expect("the agent survives");
                assert!(
                    agent.escapes.contains(&Escape::NewProcessGroup),
                    "{}: the agent's escape is not diagnosed: {:?}\n{}",
                    plan.name(),
                    agent.escapes,
                    o.report()
                );
                assert!(
                    !o.report().to_string().contains("already gone"),
                    "{}",
                    o.report()
                );
            },
        );
    }
}
