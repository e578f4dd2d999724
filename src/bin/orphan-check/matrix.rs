//! `orphan-check matrix`: every escape fixture under each wrapper (`tini`, `dumb-init`,
//! `setsid`…) and each kill plan, and a table of what survived.
//!
//! A wrapper's words are put before the fixture's command, so the wrapper is the agent
//! the plan kills. A full run (no `--fixture`, no `--plan`) ends with the inits among the
//! wrappers as PID 1 of a container (`container_matrix.rs`). Scenarios run on a pool of
//! threads (each one owns its tree, its port and its directory), and the table is
//! assembled in a fixed order, so the output depends only on what survived. Versions,
//! kernel and date go in `<!-- … -->` header lines, which a regeneration check ignores.
//!
//! This file runs the cells; `matrix/table.rs` writes them out (the header, the
//! markdown table, the JSON document).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use orphan_check::{Error, Fixture, KillPlan, Ready, Scenario};

mod table;

use table::{first_line, json_doc, markdown, today, version_of, Header};

use crate::output::write_file;
use crate::parse;
use crate::{Fatal, Verdict};

/// The wrappers measured when none is given. `tini` needs `--` before a command with
/// options of its own; `setsid` needs `-w`, or (the agent leading its process group) it
/// forks, returns at once, and the scenario ends before the fixture is ready.
const DEFAULT_WRAPPERS: [&str; 6] = [
    "",
    "tini --",
    "tini -g --",
    "dumb-init",
    "timeout -s KILL 3600",
    "setsid -w",
];

/// Counts from here on are shown as `10+ left`: only a fork storm gets there, and how
/// many of its short-lived children are caught alive depends on timing.
const MANY: usize = 10;

/// Fixtures that take `--port N` and listen on it.
const LISTENERS: [Fixture; 12] = [
    Fixture::Listener,
    Fixture::SigtermIgnorer,
    Fixture::ShellForkTree,
    Fixture::SlowPortHolder,
    Fixture::DoubleForkDaemon,
    Fixture::SetsidEscaper,
    Fixture::PgidEscaper,
    Fixture::EnvScrubber,
    Fixture::Respawner,
    Fixture::WrapperChain,
    Fixture::ExecReplace,
    Fixture::PdeathsigChild,
];

/// Options of `orphan-check matrix`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A wrapper command put before each fixture, e.g. 'tini -g --'; '' for none
    /// (repeatable). Default: '', tini, 'tini -g', dumb-init, 'timeout -s KILL 3600',
    /// setsid. Wrappers not installed are reported as skipped.
    #[arg(long = "wrapper", value_name = "WORDS")]
    wrappers: Vec<String>,

    /// Only this fixture (repeatable). Default: every fixture except `agent`.
    #[arg(long = "fixture", value_name = "NAME", value_parser = fixture_name)]
    fixtures: Vec<Fixture>,

    /// Only this kill plan (repeatable). Default: all six.
    #[arg(long = "plan", value_name = "PLAN", value_parser = parse::kill_plan)]
    plans: Vec<KillPlan>,

    /// The grace of the term-then-kill plan.
    #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = parse::positive_duration)]
    grace: Duration,

    /// How long after the kill a descendant may live before it counts as a survivor.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse::positive_duration)]
    deadline: Duration,

    /// How long to wait for each fixture's ready line.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse::positive_duration)]
    ready_timeout: Duration,

    /// Scenarios run at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,

    /// Also write the table as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn fixture_name(name: &str) -> Result<Fixture, String> {
    Fixture::from_name(name)
        .ok_or_else(|| format!("unknown fixture {name:?} (see `orphan-check fixture --list`)"))
}

/// One wrapper of the table.
struct Wrapper {
    words: Vec<String>,
    /// `<tool> --version`'s first line; `None` when the tool is not installed.
    version: Option<String>,
}

impl Wrapper {
    fn label(&self) -> String {
        if self.words.is_empty() {
            "no wrapper".into()
        } else {
            format!("`{}`", self.words.join(" "))
        }
    }

    fn text(&self) -> String {
        self.words.join(" ")
    }
}

/// What one cell found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    /// Nothing alive at the deadline.
    Clean,
    /// These (`comm` names) were alive at the deadline.
    Left(Vec<String>),
    /// The scenario could not run.
    Failed(String),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Clean => "clean".into(),
            Cell::Left(names) if names.len() >= MANY => format!("{MANY}+ left"),
            Cell::Left(names) => format!("{} left", names.len()),
            Cell::Failed(why) => format!("error: {why}"),
        }
    }
}

