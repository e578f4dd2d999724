//! Verdicts after the kill, and the assertions that turn them into test failures.
//!
//! Every deadline is counted from the moment the kill plan finished, and is an upper
//! bound: "nothing survived" returns the moment the sentinel reports its subtree empty;
//! only a failure waits the whole deadline. A zero deadline looks once, now, and waits
//! for nothing, in every verdict. The verdicts that take no deadline use the scenario's
//! [`verdict_deadline`](crate::Scenario::verdict_deadline). Assertions come in pairs:
//! `assert_*` panics with the whole report; `check_*` returns a [`Failure`] that owns
//! the report.
//!
//! Dropping an `Outcome` kills whatever is left of the tree (with `cgroup.kill` when a
//! cgroup is in use, and always through the sentinel's SIGKILL-and-reap loop), reaps the
//! sentinel and removes the cgroup. It never panics, and blocks at most 10 s in all
//! (one deadline for every step; a sentinel still busy then is reaped in the background).
//! A tree the sentinel reported empty has nothing left to kill: its sentinel, holding
//! nothing of it, waits idle for the next scenario instead of exiting (see
//! [`SentinelStart::Auto`](crate::scenario::SentinelStart::Auto)).

// The parts: this file holds what the outcome is made of (the recorded `Run` of
// `run.rs`, what stays open, what looks learnt) and its plain accessors;
// `ending.rs` its drop (one deadline for all it holds), `verdicts.rs` the verdicts and
// their assertions, `look.rs` one look at the tree, the
// watched ports and the watched directories (what verdicts and the report are made
// from), `failure.rs` the failure a verdict returns. The report itself is built in
// `report/build.rs` from a borrowed view of the outcome: the run, the tracker's record
// and one look's parts, none of them the outcome's own types, so the report does not
// import the outcome.

mod ending;
mod failure;
mod look;
mod verdicts;

pub(crate) use ending::{end_held, DROP_BOUND};
pub use failure::{Failure, FailureReason};
pub(crate) use look::Look;

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroup::ScenarioCgroup;
use crate::container::{self, ContainerReport, NamespaceWatch};
use crate::files::DirWatch;
use crate::kill::PlanRecord;
use crate::output::OutputTail;
use crate::pipes::AgentPipes;
use crate::ports::PortAtReady;
use crate::procs::ProcessInfo;
use crate::report::{self, AgentExit, Cost, Evidence, Report};
use crate::run::{ReadyBy, Run, WrapperRole};
use crate::sentinel::SentinelHandle;
use crate::tracker::Tracker;

/// What the outcome holds open while it lives.
pub(crate) struct Live {
    // Field order is drop order: the sentinel (and the tree) go before the cgroup.
    pub sentinel: SentinelHandle,
    pub cgroup: Option<ScenarioCgroup>,
    pub tracker: Tracker,
    pub namespace_watch: NamespaceWatch,
    /// The watched directories as they were once the plan had run.
    pub dirs: DirWatch,
    /// The harness's write end of the agent's stdin pipe, when still open.
    pub stdin: Option<OwnedFd>,
    pub pipes: AgentPipes,
}

/// What the harness has learnt since the kill that a later look cannot learn again.
/// Nothing here is a verdict's answer kept for the report: the report looks itself.
#[derive(Default)]
pub(crate) struct Observed {
    /// The deadline of the last survivor verdict asked.
    pub deadline: Option<Duration>,
    /// Every process seen alive, by (pid, start time), with when it was first seen.
    pub seen: BTreeMap<(i32, u64), (ProcessInfo, Duration)>,
    /// When each watched port was first seen held after the kill.
    pub first_held: BTreeMap<u16, Duration>,
    /// When `kill_remaining` began its cleanup.
    pub cleanup_started: Option<Duration>,
    /// The last look before `kill_remaining` ended the tree: what the agent left, which
    /// the harness's own kill must not turn into "clean".
    pub before_cleanup: Option<Look>,
}

/// The result of a run: ask it for verdicts.
pub struct Outcome {
    live: Live,
    run: Run,
    observed: Mutex<Observed>,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("command", &self.run.command)
            .field("run_id", &self.run.run_id)
            .field("agent", &self.run.agent.pid)
            .field("plan", &self.run.plan.name())
            .finish_non_exhaustive()
    }
}

