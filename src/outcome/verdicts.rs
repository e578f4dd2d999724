//! The verdicts: survivors, ports, files, the container's stop; each with its
//! `assert_*`/`check_*` pair.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Failure, FailureReason, Look, Outcome};
use crate::files::FileChange;
use crate::ports::{self, PortHolder, PortVerdict};
use crate::procs;
use crate::ready::backoff;
use crate::report::{Survivor, Verdict};
use crate::time::MAX_DEADLINE;

impl Outcome {
    /// Descendants still alive `deadline` after the kill.
    ///
    /// Returns at once (empty) when the sentinel reports the tree empty, which it does the
    /// moment the last descendant is reaped; waits the whole deadline only when something
    /// survives. A zero deadline looks once, now.
    ///
    /// ```
    /// use orphan_check::{Escape, Fixture, KillPlan, Ready, Scenario};
    /// use std::time::Duration;
    ///
    /// // A child that called setsid() is out of reach of a kill of the agent's group.
    /// let outcome = Scenario::new(Fixture::SetsidEscaper.command())
    ///     .ready_when(Ready::stdout_line("ready"))
    ///     .kill(KillPlan::sigkill_group())
    ///     .run()?;
    /// let survivors = outcome.survivors_after(Duration::from_millis(300));
    /// assert_eq!(survivors.len(), 1);
    /// assert_eq!(survivors[0].escapes[0], Escape::NewSession);
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    pub fn survivors_after(&self, deadline: Duration) -> Vec<Survivor> {
        if let Some(look) = &self.observed().before_cleanup {
            return look.survivors.clone();
        }
        let tracker = &self.live.tracker;
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        let empty = tracker
            .wait_until(until, |s| s.empty_at.is_some() || s.sentinel_gone)
            .empty_at
            .is_some();
        if !empty && self.lost_track() {
            // Without the sentinel no event says when the run's processes are gone:
            // look for them (by cgroup and marker) with a backoff, until the deadline.
            let mut checks = 0;
            while !crate::lost::find(&self.run.run_id, self.live.cgroup.as_ref()).is_empty()
                && Instant::now() < until
            {
                tracker.wait((Instant::now() + backoff(checks)).min(until), |_| false);
                checks += 1;
            }
        }
        crate::cost_trace::mark("survivors_after: empty event seen");
        let survivors = if empty {
            Vec::new()
        } else {
            self.snapshot_survivors()
        };
        if survivors.is_empty() && !empty && !deadline.is_zero() {
            // Only dying processes were left (SIGKILL pending, or zombies being reaped):
            // the verdict is clean; wait briefly for the sentinel's "empty" so the report
            // can say when the tree went quiet (not for a zero deadline, which never
            // waits).
            tracker.wait(Instant::now() + Duration::from_secs(2), |s| {
                s.empty_at.is_some() || s.sentinel_gone
            });
        }
        self.observed().deadline = Some(deadline);
        survivors
    }

    /// Descendants still alive the scenario's
    /// [`verdict_deadline`](crate::Scenario::verdict_deadline) after the kill: see
    /// [`survivors_after`](Outcome::survivors_after).
    pub fn survivors(&self) -> Vec<Survivor> {
        self.survivors_after(self.run.verdict_deadline)
    }

    /// Panics with the report when any descendant is alive `deadline` after the kill.
    #[track_caller]
    pub fn assert_no_survivors(&self, deadline: Duration) {
        if let Err(failure) = self.check_no_survivors(deadline) {
            panic!("{failure}");
        }
    }

    /// `Err` with the report when any descendant is alive `deadline` after the kill.
    pub fn check_no_survivors(&self, deadline: Duration) -> Result<&Outcome, Failure> {
        self.valid_deadline(deadline)?;
        if let Some(failure) = self.unfinished() {
            return Err(failure);
        }
        let survivors = self.survivors_after(deadline);
        let reason = if self.lost_track() {
            FailureReason::LostTrack(survivors.len())
        } else if survivors.is_empty() {
            return Ok(self);
        } else {
            FailureReason::Survivors(survivors.len())
        };
        Err(self.failure_from(reason, self.look(Some(survivors), Vec::new())))
    }

