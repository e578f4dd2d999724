//! `orphan-check run [OPTIONS] -- COMMAND [ARGS…]`: one scenario (or `--repeat N` of
//! them), the report on stderr, optionally JSON, JUnit and HTML files for CI dashboards.
//!
//! With `--kill-at random:A..B` each repetition waits a random delay in `[A, B]` after
//! readiness before the kill, drawn from a splitmix64 generator seeded by `--seed` (or a
//! fresh seed, printed), so a leak found at one moment is reproduced from the seed.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use orphan_check::scenario::{CgroupMode, Stdin, TouchMode};
use orphan_check::time::format_duration;
use orphan_check::{KillPlan, Ready, Report, Scenario};

use crate::output::{self, CaseResult, Progress, TestCase};
use crate::parse::{self, KillWindow};
use crate::rng::{self, SplitMix64};
use crate::{Fatal, Verdict};

/// Whether to place the agent in a fresh cgroup v2.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Cgroup {
    /// When a writable cgroup v2 hierarchy is found.
    Auto,
    /// Never.
    Off,
    /// Always; fail (exit 2) when none can be created.
    Required,
}

impl From<Cgroup> for CgroupMode {
    fn from(c: Cgroup) -> CgroupMode {
        match c {
            Cgroup::Auto => CgroupMode::Auto,
            Cgroup::Off => CgroupMode::Off,
            Cgroup::Required => CgroupMode::Required,
        }
    }
}

/// How `--touch` changes the file.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Touch {
    /// Write the same bytes back: only the modification time changes.
    Rewrite,
    /// Append the line `// touched by orphan-check`.
    Append,
}

impl From<Touch> for TouchMode {
    fn from(t: Touch) -> TouchMode {
        match t {
            Touch::Rewrite => TouchMode::Rewrite,
            Touch::Append => TouchMode::AppendLine,
        }
    }
}

/// What the agent's stdin is.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StdinMode {
    /// /dev/null: a read returns end of file at once.
    Null,
    /// A pipe the harness holds (the close-stdin plans close it).
    Pipe,
}

/// Options of `orphan-check run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How to kill the agent: sigkill (OOM killer, kill -9; with --container: docker
    /// kill), sigterm, term-then-kill=5s, int-group (Ctrl-C), kill-group (kill -9 -PGID),
    /// hup-group (the terminal closing), parent-death (SIGKILL to a launcher the agent is
    /// started through: its IDE, terminal or supervisor dying), docker-stop=10s (SIGTERM
    /// to the container's PID 1, grace, SIGKILL; implies --container). Or how it ends
    /// without a kill: own-exit (alias none: no signal, it exits by itself within
    /// --exit-timeout), close-stdin (end of file on its stdin, like a client going away),
    /// close-stdin-then-kill=5s (then SIGKILL after the grace).
    #[arg(long, value_name = "PLAN", default_value = "sigkill", value_parser = parse::kill_plan)]
    kill: KillPlan,

    /// When the agent is ready to be killed: port:3000 (listening), line:TEXT (a stdout
    /// line starting with TEXT), file:PATH (exists), after:2s. Default: as soon as it
    /// started.
    #[arg(long, value_name = "COND", value_parser = parse::ready)]
    ready: Option<Ready>,

    /// With --kill own-exit: how long the agent may run before it exits by itself. An
    /// agent still running then is the verdict "did not finish" (exit code 1) and its tree
    /// is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::positive_duration)]
    exit_timeout: Duration,

    /// The agent's stdin: null (/dev/null, reads end at once) or pipe (a pipe the harness
    /// holds open and never writes; the close-stdin plans close it). Default: null, or pipe
    /// for the close-stdin plans.
    #[arg(long, value_enum, value_name = "MODE")]
    stdin: Option<StdinMode>,

    /// How long to wait for readiness.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::positive_duration)]
    ready_timeout: Duration,

    /// A fixed delay between readiness and the kill.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration, conflicts_with = "kill_at")]
    kill_after: Option<Duration>,

    /// Kill at a random moment after readiness: random:A..B (e.g. random:0ms..2s), drawn
    /// anew for each repetition from --seed.
    #[arg(long, value_name = "random:A..B", value_parser = parse::kill_window)]
    kill_at: Option<KillWindow>,

    /// The seed for --kill-at (default: a fresh one, printed so the run can be repeated).
    #[arg(long, value_name = "N", requires = "kill_at")]
    seed: Option<u64>,

    /// Run the scenario N times; the JSON is then an array of reports, the JUnit one
    /// test case per repetition.
    #[arg(long, value_name = "N", value_parser = parse::repeat)]
    repeat: Option<u32>,

    /// A TCP port to watch (repeatable): it must be free before the start, and it must be
    /// free again within --port-deadline after the kill.
    #[arg(long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    ports: Vec<u16>,

    /// How long after the kill a descendant may live before it counts as a survivor.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::positive_duration)]
    deadline: Duration,

    /// How long after the kill a watched port may stay held (default: --deadline).
    #[arg(long, value_name = "DURATION", value_parser = parse::positive_duration)]
    port_deadline: Option<Duration>,

    /// A directory nothing may write to after the kill (repeatable).
    #[arg(long = "watch-dir", value_name = "DIR")]
    watch_dirs: Vec<PathBuf>,

    /// Whether to place the agent in a fresh cgroup v2.
    #[arg(long, value_enum, default_value = "auto")]
    cgroup: Cgroup,

    /// Container mode, as docker run without --init: the agent is PID 1 of a new PID
    /// namespace with its own /proc (host network). Needs root or unprivileged user
    /// namespaces (exit 2 otherwise). The report shows host and namespace pids, whether
    /// PID 1 honoured SIGTERM, and what the namespace's SIGKILL took.
    #[arg(long)]
    container: bool,

    /// Run CMD as the container's PID 1 with the agent under it, as docker run --init
    /// does: CMD is split on spaces and the agent's command is appended, e.g.
    /// --init 'tini --' or --init dumb-init. Implies --container.
    #[arg(long, value_name = "CMD")]
    init: Option<String>,

    /// After the kill, change FILE (see --touch-mode) so that a surviving watcher (tsc
    /// --watch, a bundler) rebuilds: files written after the kill then prove it is alive,
    /// and the report names their likely writer. Use with --watch-dir.
    #[arg(long, value_name = "FILE")]
    touch: Option<PathBuf>,

    /// How --touch changes the file.
    #[arg(long, value_enum, default_value = "rewrite", requires = "touch")]
    touch_mode: Touch,

    /// Write the report as JSON (schema orphan-check/report, version 1) to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write the report as one self-contained HTML page to FILE, a picture of the run for
    /// a CI artifact (with --repeat: the first repetition that leaked, else the last).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Write a JUnit XML file with one test case per scenario run.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// The agent and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

