//! What both benches share: timing statistics, and the cgroup baseline (`cgroup.kill`,
//! then waiting for `populated 0`) a user would otherwise run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orphan_check::Outcome;

/// Median and minimum of repeated timings.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub median: Duration,
    pub min: Duration,
    pub n: usize,
}

impl Stat {
    pub fn of(mut samples: Vec<Duration>) -> Stat {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2
        };
        Stat {
            median,
            min: samples[0],
            n,
        }
    }

    #[allow(dead_code)] // one bench reads figures from a script
    pub fn from_micros(median_us: f64, min_us: f64, n: usize) -> Stat {
        Stat {
            median: Duration::from_secs_f64(median_us / 1e6),
            min: Duration::from_secs_f64(min_us / 1e6),
            n,
        }
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (min {}, n={})",
            human(self.median),
            human(self.min),
            self.n
        )
    }
}

pub fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// How many times `a` took `b`'s time.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The scenario's cgroup directory, while it exists.
pub fn scenario_cgroup(outcome: &Outcome) -> Option<PathBuf> {
    outcome
        .cgroup_dir()
        .filter(|d| d.is_dir())
        .map(Path::to_path_buf)
}

/// Writes `cgroup.kill` and waits (on `cgroup.events` notifications) until empty.
pub fn cgroup_kill_and_wait(dir: &Path, patience: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::fs::{open, Mode, OFlags};
    let populated = || {
        std::fs::read_to_string(dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    };
    let Ok(events) = open(
        dir.join("cgroup.events"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    if std::fs::write(dir.join("cgroup.kill"), b"1").is_err() {
        return false;
    }
    let until = Instant::now() + patience;
    while populated() {
        if Instant::now() >= until {
            return false;
        }
        let mut fds = [PollFd::new(&events, PollFlags::PRI)];
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let _ = poll(&mut fds, Some(&timeout));
    }
    true
}