    /// Whether `port` is free `deadline` after the kill, and who holds it if not.
    ///
    /// Checks as soon as the tree changes and at least every 20 ms; returns the moment
    /// the port is free.
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    /// use std::time::Duration;
    ///
    /// let port = orphan_check::free_port();
    /// // The slow port holder catches SIGTERM and keeps its port for 3 s.
    /// let mut holder = Fixture::SlowPortHolder.command();
    /// holder.args(["--port", &port.to_string(), "--hold-ms", "3000"]);
    /// let outcome = Scenario::new(holder)
    ///     .ready_when(Ready::port(port))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?;
    /// let verdict = outcome.port_verdict(port, Duration::from_millis(200));
    /// assert!(!verdict.free);
    /// assert!(verdict.holders[0].descendant);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn port_verdict(&self, port: u16, deadline: Duration) -> PortVerdict {
        let frozen = self
            .observed()
            .before_cleanup
            .as_ref()
            .map(|look| look.ports.iter().find(|v| v.port == port).cloned());
        if let Some(Some(verdict)) = frozen {
            return verdict;
        }
        let tracker = &self.live.tracker;
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        // The earliest moment it was seen held: before the kill, at an earlier look, or
        // at a check of this one.
        let mut first_held = self
            .run
            .held_before_kill
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, at)| *at)
            .or_else(|| self.observed().first_held.get(&port).copied());
        let mut checks = 0;
        let verdict = loop {
            let held = self.listening_now(port);
            let now = Instant::now();
            let since_start = tracker.clock.now();
            let since_kill = since_start.saturating_sub(self.run.killed_at);
            if held == ListeningNow::Nobody {
                break PortVerdict {
                    port,
                    free: true,
                    checked_after_kill_ms: since_kill.as_millis() as u64,
                    holders: Vec::new(),
                    first_held,
                };
            }
            first_held.get_or_insert(since_start);
            if now >= until {
                break PortVerdict {
                    port,
                    free: false,
                    checked_after_kill_ms: since_kill.as_millis() as u64,
                    holders: match held {
                        ListeningNow::InTree(pids) => pids
                            .into_iter()
                            .map(|pid| PortHolder::describe(pid, true))
                            .collect(),
                        ListeningNow::Sockets(inodes) => self.holders(&inodes),
                        ListeningNow::Nobody => Vec::new(),
                    },
                    first_held,
                };
            }
            let reaped = tracker.lock().reaped.len();
            let wake = (now + backoff(checks)).min(until);
            tracker.wait(wake, |s| s.reaped.len() != reaped);
            checks += 1;
        };
        if let Some(at) = verdict.first_held {
            self.observed().first_held.entry(port).or_insert(at);
        }
        verdict
    }

    /// Who listens on `port` now. A bind probe first, which answers "nobody" in a few
    /// system calls whatever the machine's other listeners; when it is refused, the
    /// tree's own sockets name its listeners; sock_diag only when neither can tell (the
    /// probe refused by a socket that is bound without listening, a holder outside the
    /// tree, a copy of the tree's sockets refused).
    fn listening_now(&self, port: u16) -> ListeningNow {
        if ports::nothing_listens(port) == Some(true) {
            return ListeningNow::Nobody;
        }
        let tree = procs::subtree_pids(self.live.sentinel.pid());
        match ports::tree_listeners_on(port, &tree) {
            Some(inside) if !inside.is_empty() => return ListeningNow::InTree(inside),
            _ => {}
        }
        let inodes = ports::on_port_fast(port).unwrap_or_default();
        if inodes.is_empty() {
            ListeningNow::Nobody
        } else {
            ListeningNow::Sockets(inodes)
        }
    }

    fn holders(&self, inodes: &[u64]) -> Vec<PortHolder> {
        let tree = procs::subtree_pids(self.live.sentinel.pid());
        let inside = ports::holders_among(inodes, tree);
        if !inside.is_empty() {
            return inside
                .into_iter()
                .map(|pid| PortHolder::describe(pid, true))
                .collect();
        }
        ports::holders_anywhere(inodes)
            .into_iter()
            .map(|pid| PortHolder::describe(pid, false))
            .collect()
    }

    /// Panics with the report when `port` is still held `deadline` after the kill.
    #[track_caller]
    pub fn assert_port_free(&self, port: u16, deadline: Duration) {
        if let Err(failure) = self.check_port_free(port, deadline) {
            panic!("{failure}");
        }
    }

    /// `Err` with the report when `port` is still held `deadline` after the kill.
    pub fn check_port_free(&self, port: u16, deadline: Duration) -> Result<&Outcome, Failure> {
        self.valid_deadline(deadline)?;
        if let Some(failure) = self.unfinished() {
            return Err(failure);
        }
        let verdict = self.port_verdict(port, deadline);
        if verdict.free {
            Ok(self)
        } else {
            let look = self.look(None, vec![verdict]);
            Err(self.failure_from(FailureReason::PortHeld(port), look))
        }
    }

    /// Files under `dir` (which must have been given to
    /// [`Scenario::watch_dir`](crate::Scenario::watch_dir)) written after the kill,
    /// observed until the tree is empty or `deadline` after the kill. Empty for a
    /// directory that was not watched ([`Outcome::check_no_writes_after_kill`] fails on
    /// it instead).
    pub fn writes_after_kill(&self, dir: &Path, deadline: Duration) -> Vec<FileChange> {
        if !self.watches(dir) {
            // Nothing was recorded there before the kill: no change can be told.
            return Vec::new();
        }
        if let Some(look) = &self.observed().before_cleanup {
            return frozen_under(look, dir);
        }
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        self.live
            .tracker
            .wait(until, |s| s.empty_at.is_some() || s.sentinel_gone);
        let root = self
            .live
            .dirs
            .roots()
            .iter()
            .find(|r| dir.starts_with(r))
            .cloned()
            .unwrap_or_else(|| dir.to_path_buf());
        self.changes_under(dir, &root)
    }

    /// Whether `dir` is one of the watched directories or inside one.
    fn watches(&self, dir: &Path) -> bool {
        let canonical = std::fs::canonicalize(dir).ok();
        self.live.dirs.roots().iter().any(|root| {
            dir.starts_with(root)
                || canonical
                    .as_ref()
                    .is_some_and(|c| std::fs::canonicalize(root).is_ok_and(|r| c.starts_with(r)))
        })
    }

    /// Panics with the report when anything under `dir` was written after the kill.
    #[track_caller]
    pub fn assert_no_writes_after_kill(&self, dir: impl AsRef<Path>, deadline: Duration) {
        if let Err(failure) = self.check_no_writes_after_kill(dir, deadline) {
            panic!("{failure}");
        }
    }

    /// `Err` with the report when anything under `dir` was written after the kill.
    pub fn check_no_writes_after_kill(
        &self,
        dir: impl AsRef<Path>,
        deadline: Duration,
    ) -> Result<&Outcome, Failure> {
        self.valid_deadline(deadline)?;
        if !self.watches(dir.as_ref()) {
            return Err(self.failure(FailureReason::NotWatched(dir.as_ref().to_path_buf())));
        }
        if let Some(failure) = self.unfinished() {
            return Err(failure);
        }
        let changes = self.writes_after_kill(dir.as_ref(), deadline);
        if changes.is_empty() {
            Ok(self)
        } else {
            Err(self.failure(FailureReason::FilesWritten(changes.len())))
        }
    }

    /// In container mode, waits up to `deadline` after the kill for the container to
    /// end, then panics with the report unless the stop was graceful: PID 1 exited on
    /// SIGTERM within the grace, and nothing inside died by the namespace's SIGKILL.
    #[track_caller]
    pub fn assert_graceful_stop(&self, deadline: Duration) {
        if let Err(failure) = self.check_graceful_stop(deadline) {
            panic!("{failure}");
        }
    }

    /// `Err` with the report unless the container's stop was graceful (see
    /// [`assert_graceful_stop`](Outcome::assert_graceful_stop)); outside container mode,
    /// always `Ok`.
    pub fn check_graceful_stop(&self, deadline: Duration) -> Result<&Outcome, Failure> {
        self.valid_deadline(deadline)?;
        if !self.run.container {
            return Ok(self);
        }
        let until = self.after_kill(deadline);
        self.live
            .tracker
            .wait(until, |s| s.empty_at.is_some() || s.sentinel_gone);
        match self.container_report() {
            Some(c) if c.stop_failed || c.pid1_end.is_none() => {
                Err(self.failure(FailureReason::StopNotGraceful))
            }
            _ => Ok(self),
        }
    }

    /// Panics with the report unless the run is clean the scenario's
    /// [`verdict_deadline`](crate::Scenario::verdict_deadline) after the kill (see
    /// [`check_clean`](Outcome::check_clean)).
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    ///
    /// let port = orphan_check::free_port();
    /// let mut listener = Fixture::Listener.command();
    /// listener.args(["--port", &port.to_string()]);
    /// Scenario::new(listener)
    ///     .ready_when(Ready::port(port))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?
    ///     .assert_clean();
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_clean(&self) {
        if let Err(failure) = self.check_clean() {
            panic!("{failure}");
        }
    }

    /// `Err` with the report unless the run is clean the scenario's
    /// [`verdict_deadline`](crate::Scenario::verdict_deadline) after the kill: no
    /// survivor, every watched port free, nothing written under a watched directory, and
    /// in container mode a graceful stop when the plan was one. Every verdict counts
    /// from the same kill; the report's verdict is [`Verdict::Clean`](crate::Verdict)
    /// exactly when this is `Ok`.
    pub fn check_clean(&self) -> Result<&Outcome, Failure> {
        let deadline = self.run.verdict_deadline;
        if let Some(failure) = self.unfinished() {
            return Err(failure);
        }
        let survivors = self.survivors_after(deadline);
        let ports: Vec<PortVerdict> = self
            .run
            .watched_ports
            .iter()
            .map(|&port| self.port_verdict(port, deadline))
            .collect();
        // Files are judged once the tree is gone or at the deadline, as
        // `writes_after_kill` judges them.
        let until = self.after_kill(deadline);
        self.live
            .tracker
            .wait(until, |s| s.empty_at.is_some() || s.sentinel_gone);
        let look = self.look(Some(survivors), ports);
        let report = self.report_of(look);
        let reason = match report.verdict {
            Verdict::Clean => return Ok(self),
            Verdict::LostTrack => FailureReason::LostTrack(report.survivors.len()),
            Verdict::DidNotFinish => FailureReason::DidNotFinish(self.run.exit_timeout),
            _ if !report.survivors.is_empty() => FailureReason::Survivors(report.survivors.len()),
            _ => match report.ports.iter().find(|p| !p.free) {
                Some(held) => FailureReason::PortHeld(held.port),
                None if !report.files.is_empty() => FailureReason::FilesWritten(report.files.len()),
                None => FailureReason::StopNotGraceful,
            },
        };
        Err(Failure {
            reason,
            report: Box::new(report),
        })
    }
}

/// The files of a look that are under `dir`.
fn frozen_under(look: &Look, dir: &Path) -> Vec<FileChange> {
    look.files
        .iter()
        .filter(|c| c.path.starts_with(dir))
        .cloned()
        .collect()
}

/// Who listens on a port, as [`Outcome::listening_now`] found out.
#[derive(Debug, PartialEq, Eq)]
enum ListeningNow {
    Nobody,
    /// These processes of the tree (found from their own sockets).
    InTree(Vec<i32>),
    /// These LISTEN sockets (from sock_diag), holders not named yet.
    Sockets(Vec<u64>),
}