impl Args {
    /// The scenario for one repetition.
    fn scenario(&self, kill_after: Duration) -> Scenario {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        let mut s = Scenario::new(command)
            .kill(self.kill)
            .ready_timeout(self.ready_timeout)
            .kill_after(kill_after)
            .exit_timeout(self.exit_timeout)
            .cgroup(self.cgroup.into());
        match self.stdin {
            Some(StdinMode::Null) => s = s.stdin(Stdin::Null),
            Some(StdinMode::Pipe) => s = s.stdin(Stdin::Pipe),
            None => {}
        }
        if let Some(ready) = &self.ready {
            s = s.ready_when(ready.clone());
        }
        for &port in &self.ports {
            s = s.watch_port(port);
        }
        for dir in &self.watch_dirs {
            s = s.watch_dir(dir);
        }
        if self.container {
            s = s.container();
        }
        if let Some(init) = &self.init {
            let mut words = init.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap_or_default());
            cmd.args(words);
            s = s.init(cmd);
        }
        if let Some(path) = &self.touch {
            s = s.touch_after_kill(path).touch_mode(self.touch_mode.into());
        }
        s
    }

    /// Runs one scenario and asks every verdict; the tree is gone when this returns.
    fn run_once(&self, kill_after: Duration) -> Result<Report, orphan_check::Error> {
        let outcome = self.scenario(kill_after).run()?;
        // Survivors first: it waits (up to the deadline) only when something is alive;
        // the port and file verdicts are counted from the same kill.
        let _ = outcome.survivors_after(self.deadline);
        let port_deadline = self.port_deadline.unwrap_or(self.deadline);
        for &port in outcome.watched_ports() {
            let _ = outcome.port_verdict(port, port_deadline);
        }
        for dir in &self.watch_dirs {
            let _ = outcome.writes_after_kill(dir, self.deadline);
        }
        // Container mode: the stop is judged once the container has ended (or at the
        // deadline).
        let _ = outcome.check_graceful_stop(self.deadline);
        let report = outcome.report();
        outcome.kill_remaining(Duration::from_secs(10));
        Ok(report)
    }

    /// The name of a JUnit test case.
    fn case_name(&self, rep: Option<(u32, Duration)>) -> String {
        let command: Vec<String> = self
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let base = format!("{}: {}", self.kill.name(), command.join(" "));
        match rep {
            Some((i, after)) => format!("{base} #{i} (kill after {})", format_duration(after)),
            None => base,
        }
    }
}

/// The kill delays of every repetition: fixed, or drawn from the window.
fn kill_delays(
    count: u32,
    fixed: Option<Duration>,
    window: Option<KillWindow>,
    seed: u64,
) -> Vec<Duration> {
    match window {
        Some(w) => {
            let mut rng = SplitMix64::new(seed);
            let (a, b) = (w.from.as_millis() as u64, w.to.as_millis() as u64);
            (0..count)
                .map(|_| Duration::from_millis(rng.in_range(a, b)))
                .collect()
        }
        None => vec![fixed.unwrap_or_default(); count as usize],
    }
}

