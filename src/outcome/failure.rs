//! A failed verdict: why, and the report that shows it.

use std::fmt;
use std::time::Duration;

use super::{Look, Outcome};
use crate::report::Report;
use crate::time::{deadline_problem, Human, MAX_DEADLINE};

/// Why a verdict failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// Descendants of the agent were alive at the deadline.
    Survivors(usize),
    /// The port was still held at the deadline.
    PortHeld(u16),
    /// Files under the directory were written after the kill.
    FilesWritten(usize),
    /// The deadline given to the verdict is longer than
    /// [`MAX_DEADLINE`](crate::time::MAX_DEADLINE): a mistake, not a wait.
    InvalidDeadline(Duration),
    /// Container mode: PID 1 did not exit on SIGTERM within the grace, or processes
    /// inside died by the namespace's SIGKILL.
    StopNotGraceful,
    /// The sentinel died before its tree was empty: nothing can prove the tree clean
    /// (see [`Verdict::LostTrack`](crate::Verdict::LostTrack)). The number is how many
    /// processes of the run the cgroup and the `ORPHAN_CHECK_RUN` marker still found.
    LostTrack(usize),
    /// [`KillPlan::own_exit`](crate::KillPlan::own_exit): the agent did not exit by
    /// itself within this timeout; nothing can be said about what it would have left.
    DidNotFinish(Duration),
    /// The directory was never passed to
    /// [`Scenario::watch_dir`](crate::Scenario::watch_dir): with no record of it before
    /// the kill, every file in it would read as written after.
    NotWatched(std::path::PathBuf),
}

/// A failed verdict. It owns the report, so a caller can still inspect everything.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failure {
    /// What failed.
    pub reason: FailureReason,
    /// The evidence.
    pub report: Box<Report>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FailureReason::InvalidDeadline(d) = &self.reason {
            writeln!(f, "orphan-check: invalid deadline {d:?}: a verdict's deadline is at most {} (zero looks once, now)", Human(MAX_DEADLINE))?;
        }
        if let FailureReason::NotWatched(dir) = &self.reason {
            writeln!(f, "orphan-check: {} was not watched: pass it to Scenario::watch_dir (or --watch-dir) to judge writes after the kill", dir.display())?;
        }
        if let FailureReason::LostTrack(n) = &self.reason {
            writeln!(f, "orphan-check: lost track: the sentinel was killed before the tree was empty, so nothing proves it clean; {n} process(es) of the run found by the other oracles")?;
        }
        write!(f, "{}", self.report)
    }
}

impl std::error::Error for Failure {}

impl Outcome {
    /// `Err` unless `deadline` is one every verdict accepts: at most [`MAX_DEADLINE`].
    /// Zero is one: it looks once, now.
    pub(super) fn valid_deadline(&self, deadline: Duration) -> Result<(), Failure> {
        match deadline_problem(deadline, true) {
            Some(_) => Err(self.failure(FailureReason::InvalidDeadline(deadline))),
            None => Ok(()),
        }
    }

    /// The failure every verdict is when the agent did not finish.
    pub(super) fn unfinished(&self) -> Option<Failure> {
        self.did_not_finish()
            .then(|| self.failure(FailureReason::DidNotFinish(self.run.exit_timeout)))
    }

    /// The failure, with a report that looks at everything now.
    pub(super) fn failure(&self, reason: FailureReason) -> Failure {
        self.failure_from(reason, self.look(None, Vec::new()))
    }

    /// The failure, with a report built from `look`: what the failed verdict saw.
    pub(super) fn failure_from(&self, reason: FailureReason, look: Look) -> Failure {
        Failure {
            reason,
            report: Box::new(self.report_of(look)),
        }
    }
}
