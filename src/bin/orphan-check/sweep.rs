//! `orphan-check sweep`: find what earlier runs left behind, and with `--kill` end it.
//!
//! Every agent (and everything it starts, unless it scrubs its environment) carries
//! `ORPHAN_CHECK_RUN=<run id>`. The sweep lists this user's processes (same real uid)
//! with that marker, optionally only run ids starting with `--run PREFIX`.
//!
//! Ending one is a race with pid reuse: between reading `/proc/<pid>` and sending the
//! signal, the process may exit and its pid go to a stranger. So each kill opens a pidfd
//! first, then reads the process again and checks it still carries the marker and has
//! the same start time, and only then signals through the pidfd. If the pid was reused
//! before the open, the check sees the stranger and nothing is sent; if the process dies
//! after the open, the pidfd still names the dead process and the signal goes nowhere.
//! The sweep never signals itself, any of its ancestors, or a process without the marker.
//!
//! Leftover cgroups (`orphan-check-*` directories under the scenario cgroup root) that
//! hold no process are removed with `rmdir`, which the kernel refuses for a populated
//! cgroup.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orphan_check::{ProcessInfo, RUN_ENV};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::{Fatal, Verdict};

/// The exit codes of `sweep`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  nothing left behind, or (with --kill) every leftover ended
  1  leftovers found and not ended (without --kill, or a kill failed)
  2  the sweep could not run";

/// How long to wait for a killed process to be gone.
const KILL_PATIENCE: Duration = Duration::from_secs(5);

/// A cgroup this young may belong to a scenario that is starting right now.
const CGROUP_MIN_AGE: Duration = Duration::from_secs(10);

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

/// One process carrying the marker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marked {
    pid: i32,
    run_id: String,
    start_ticks: u64,
    command: String,
}

/// Runs the subcommand.
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    let uid = rustix::process::getuid().as_raw();
    let protected = ancestors_and_self();
    let found: Vec<Marked> = scan(uid, prefix)
        .into_iter()
        .filter(|m| !protected.contains(&m.pid))
        .collect();

    let mut left = 0;
    if found.is_empty() {
        println!(
            "orphan-check: no process of uid {uid} carries {RUN_ENV}{}",
            describe_prefix(prefix)
        );
    } else {
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let uptime = uptime_ticks(ticks);
        println!("{:>8}  {:>8}  {:<36}  COMMAND", "PID", "AGE", "RUN");
        for m in &found {
            let age = uptime
                .map(|u| {
                    format!(
                        "{:.1}s",
                        u.saturating_sub(m.start_ticks) as f64 / ticks as f64
                    )
                })
                .unwrap_or_else(|| "?".into());
            let status = if args.kill {
                match kill_verified(m) {
                    KillResult::Killed => "killed",
                    KillResult::Gone => "already gone",
                    KillResult::Changed => "not killed: no longer the same process",
                    KillResult::StillAlive => {
                        left += 1;
                        "NOT DEAD after SIGKILL"
                    }
                    KillResult::Failed => {
                        left += 1;
                        "not killed: signal refused"
                    }
                }
            } else {
                left += 1;
                "left behind"
            };
            println!(
                "{:>8}  {:>8}  {:<36}  {}   {status}",
                m.pid, age, m.run_id, m.command
            );
        }
    }

    for dir in leftover_cgroups(prefix) {
        if args.kill {
            match std::fs::remove_dir(&dir) {
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

fn describe_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!(" with a run id starting with {prefix:?}")
    }
}

/// This process and every ancestor up to init: never signalled, even when they carry the
/// marker (a CI job that exports `ORPHAN_CHECK_RUN` for its own runs).
fn ancestors_and_self() -> Vec<i32> {
    let mut out = vec![std::process::id() as i32];
    let mut pid = out[0];
    for _ in 0..4096 {
        match ProcessInfo::read(pid).map(|p| p.ppid) {
            Some(ppid) if ppid > 0 => {
                out.push(ppid);
                pid = ppid;
            }
            _ => break,
        }
    }
    out
}

/// Every process of `uid` whose environment carries the marker with a run id starting
/// with `prefix`.
fn scan(uid: u32, prefix: &str) -> Vec<Marked> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<Marked> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let run_id = marker(pid)?;
            if !run_id.starts_with(prefix) {
                return None;
            }
            let process = ProcessInfo::read(pid).filter(|p| p.uid == uid)?;
            Some(Marked {
                pid,
                run_id,
                start_ticks: process.start_ticks,
                command: process.command(),
            })
        })
        .collect();
    out.sort_by_key(|m| m.pid);
    out
}

/// The process's `ORPHAN_CHECK_RUN` value, when it has one.
fn marker(pid: i32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{RUN_ENV}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Seconds since boot, in clock ticks.
fn uptime_ticks(ticks_per_second: u64) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((secs * ticks_per_second as f64) as u64)
}

enum KillResult {
    Killed,
    Gone,
    Changed,
    StillAlive,
    Failed,
}

/// SIGKILLs `m` only if it is still that very process and still carries the marker.
fn kill_verified(m: &Marked) -> KillResult {
    let Some(pid) = Pid::from_raw(m.pid) else {
        return KillResult::Changed;
    };
    let pidfd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(_) => return KillResult::Gone,
    };
    let same = ProcessInfo::read(m.pid).is_some_and(|p| p.start_ticks == m.start_ticks)
        && marker(m.pid).as_deref() == Some(m.run_id.as_str());
    if !same {
        return KillResult::Changed;
    }
    if pidfd_send_signal(&pidfd, Signal::KILL).is_err() {
        return KillResult::Failed;
    }
    if wait_exit(&pidfd, KILL_PATIENCE) {
        KillResult::Killed
    } else {
        KillResult::StillAlive
    }
}

/// Waits until the process behind `pidfd` has exited (the pidfd becomes readable).
fn wait_exit(pidfd: &OwnedFd, patience: Duration) -> bool {
    let until = Instant::now() + patience;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// Empty `orphan-check-*` cgroups (for run ids starting with `prefix`) older than
/// [`CGROUP_MIN_AGE`].
fn leftover_cgroups(prefix: &str) -> Vec<PathBuf> {
    let Some(root) = orphan_check::cgroup_root() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    // The library names a scenario's cgroup `orphan-check-<run id>` with every character
    // other than ASCII alphanumerics and '-' replaced by '_'.
    let wanted = format!("orphan-check-{}", sanitize(prefix));
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&wanted))
        })
        .map(|e| e.path())
        .filter(|dir| {
            let empty = std::fs::read_to_string(dir.join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty());
            let old = std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= CGROUP_MIN_AGE);
            empty && old
        })
        .collect();
    out.sort();
    out
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_lists_itself_or_its_ancestors() {
        let protected = ancestors_and_self();
        assert_eq!(protected[0], std::process::id() as i32);
        assert!(protected.len() >= 2);
    }

    #[test]
    fn cgroup_names_follow_the_library() {
        assert_eq!(sanitize("ci.42-x"), "ci_42-x");
    }
}
