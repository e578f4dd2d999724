//! The clean path, side by side with a bare `Command`.
//!
//! `cargo run --release --example clean-cost [N]` runs N clean scenarios (agent
//! `sh -c "echo up; exec sleep 1000"`, ready on `up`, SIGKILL, `survivors_after`, drop)
//! interleaved with N times what a user would otherwise write (`Command` spawn, read the
//! line, kill, wait), and prints both medians, their ratio and the CPU time per run of
//! every process involved (`getrusage` of this process and its reaped children).
//!
//! - `ORPHAN_CHECK_CGROUP=off` turns the cgroup layer off.
//! - `CLEAN_COST_ONLY=ours` or `=plain` runs one side only (for `strace -f` or `perf`).
//! - Built with `--features cost-trace`, it also prints the median time of each step of
//!   the clean path (the time since the previous step's mark), slowest first.
//!
//! On a busy machine, `chrt -f 1` (SCHED_FIFO, for both sides alike) keeps most of the
//! other load out of the figures.

use orphan_check::{KillPlan, Ready, Scenario};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn agent() -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "echo up; exec sleep 1000"]);
    c
}

/// One clean scenario, timed from `run` to the end of the drop.
fn ours() -> Duration {
    #[cfg(feature = "cost-trace")]
    orphan_check::bench::cost_marks();
    let t = Instant::now();
    let outcome = Scenario::new(agent())
        .ready_when(Ready::stdout_line("up"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("scenario");
    let survivors = outcome.survivors_after(Duration::from_secs(10));
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    drop(outcome);
    let elapsed = t.elapsed();
    #[cfg(feature = "cost-trace")]
    steps::record(t, t + elapsed);
    elapsed
}

/// The same with a bare `Command`: spawn, read the ready line, kill, wait.
fn plain() -> Duration {
    let t = Instant::now();
    let mut child = agent()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 || line.starts_with("up") {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    t.elapsed()
}

#[cfg(feature = "cost-trace")]
mod steps {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    /// Per mark: the time since the previous mark and the time since the start, per run.
    type Steps = BTreeMap<&'static str, (Vec<Duration>, Vec<Duration>)>;

    thread_local! {
        static STEPS: RefCell<Steps> = Default::default();
    }

    /// Each mark of the scenario that ran from `start` to `end`, as the time since the
    /// previous mark and since the start.
    pub fn record(start: Instant, end: Instant) {
        let mut marks = orphan_check::bench::cost_marks();
        marks.push(("drop: rest (cgroup rmdir, tracker)", end));
        marks.sort_by_key(|(_, at)| *at);
        STEPS.with(|steps| {
            let mut steps = steps.borrow_mut();
            let mut last = start;
            for (label, at) in marks {
                let at = at.max(start);
                let entry = steps.entry(label).or_default();
                entry.0.push(at.saturating_duration_since(last));
                entry.1.push(at - start);
                last = at;
            }
        });
    }

    /// Forgets the steps recorded so far (the warm-up run's).
    pub fn reset() {
        STEPS.with(RefCell::take);
    }

    /// Prints each mark in the order it comes (by its median time since the start),
    /// with the median time since the previous mark.
    pub fn print() {
        let steps = STEPS.with(RefCell::take);
        let mut rows: Vec<_> = steps
            .into_iter()
            .map(|(label, (mut step, since))| {
                step.sort();
                let tenth = step[step.len() / 10];
                let ninth = step[step.len() * 9 / 10];
                (
                    super::median(since),
                    super::median(step),
                    tenth,
                    ninth,
                    label,
                )
            })
            .collect();
        rows.sort();
        println!(
            "{:>10}  {:>10}  {:>17}  mark",
            "at (µs)", "step (µs)", "step p10–p90"
        );
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        for (since, step, tenth, ninth, label) in rows {
            println!(
                "{:>10.1}  {:>10.1}  {:>8.1}–{:<8.1}  {label}",
                us(since),
                us(step),
                us(tenth),
                us(ninth)
            );
        }
    }
}

/// CPU time (user + system) of this process and of its reaped children so far.
fn cpu() -> Duration {
    cpu_of(&[libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN])
}

fn cpu_of(whos: &[i32]) -> Duration {
    let mut total = Duration::ZERO;
    for &who in whos {
        // SAFETY: getrusage writes one `rusage` into the zeroed struct it is given.
        let usage = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut u);
            u
        };
        for t in [usage.ru_utime, usage.ru_stime] {
            total += Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        }
    }
    total
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros_per_run(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50)
        .max(1);
    let only = std::env::var("CLEAN_COST_ONLY").unwrap_or_default();
    // One of each first: the program lookups, the first thread, the page cache.
    ours();
    plain();
    #[cfg(feature = "cost-trace")]
    steps::reset();
    let (mut a, mut b) = (vec![], vec![]);
    // Ours is the whole loop's CPU less plain's, so that what ours leaves to finish
    // after its drop returns counts as ours, wherever it lands: the idle sentinel (and
    // the agents it reaped) counts among this process's reaped children only once it
    // exits, at the end; the tracker's thread ends after the drop, during plain's run.
    // Plain's is its child's and this thread's own while it runs.
    let (start_all, start_self) = (cpu(), cpu_of(&[libc::RUSAGE_SELF]));
    let (mut plain_thread, mut plain_children) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        if only != "plain" {
            a.push(ours());
        }
        if only != "ours" {
            let (t, c) = (
                cpu_of(&[libc::RUSAGE_THREAD]),
                cpu_of(&[libc::RUSAGE_CHILDREN]),
            );
            b.push(plain());
            plain_thread += cpu_of(&[libc::RUSAGE_THREAD]) - t;
            plain_children += cpu_of(&[libc::RUSAGE_CHILDREN]) - c;
        }
    }
    orphan_check::end_idle_sentinels();
    let cpu_b = plain_thread + plain_children;
    let cpu_a = cpu() - start_all - cpu_b;
    let cpu_self = cpu_of(&[libc::RUSAGE_SELF]) - start_self - plain_thread;
    println!(
        "CPU per run (all processes, rusage): ours {:.0} µs (harness process {:.0} µs), plain {:.0} µs",
        micros_per_run(cpu_a, n),
        micros_per_run(cpu_self, n),
        micros_per_run(cpu_b, n),
    );
    #[cfg(feature = "cost-trace")]
    steps::print();
    match only.as_str() {
        "ours" => println!("ours {:?}", median(a)),
        "plain" => println!("plain {:?}", median(b)),
        _ => {
            let (a, b) = (median(a), median(b));
            println!(
                "ours {a:?} plain {b:?} ratio {:.2}",
                a.as_secs_f64() / b.as_secs_f64()
            );
        }
    }
}