impl Outcome {
    pub(crate) fn new(live: Live, run: Run) -> Outcome {
        // Everything seen before the kill: the agent and the top process from the start,
        // the tree at readiness, and what was born during the delay before the kill.
        let mut seen = BTreeMap::new();
        for p in [&run.agent, &run.top] {
            seen.entry((p.pid, p.start_ticks))
                .or_insert((p.clone(), Duration::ZERO));
        }
        for (i, p) in run.before_kill.iter().enumerate() {
            let at = if i < run.seen_at_ready {
                run.ready_at
            } else {
                run.kill_started_at
            };
            seen.entry((p.pid, p.start_ticks))
                .or_insert((p.clone(), at));
        }
        Outcome {
            live,
            run,
            observed: Mutex::new(Observed {
                seen,
                ..Observed::default()
            }),
        }
    }

    /// How and when the agent itself ended, once the sentinel reaped it.
    pub fn agent_exit(&self) -> Option<AgentExit> {
        let exit = self.live.tracker.lock().agent_exit()?;
        Some(AgentExit::new(
            exit.status,
            exit.at.as_secs_f64() * 1000.0,
            self.exited_before_ready(),
        ))
    }

    /// True when the agent exited before it was ready while its tree lived on (a
    /// launcher). Decided from the sentinel's reap time, which may reach the harness
    /// after readiness was seen.
    fn exited_before_ready(&self) -> bool {
        let state = self.live.tracker.lock();
        match self.run.ready_by {
            ReadyBy::Exec => false,
            ReadyBy::Line => state.ready_line_after_agent_exit,
            ReadyBy::Poll => state.agent_exit().is_some_and(|e| e.at < self.run.ready_at),
        }
    }

    /// True when the plan was [`KillPlan::own_exit`](crate::KillPlan::own_exit) and the agent did not exit within
    /// the exit timeout (its tree was killed).
    pub fn did_not_finish(&self) -> bool {
        self.run.plan_record.did_not_finish
    }

    /// The agent's pid.
    pub fn agent_pid(&self) -> i32 {
        self.run.agent.pid
    }

    /// The launcher's pid, when the plan is [`KillPlan::parent_death`](crate::KillPlan::parent_death): the agent's
    /// parent, which the plan SIGKILLed.
    pub fn launcher_pid(&self) -> Option<i32> {
        (self.run.wrapper == Some(WrapperRole::Launcher)).then_some(self.run.top.pid)
    }

    /// The container's PID 1 as the host sees it, in container mode: the agent, or the
    /// init started with [`Scenario::init`](crate::Scenario::init).
    pub fn pid1(&self) -> Option<i32> {
        self.run.container.then_some(self.run.top.pid)
    }

    /// In container mode: how the stop went and how each process inside ended.
    pub fn container_report(&self) -> Option<ContainerReport> {
        if !self.run.container {
            return None;
        }
        let pid1_end = self
            .live
            .tracker
            .lock()
            .reaped
            .iter()
            .find(|r| r.pid == self.run.top.pid)
            .map(|r| r.status);
        Some(container::report(
            &self.live.namespace_watch,
            &self.run.top,
            pid1_end,
            &self.run.plan,
            &self.run.plan_record,
        ))
    }