/// Runs the subcommand.
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    let repeated = args.repeat.is_some();
    let count = args.repeat.unwrap_or(1);
    let seed = args.seed.unwrap_or_else(rng::fresh_seed);
    let delays = kill_delays(count, args.kill_after, args.kill_at, seed);
    if args.kill_at.is_some() {
        eprintln!("orphan-check: kill moments drawn with --seed {seed}");
    }

    let progress = Progress::new(delays.len());
    let mut reports: Vec<Report> = Vec::new();
    let mut cases: Vec<TestCase> = Vec::new();
    let mut leaks = 0;
    let mut lost = 0;
    let mut failed: Option<Fatal> = None;
    for (i, &delay) in delays.iter().enumerate() {
        progress.update(i, leaks);
        let rep = repeated.then_some((i as u32 + 1, delay));
        let started = Instant::now();
        let report = match args.run_once(delay) {
            Ok(r) => r,
            Err(e) => {
                progress.clear();
                cases.push(TestCase {
                    name: args.case_name(rep),
                    seconds: started.elapsed().as_secs_f64(),
                    result: CaseResult::Error {
                        message: e.to_string(),
                    },
                });
                failed = Some(e.into());
                break;
            }
        };
        // Lost track is never clean: reported like a leak, and the run exits 2.
        let leak = report.is_leak() || report.lost_track();
        if leak {
            leaks += 1;
        }
        if report.lost_track() {
            lost += 1;
        }
        // One run: always the report. Repetitions: the reports of those that leaked.
        if !repeated || leak {
            progress.clear();
            if repeated {
                eprintln!(
                    "orphan-check: repetition {} of {count} (kill after {}):",
                    i + 1,
                    format_duration(delay)
                );
            }
            output::print_report(&report);
        }
        cases.push(TestCase {
            name: args.case_name(rep),
            seconds: started.elapsed().as_secs_f64(),
            result: if leak {
                CaseResult::Failed {
                    message: output::leak_message(&report),
                    body: report.to_string(),
                }
            } else {
                CaseResult::Passed
            },
        });
        reports.push(report);
    }
    progress.update(reports.len(), leaks);
    progress.clear();

    if repeated {
        eprint!(
            "{}",
            summary(&reports, &delays, seed, args.kill_at.is_some())
        );
    }
    if let Some(path) = &args.junit {
        output::write_file(path, &output::junit("orphan-check", &cases)?)?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(path) = &args.json {
        let json = if repeated {
            serde_json::to_string_pretty(&reports)
                .map_err(|e| Fatal(format!("could not serialize the reports: {e}")))?
        } else {
            reports.first().map(Report::to_json).unwrap_or_default()
        };
        output::write_file(path, &(json + "\n"))?;
    }
    if let Some(path) = &args.html {
        let shown = reports.iter().find(|r| r.is_leak()).or(reports.last());
        if let Some(report) = shown {
            output::write_file(path, &report.to_html())?;
        }
    }
    if lost > 0 {
        return Err(Fatal(format!(
            "lost track of the tree in {lost} of {} run(s): the sentinel was killed before \
             its tree was empty, so nothing proves it clean (the survivors the cgroup and \
             the ORPHAN_CHECK_RUN marker found are listed above, and were killed)",
            reports.len()
        )));
    }
    Ok(if leaks > 0 {
        Verdict::Leak
    } else {
        Verdict::Clean
    })
}

/// The summary after repetitions: each kill moment and whether it leaked.
fn summary(reports: &[Report], delays: &[Duration], seed: u64, random: bool) -> String {
    let leaked: Vec<usize> = (0..reports.len())
        .filter(|&i| reports[i].is_leak())
        .collect();
    let mut out = format!(
        "orphan-check: {} of {} repetitions leaked{}\n",
        leaked.len(),
        reports.len(),
        if random {
            format!(" (--seed {seed})")
        } else {
            String::new()
        }
    );
    for (i, (report, delay)) in reports.iter().zip(delays).enumerate() {
        out.push_str(&format!(
            "  #{:<4} kill after {:>9}  {}\n",
            i + 1,
            format_duration(*delay),
            if report.is_leak() {
                format!("LEAK  {}", output::leak_message(report))
            } else {
                "clean".to_string()
            }
        ));
    }
    if !leaked.is_empty() && random {
        let times: Vec<String> = leaked.iter().map(|&i| format_duration(delays[i])).collect();
        out.push_str(&format!(
            "  leaked when killed after: {}\n",
            times.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delays_stay_in_the_window_and_follow_the_seed() {
        let w = KillWindow {
            from: Duration::from_millis(100),
            to: Duration::from_millis(300),
        };
        let a = kill_delays(20, None, Some(w), 42);
        assert_eq!(a, kill_delays(20, None, Some(w), 42));
        assert_ne!(a, kill_delays(20, None, Some(w), 43));
        assert!(a.iter().all(|d| *d >= w.from && *d <= w.to));
        let fixed = kill_delays(3, Some(Duration::from_millis(5)), None, 0);
        assert_eq!(fixed, vec![Duration::from_millis(5); 3]);
    }
}
