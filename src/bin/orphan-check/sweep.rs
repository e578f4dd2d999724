//! `orphan-check sweep`: find what earlier runs left behind, and with `--kill` end it.
//!
//! The finding and the verified kills are the library's ([`orphan_check::sweep`]); this
//! prints them.

use std::time::Duration;

use orphan_check::sweep::{self, Ended};
use orphan_check::RUN_ENV;

use crate::{Fatal, Verdict};

/// The exit codes of `sweep`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  nothing left behind, or (with --kill) every leftover ended
  1  leftovers found and not ended (without --kill, or a kill failed)
  2  the sweep could not run";

/// How long to wait for a killed process to be gone.
const KILL_PATIENCE: Duration = Duration::from_secs(5);

/// Options of `orphan-check sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only run ids starting with PREFIX (a CI job's own ORPHAN_CHECK_RUN, for instance).
    #[arg(long = "run", value_name = "PREFIX")]
    prefix: Option<String>,

    /// End what was found (SIGKILL, each process verified first) and remove empty
    /// leftover cgroups.
    #[arg(long)]
    kill: bool,
}

/// Runs the subcommand.
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let found = sweep::find(prefix);

    let mut left = 0;
    if found.processes.is_empty() {
        let uid = rustix::process::getuid().as_raw();
        println!(
            "orphan-check: no process of uid {uid} carries {RUN_ENV}{}",
            describe_prefix(prefix)
        );
    } else {
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let uptime = uptime_ticks(ticks);
        println!("{:>8}  {:>8}  {:<36}  COMMAND", "PID", "AGE", "RUN");
        for m in &found.processes {
            let age = uptime
                .map(|u| {
                    format!(
                        "{:.1}s",
                        u.saturating_sub(m.process.start_ticks) as f64 / ticks as f64
                    )
                })
                .unwrap_or_else(|| "?".into());
            let status = if args.kill {
                let ended = m.end(KILL_PATIENCE);
                if !ended.is_gone() {
                    left += 1;
                }
                describe(ended)
            } else {
                left += 1;
                "left behind"
            };
            println!(
                "{:>8}  {:>8}  {:<36}  {}   {status}",
                m.process.pid,
                age,
                m.run_id,
                m.process.command()
            );
        }
    }

    for dir in &found.cgroups {
        if args.kill {
            match sweep::remove_cgroup(dir) {
                Ok(()) => println!("removed empty cgroup {}", dir.display()),
                Err(e) => println!("kept cgroup {} ({e})", dir.display()),
            }
        } else {
            println!("empty leftover cgroup {}", dir.display());
        }
    }
    Ok(if left == 0 {
        Verdict::Clean
    } else {
        Verdict::Leak
    })
}

fn describe(ended: Ended) -> &'static str {
    match ended {
        Ended::Killed => "killed",
        Ended::Gone => "already gone",
        Ended::Changed => "not killed: no longer the same process",
        Ended::StillAlive => "NOT DEAD after SIGKILL",
        Ended::Refused => "not killed: signal refused",
        _ => "not killed",
    }
}

fn describe_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!(" with a run id starting with {prefix:?}")
    }
}

/// Seconds since boot, in clock ticks.
fn uptime_ticks(ticks_per_second: u64) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((secs * ticks_per_second as f64) as u64)
}