    /// The value of `ORPHAN_CHECK_RUN` in the agent's environment.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The scenario's cgroup directory, when the cgroup layer is in use.
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.live.cgroup.as_ref().map(|cg| cg.dir())
    }

    /// The sentinel's pid: every descendant of the agent is in its subtree.
    pub fn sentinel_pid(&self) -> i32 {
        self.live.sentinel.pid()
    }

    /// The processes of the tree just before the kill (the agent included).
    pub fn tree_before_kill(&self) -> &[ProcessInfo] {
        &self.run.before_kill
    }

    /// Who listened on a watched `port` when the agent was ready (`None` for a port that
    /// was not watched). A test that expects a leak of the port should check that the
    /// tree held it then: otherwise the server never got the port, and a clean verdict is
    /// about nothing.
    pub fn port_at_ready(&self, port: u16) -> Option<&PortAtReady> {
        self.run.ports_at_ready.iter().find(|p| p.port == port)
    }

    /// What the kill plan did.
    pub fn plan_record(&self) -> &PlanRecord {
        &self.run.plan_record
    }

    /// The agent's captured stdout so far.
    pub fn stdout(&self) -> OutputTail {
        self.live.tracker.lock().stdout.clone()
    }

    /// The agent's captured stderr so far.
    pub fn stderr(&self) -> OutputTail {
        self.live.tracker.lock().stderr.clone()
    }

    /// Watched ports (including a readiness port).
    pub fn watched_ports(&self) -> &[u16] {
        &self.run.watched_ports
    }

    /// The deadline of the verdicts that take none ([`Outcome::survivors`],
    /// [`Outcome::check_clean`]): the scenario's
    /// [`verdict_deadline`](crate::Scenario::verdict_deadline).
    pub fn verdict_deadline(&self) -> Duration {
        self.run.verdict_deadline
    }

    /// The instant `deadline` after the kill.
    fn after_kill(&self, deadline: Duration) -> Instant {
        self.live.tracker.clock.instant(self.run.killed_at) + deadline
    }

    /// The report of the run as it stands now.
    ///
    /// It looks, once and without waiting, at everything it shows: the tree (the
    /// survivors and their diagnosis), every watched port, every watched directory, the
    /// container's stop. So what it says does not depend on which verdicts were asked
    /// before it, only on when it is called: to judge at a deadline, ask a verdict first
    /// (after `survivors_after(d)`, the report looks at least `d` after the kill), or
    /// take the report a failed verdict carries, which shows what that verdict saw.
    ///
    /// Two members keep what earlier looks learnt, and say so: `deadline_ms` is the
    /// deadline of the last survivor verdict asked (`None` when none was), and the
    /// timeline lists every process any look saw alive (at readiness, at the kill, at
    /// every verdict and report), so a look that came earlier may have seen a process
    /// that is gone now. After [`Outcome::kill_remaining`], the report shows the look
    /// taken just before it: the harness's own kill is not the agent's cleanup.
    pub fn report(&self) -> Report {
        self.report_of(self.look(None, Vec::new()))
    }

    /// The report built from `look`, with the rest read now.
    fn report_of(&self, look: Look) -> Report {
        let look = self.observed().before_cleanup.clone().unwrap_or(look);
        let container = self.container_report();
        let lost_track = self.lost_track();
        let exited_before_ready = self.exited_before_ready();
        let cost = self.live.cgroup.as_ref().map(|cg| Cost {
            cpu_usec: cg.cpu_usage_usec(),
            memory_bytes: cg.memory_bytes(),
        });
        let observed = self.observed();
        let state = self.live.tracker.lock();
        report::build(Evidence {
            run: &self.run,
            state: &state,
            seen: &observed.seen,
            cleanup_started: observed.cleanup_started,
            deadline: observed.deadline,
            survivors: look.survivors,
            ports: look.ports,
            files: look.files,
            container,
            cost,
            cgroup: self.live.cgroup.is_some(),
            lost_track,
            exited_before_ready,
        })
    }

    /// Kills everything left of the tree now and waits (up to `patience`) until it is
    /// gone. Returns how long that took. Dropping the outcome does the same.
    ///
    /// It looks at the tree, the watched ports and directories first: verdicts and the
    /// report asked afterwards answer from that look, so what the agent left is still
    /// what they show.
    pub fn kill_remaining(&self, patience: Duration) -> Option<Duration> {
        if self.observed().before_cleanup.is_none() {
            let look = self.look(None, Vec::new());
            self.observed().before_cleanup.get_or_insert(look);
        }
        self.end_tree(patience)
    }

    /// Kills everything left of the tree and waits (up to `patience`) until it is gone.
    pub(crate) fn end_tree(&self, patience: Duration) -> Option<Duration> {
        let started = Instant::now();
        self.observed().cleanup_started = Some(self.live.tracker.clock.now());
        if let Some(cg) = &self.live.cgroup {
            let _ = cg.kill();
        }
        if self.lost_track() {
            return crate::lost::end(&self.run.run_id, self.live.cgroup.as_ref(), patience)
                .then(|| started.elapsed());
        }
        let _ = self.live.sentinel.send(crate::sentinel::Request::KillTree);
        let state = self.live.tracker.wait_until(started + patience, |s| {
            s.empty_at.is_some() || s.sentinel_gone
        });
        state.empty_at.map(|_| started.elapsed())
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(|e| e.into_inner())
    }
}