/// Runs the subcommand.
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    let words: Vec<String> = if args.wrappers.is_empty() {
        DEFAULT_WRAPPERS.iter().map(|w| w.to_string()).collect()
    } else {
        args.wrappers.clone()
    };
    let wrappers: Vec<Wrapper> = words
        .iter()
        .map(|w| {
            let words: Vec<String> = w.split_whitespace().map(str::to_owned).collect();
            let version = match words.first() {
                None => Some(String::new()),
                Some(tool) => version_of(tool),
            };
            Wrapper { words, version }
        })
        .collect();
    let fixtures: Vec<Fixture> = if args.fixtures.is_empty() {
        Fixture::ALL
            .into_iter()
            // The driver agent starts the others; the parent poller is about a dying
            // parent, which no wrapper changes.
            .filter(|f| *f != Fixture::Agent && *f != Fixture::ParentPoller)
            .collect()
    } else {
        args.fixtures.clone()
    };
    let plans: Vec<KillPlan> = if args.plans.is_empty() {
        KillPlan::all(args.grace).to_vec()
    } else {
        args.plans.clone()
    };

    let (nf, np) = (fixtures.len(), plans.len());
    let jobs: Vec<(usize, usize, usize)> = wrappers
        .iter()
        .enumerate()
        .filter(|(_, w)| w.version.is_some())
        .flat_map(|(w, _)| (0..nf).flat_map(move |f| (0..np).map(move |p| (w, f, p))))
        .collect();
    let cells = run_all(&args, &wrappers, &fixtures, &plans, &jobs);

    let header = Header {
        kernel: first_line(Command::new("uname").arg("-r")).unwrap_or_else(|| "unknown".into()),
        date: today(),
    };
    print!(
        "{}",
        markdown(&args, &header, &wrappers, &fixtures, &plans, &cells)
    );
    if args.fixtures.is_empty() && args.plans.is_empty() {
        // The inits among the wrappers, as PID 1 of a container.
        let inits: Vec<Vec<String>> = wrappers
            .iter()
            .filter(|w| w.version.is_some())
            .filter(|w| {
                w.words
                    .first()
                    .is_none_or(|t| t == "tini" || t == "dumb-init")
            })
            .map(|w| w.words.clone())
            .collect();
        print!(
            "{}",
            crate::container_matrix::markdown(&inits, args.grace, args.deadline)
        );
    }
    if let Some(path) = &args.json {
        let doc = json_doc(&args, &header, &wrappers, &fixtures, &plans, &cells);
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Fatal(format!("could not serialize the matrix: {e}")))?;
        write_file(path, &(text + "\n"))?;
    }
    Ok(Verdict::Clean)
}

/// Cells by (wrapper, fixture, plan) index.
type Cells = std::collections::BTreeMap<(usize, usize, usize), Cell>;

/// Runs the jobs on a pool of `args.jobs` threads.
fn run_all(
    args: &Args,
    wrappers: &[Wrapper],
    fixtures: &[Fixture],
    plans: &[KillPlan],
    jobs: &[(usize, usize, usize)],
) -> Cells {
    let next = AtomicUsize::new(0);
    let cells = Mutex::new(Cells::new());
    let threads = usize::from(args.jobs).min(jobs.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(w, f, p)) = jobs.get(i) else {
                    break;
                };
                let cell = run_cell(args, &wrappers[w], fixtures[f], plans[p], i);
                cells
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((w, f, p), cell);
            });
        }
    });
    cells.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// One scenario: the fixture under the wrapper, killed by the plan.
fn run_cell(args: &Args, wrapper: &Wrapper, fixture: Fixture, plan: KillPlan, n: usize) -> Cell {
    let dir = (fixture == Fixture::FileWatcher).then(|| {
        std::env::temp_dir().join(format!("orphan-check-matrix-{}-{n}", std::process::id()))
    });
    if let Some(d) = &dir {
        if let Err(e) = std::fs::create_dir_all(d) {
            return Cell::Failed(format!("temp dir: {e}"));
        }
    }
    let cell = run_scenario(args, wrapper, fixture, plan, dir.as_deref());
    if let Some(d) = &dir {
        let _ = std::fs::remove_dir_all(d);
    }
    cell
}

fn run_scenario(
    args: &Args,
    wrapper: &Wrapper,
    fixture: Fixture,
    plan: KillPlan,
    dir: Option<&Path>,
) -> Cell {
    let listens = LISTENERS.contains(&fixture);
    // A port picked free can still be taken by a program that picks ports its own way
    // before the start; the harness then refuses with PortBusy, and another is tried.
    for _ in 0..5 {
        let port = if listens { free_port() } else { None };
        let mut command = match wrapper.words.split_first() {
            Some((tool, rest)) => {
                let mut c = Command::new(tool);
                c.args(rest).arg(fixture.path());
                c
            }
            None => fixture.command(),
        };
        if let Some(p) = port {
            command.arg("--port").arg(p.to_string());
        }
        if let Some(d) = dir {
            command.arg("--dir").arg(d);
        }
        if fixture == Fixture::ForkStorm {
            // Exactly ten long-lived children, so the count does not grow with time.
            command.args(["--max", &MANY.to_string()]);
        }
        let mut scenario = Scenario::new(command)
            .ready_when(Ready::stdout_line("ready"))
            .ready_timeout(args.ready_timeout)
            .kill(plan);
        if let Some(p) = port {
            scenario = scenario.watch_port(p);
        }
        let outcome = match scenario.run() {
            Ok(o) => o,
            Err(Error::PortBusy { .. }) => continue,
            Err(Error::ExitedBeforeReady { status, .. }) => {
                return Cell::Failed(format!("exited before ready ({status})"))
            }
            Err(Error::NeverReady { .. }) => return Cell::Failed("never ready".into()),
            Err(e) => return Cell::Failed(e.to_string()),
        };
        let mut names: Vec<String> = outcome
            .survivors_after(args.deadline)
            .into_iter()
            .map(|s| s.process.comm)
            .collect();
        names.sort();
        outcome.kill_remaining(Duration::from_secs(10));
        return if names.is_empty() {
            Cell::Clean
        } else {
            Cell::Left(names)
        };
    }
    Cell::Failed("no free port after 5 tries".into())
}

/// A TCP port nobody listens on now, never handed out before in this run.
fn free_port() -> Option<u16> {
    orphan_check::ports::try_free_port().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_texts() {
        assert_eq!(Cell::Clean.text(), "clean");
        assert_eq!(Cell::Left(vec!["a".into(), "b".into()]).text(), "2 left");
        assert_eq!(Cell::Left(vec![String::new(); 23]).text(), "10+ left");
    }
}
