//! Verdicts after the kill, and the assertions that turn them into test failures.
//!
//! Every deadline is counted from the moment the kill plan finished, and is an upper
//! bound: "nothing survived" returns the moment the sentinel reports its subtree empty;
//! only a failure waits the whole deadline. Assertions come in pairs: `assert_*` panics
//! with the whole report; `check_*` returns a [`Failure`] that owns the report.
//!
//! Dropping an `Outcome` kills whatever is left of the tree (with `cgroup.kill` when a
//! cgroup is in use, and always through the sentinel's SIGKILL-and-reap loop), reaps the
//! sentinel and removes the cgroup. It never panics, and blocks at most 10 s in all
//! (one deadline for every step; a sentinel still busy then is reaped in the background).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cgroup::ScenarioCgroup;
use crate::container::{self, ContainerReport, NamespaceWatch};
use crate::diagnosis::{self, Context};
use crate::exit_status::describe_status;
use crate::files::{self, DirWatch, FileChange};
use crate::kill::{KillPlan, PlanRecord};
use crate::output::OutputTail;
use crate::pipes::{self, AgentPipes};
use crate::ports::{self, Listening, PortAtReady, PortHolder, PortVerdict};
use crate::procs::{self, ProcessInfo};
use crate::ready::backoff;
use crate::report::{
    AgentExit, Cost, ExitRecord, PlanSummary, Report, Survivor, TimelineEntry, Verdict,
    WrapperSummary, SCHEMA_VERSION,
};
use crate::scenario::WrapperRole;
use crate::sentinel::SentinelHandle;
use crate::time::{deadline_problem, Human, MAX_DEADLINE};
use crate::touch::TouchRecord;
use crate::tracker::Tracker;
use std::os::fd::{AsFd, OwnedFd};

/// Largest number of processes listed in a report's timeline.
const TIMELINE_LIMIT: usize = 200;

/// Survivors whose ports and environment are read (the rest are listed and diagnosed
/// from what the tree walk read).
const DETAIL_LIMIT: usize = 1000;

/// Everything [`Scenario::run`](crate::Scenario::run) hands over.
pub(crate) struct OutcomeParts {
    pub command: String,
    pub run_id: String,
    pub plan: KillPlan,
    pub ready: String,
    pub watched_ports: Vec<u16>,
    pub sentinel: SentinelHandle,
    pub tracker: Tracker,
    pub agent: i32,
    pub agent_info: Option<ProcessInfo>,
    /// The sentinel's child: the agent, or the wrapper started in its place.
    pub top: Option<ProcessInfo>,
    pub wrapper: Option<WrapperRole>,
    pub container: bool,
    pub namespace_watch: NamespaceWatch,
    pub touched: Option<TouchRecord>,
    pub ready_at: Duration,
    pub kill_after: Duration,
    pub kill_started_at: Duration,
    pub killed_at: Duration,
    pub before_kill: Vec<ProcessInfo>,
    /// How many of `before_kill` were seen at readiness (the rest during the delay
    /// before the kill).
    pub seen_at_ready: usize,
    /// Watched ports seen held before the kill, and when.
    pub held_before_kill: Vec<(u16, Duration)>,
    pub ports_at_ready: Vec<PortAtReady>,
    pub plan_record: PlanRecord,
    pub dirs: DirWatch,
    pub cgroup: Option<ScenarioCgroup>,
    /// The harness's write end of the agent's stdin pipe, when still open.
    pub stdin: Option<OwnedFd>,
    /// What the agent's stdin is, for the report: `null`, `pipe`, `inherited`.
    pub stdin_mode: &'static str,
    pub pipes: AgentPipes,
    pub exit_timeout: Duration,
    /// How readiness was decided, to tell whether the agent exited before it.
    pub ready_by: ReadyBy,
}

/// How readiness was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadyBy {
    /// No condition: ready at the agent's exec, which comes before any exit.
    Exec,
    /// A stdout line, which the tracker orders against the agent's exit.
    Line,
    /// A condition the harness polled (port, file, delay): ready when it saw it.
    Poll,
}

/// What the harness has observed since the kill; the report is built from it.
#[derive(Default)]
struct Observed {
    survivors: Option<Vec<Survivor>>,
    deadline: Option<Duration>,
    ports: BTreeMap<u16, PortVerdict>,
    files: Vec<FileChange>,
    /// Every process seen alive, by (pid, start time), with when it was first seen.
    seen: BTreeMap<(i32, u64), (ProcessInfo, Duration)>,
    /// When `kill_remaining` began its cleanup.
    cleanup_started: Option<Duration>,
}

/// The result of a run: ask it for verdicts.
pub struct Outcome {
    // Field order is drop order: the sentinel (and the tree) go before the cgroup.
    sentinel: SentinelHandle,
    cgroup: Option<ScenarioCgroup>,
    tracker: Tracker,
    command: String,
    run_id: String,
    plan: KillPlan,
    ready: String,
    watched_ports: Vec<u16>,
    agent: ProcessInfo,
    /// The sentinel's child, which the plans signal: the agent itself, or the launcher
    /// (parent-death) or init (`Scenario::init`) started in its place.
    top: ProcessInfo,
    wrapper: Option<WrapperRole>,
    container: bool,
    namespace_watch: NamespaceWatch,
    touched: Option<TouchRecord>,
    ready_at: Duration,
    kill_after: Duration,
    kill_started_at: Duration,
    killed_at: Duration,
    before_kill: Vec<ProcessInfo>,
    held_before_kill: Vec<(u16, Duration)>,
    ports_at_ready: Vec<PortAtReady>,
    plan_record: PlanRecord,
    dirs: DirWatch,
    observed: Mutex<Observed>,
    stdin: Mutex<Option<OwnedFd>>,
    stdin_mode: &'static str,
    pipes: AgentPipes,
    exit_timeout: Duration,
    ready_by: ReadyBy,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("command", &self.command)
            .field("run_id", &self.run_id)
            .field("agent", &self.agent.pid)
            .field("plan", &self.plan.name())
            .finish_non_exhaustive()
    }
}

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
    /// The deadline given to the verdict cannot mean anything.
    InvalidDeadline(Duration),
    /// Container mode: PID 1 did not exit on SIGTERM within the grace, or processes
    /// inside died by the namespace's SIGKILL.
    StopNotGraceful,
    /// The sentinel died before its tree was empty: nothing can prove the tree clean
    /// (see [`Verdict::LostTrack`](crate::Verdict::LostTrack)). The number is how many
    /// processes of the run the cgroup and the `ORPHAN_CHECK_RUN` marker still found.
    LostTrack(usize),
    /// [`KillPlan::own_exit`]: the agent did not exit by itself within this timeout;
    /// nothing can be said about what it would have left.
    DidNotFinish(Duration),
    /// The directory was never passed to
    /// [`Scenario::watch_dir`](crate::Scenario::watch_dir): with no record of it before
    /// the kill, every file in it would read as written after.
    NotWatched(std::path::PathBuf),
}

/// A failed verdict. It owns the report, so a caller can still inspect everything.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What failed.
    pub reason: FailureReason,
    /// The evidence.
    pub report: Box<Report>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let FailureReason::InvalidDeadline(d) = &self.reason {
            writeln!(f, "orphan-check: invalid deadline {d:?}: a verdict needs a deadline greater than zero and at most {}", Human(MAX_DEADLINE))?;
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
    pub(crate) fn new(parts: OutcomeParts) -> Outcome {
        let unread = |pid: i32| ProcessInfo {
            pid,
            ppid: parts.sentinel.pid(),
            pgid: pid,
            sid: parts.sentinel.pid(),
            state: 'X',
            comm: "?".into(),
            cmdline: Vec::new(),
            start_ticks: 0,
            uid: u32::MAX,
            sig_ignored: 0,
            sig_caught: 0,
            sig_blocked: 0,
            sig_pending: 0,
            pid_in_namespace: None,
        };
        let top = match (&parts.top, parts.wrapper) {
            (Some(t), _) => t.clone(),
            (None, None) => parts
                .agent_info
                .clone()
                .unwrap_or_else(|| unread(parts.agent)),
            (None, Some(_)) => unread(-1),
        };
        let agent = parts.agent_info.unwrap_or_else(|| ProcessInfo {
            pid: parts.agent,
            ppid: parts.sentinel.pid(),
            pgid: parts.agent,
            sid: parts.sentinel.pid(),
            state: 'X',
            comm: "?".into(),
            // Gone before it could be read (a launcher that exits at once): the command
            // it was started with.
            cmdline: vec![parts.command.clone()],
            start_ticks: 0,
            uid: u32::MAX,
            sig_ignored: 0,
            sig_caught: 0,
            sig_blocked: 0,
            sig_pending: 0,
            pid_in_namespace: None,
        });
        let mut seen = BTreeMap::new();
        seen.insert(
            (agent.pid, agent.start_ticks),
            (agent.clone(), Duration::ZERO),
        );
        seen.entry((top.pid, top.start_ticks))
            .or_insert((top.clone(), Duration::ZERO));
        for (i, p) in parts.before_kill.iter().enumerate() {
            let at = if i < parts.seen_at_ready {
                parts.ready_at
            } else {
                parts.kill_started_at
            };
            seen.entry((p.pid, p.start_ticks))
                .or_insert((p.clone(), at));
        }
        Outcome {
            sentinel: parts.sentinel,
            cgroup: parts.cgroup,
            tracker: parts.tracker,
            command: parts.command,
            run_id: parts.run_id,
            plan: parts.plan,
            ready: parts.ready,
            watched_ports: parts.watched_ports,
            agent,
            top,
            wrapper: parts.wrapper,
            container: parts.container,
            namespace_watch: parts.namespace_watch,
            touched: parts.touched,
            ready_at: parts.ready_at,
            kill_after: parts.kill_after,
            kill_started_at: parts.kill_started_at,
            killed_at: parts.killed_at,
            before_kill: parts.before_kill,
            held_before_kill: parts.held_before_kill,
            ports_at_ready: parts.ports_at_ready,
            plan_record: parts.plan_record,
            dirs: parts.dirs,
            observed: Mutex::new(Observed {
                seen,
                ..Observed::default()
            }),
            stdin: Mutex::new(parts.stdin),
            stdin_mode: parts.stdin_mode,
            pipes: parts.pipes,
            exit_timeout: parts.exit_timeout,
            ready_by: parts.ready_by,
        }
    }

    /// How and when the agent itself ended, once the sentinel reaped it.
    pub fn agent_exit(&self) -> Option<AgentExit> {
        let exit = self.tracker.lock().agent_exit()?;
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
        let state = self.tracker.lock();
        match self.ready_by {
            ReadyBy::Exec => false,
            ReadyBy::Line => state.ready_line_after_agent_exit,
            ReadyBy::Poll => state.agent_exit().is_some_and(|e| e.at < self.ready_at),
        }
    }

    /// True when the plan was [`KillPlan::own_exit`] and the agent did not exit within
    /// the exit timeout (its tree was killed).
    pub fn did_not_finish(&self) -> bool {
        self.plan_record.did_not_finish
    }

    /// `Err` unless `deadline` is one every verdict accepts: greater than zero, at most
    /// [`MAX_DEADLINE`].
    fn valid_deadline(&self, deadline: Duration) -> Result<(), Failure> {
        match deadline_problem(deadline, false) {
            Some(_) => Err(self.failure(FailureReason::InvalidDeadline(deadline))),
            None => Ok(()),
        }
    }

    /// The failure every verdict is when the agent did not finish.
    fn unfinished(&self) -> Option<Failure> {
        self.did_not_finish()
            .then(|| self.failure(FailureReason::DidNotFinish(self.exit_timeout)))
    }

    /// The agent's pid.
    pub fn agent_pid(&self) -> i32 {
        self.agent.pid
    }

    /// The launcher's pid, when the plan is [`KillPlan::parent_death`]: the agent's
    /// parent, which the plan SIGKILLed.
    pub fn launcher_pid(&self) -> Option<i32> {
        (self.wrapper == Some(WrapperRole::Launcher)).then_some(self.top.pid)
    }

    /// The container's PID 1 as the host sees it, in container mode: the agent, or the
    /// init started with [`Scenario::init`](crate::Scenario::init).
    pub fn pid1(&self) -> Option<i32> {
        self.container.then_some(self.top.pid)
    }

    /// In container mode: how the stop went and how each process inside ended.
    pub fn container_report(&self) -> Option<ContainerReport> {
        if !self.container {
            return None;
        }
        let pid1_end = self
            .tracker
            .lock()
            .reaped
            .iter()
            .find(|r| r.pid == self.top.pid)
            .map(|r| r.status);
        Some(container::report(
            &self.namespace_watch,
            &self.top,
            pid1_end,
            &self.plan,
            &self.plan_record,
        ))
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
        if !self.container {
            return Ok(self);
        }
        let until = self.after_kill(deadline);
        self.tracker
            .wait(until, |s| s.empty_at.is_some() || s.sentinel_gone);
        match self.container_report() {
            Some(c) if c.stop_failed || c.pid1_end.is_none() => {
                Err(self.failure(FailureReason::StopNotGraceful))
            }
            _ => Ok(self),
        }
    }

    /// The value of `ORPHAN_CHECK_RUN` in the agent's environment.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The scenario's cgroup directory, when the cgroup layer is in use.
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroup.as_ref().map(|cg| cg.dir())
    }

    /// The sentinel's pid: every descendant of the agent is in its subtree.
    pub fn sentinel_pid(&self) -> i32 {
        self.sentinel.pid()
    }

    /// The processes of the tree just before the kill (the agent included).
    pub fn tree_before_kill(&self) -> &[ProcessInfo] {
        &self.before_kill
    }

    /// Who listened on a watched `port` when the agent was ready (`None` for a port that
    /// was not watched). A test that expects a leak of the port should check that the
    /// tree held it then: otherwise the server never got the port, and a clean verdict is
    /// about nothing.
    pub fn port_at_ready(&self, port: u16) -> Option<&PortAtReady> {
        self.ports_at_ready.iter().find(|p| p.port == port)
    }

    /// What the kill plan did.
    pub fn plan_record(&self) -> &PlanRecord {
        &self.plan_record
    }

    /// The agent's captured stdout so far.
    pub fn stdout(&self) -> OutputTail {
        self.tracker.lock().stdout.clone()
    }

    /// The agent's captured stderr so far.
    pub fn stderr(&self) -> OutputTail {
        self.tracker.lock().stderr.clone()
    }

    /// The instant `deadline` after the kill.
    fn after_kill(&self, deadline: Duration) -> Instant {
        self.tracker.clock.instant(self.killed_at) + deadline
    }

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
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        let empty = self
            .tracker
            .wait_until(until, |s| s.empty_at.is_some() || s.sentinel_gone)
            .empty_at
            .is_some();
        if !empty && self.lost_track() {
            // Without the sentinel no event says when the run's processes are gone:
            // look for them (by cgroup and marker) with a backoff, until the deadline.
            let mut checks = 0;
            while !crate::lost::find(&self.run_id, self.cgroup.as_ref()).is_empty()
                && Instant::now() < until
            {
                self.tracker
                    .wait((Instant::now() + backoff(checks)).min(until), |_| false);
                checks += 1;
            }
        }
        let survivors = if empty {
            Vec::new()
        } else {
            self.snapshot_survivors()
        };
        if survivors.is_empty() && !empty {
            // Only dying processes were left (SIGKILL pending, or zombies being reaped):
            // the verdict is clean; wait briefly for the sentinel's "empty" so the report
            // can say when the tree went quiet.
            self.tracker
                .wait(Instant::now() + Duration::from_secs(2), |s| {
                    s.empty_at.is_some() || s.sentinel_gone
                });
        }
        let mut observed = self.observed();
        observed.survivors = Some(survivors.clone());
        observed.deadline = Some(deadline);
        survivors
    }

    /// True when the sentinel is gone without having reported its tree empty.
    fn lost_track(&self) -> bool {
        let (empty, gone) = {
            let state = self.tracker.lock();
            (state.empty_at.is_some(), state.sentinel_gone)
        };
        // The sentinel is our unreaped child until the outcome drops: its pid is its own.
        let dead = || ProcessInfo::read(self.sentinel.pid()).is_none_or(|p| p.is_zombie());
        !empty && (gone || dead())
    }

    /// The survivors now, diagnosed.
    fn snapshot_survivors(&self) -> Vec<Survivor> {
        let sentinel = self.sentinel.pid();
        let mut alive: Vec<ProcessInfo> = procs::subtree(sentinel)
            .into_iter()
            // A zombie child of the sentinel is a process the sentinel is reaping now, and
            // a process with SIGKILL pending is dying: neither survived.
            .filter(|p| !(p.is_being_killed() || p.is_zombie() && p.ppid == sentinel))
            .collect();
        if self.lost_track() {
            // The sentinel's orphans went to init: only the cgroup and the marker find them.
            for p in crate::lost::find(&self.run_id, self.cgroup.as_ref()) {
                if !p.is_being_killed() && !alive.iter().any(|a| a.pid == p.pid) {
                    alive.push(p);
                }
            }
        }
        if let Some(cg) = &self.cgroup {
            // The cgroup also sees what left the tree by other means; add what the walk
            // missed (nothing, while the sentinel lives).
            for pid in cg.members() {
                if !alive.iter().any(|p| p.pid == pid) {
                    if let Some(info) = ProcessInfo::read(pid) {
                        alive.push(info);
                    }
                }
            }
        }
        let listening = Listening::read().unwrap_or_default();
        let now = self.tracker.clock.now();
        let agent_failed = {
            let state = self.tracker.lock();
            // Before the kill, or as the ending itself (its own exit, unprompted).
            let own = self.plan.is_own_exit() && self.plan_record.sent.is_empty();
            state
                .agent_exit()
                .filter(|e| (e.at <= self.kill_started_at || own) && e.status != 0)
                .map(|e| describe_status(e.status))
        };
        let launcher = self
            .exited_before_ready()
            .then(|| {
                self.tracker
                    .lock()
                    .agent_exit()
                    .map(|e| describe_status(e.status))
            })
            .flatten();
        let stdin_at_eof = self.stdin_at_eof(&alive);
        // The diagnosis reasons about the process the plan signalled (the group leader).
        // How each reaped process ended: a parent that died of the signal ran no handler.
        let ended: HashMap<i32, i32> = self
            .tracker
            .lock()
            .reaped
            .iter()
            .map(|r| (r.pid, r.status))
            .collect();
        let cx = Context::new(
            &self.plan,
            &self.top,
            &self.before_kill,
            &alive,
            sentinel,
            agent_failed,
            ended,
        )
        .launcher_exited(launcher)
        .stdin_at_eof(stdin_at_eof);
        let mut observed = self.observed();
        let survivors = alive
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Ports and the environment take a few reads per process: for a fork storm
                // of thousands, only the first survivors get them (port verdicts are
                // complete either way), so the verdict stays fast.
                let detailed = i < DETAIL_LIMIT;
                let ports = if detailed {
                    listening.ports_of(p.pid)
                } else {
                    Vec::new()
                };
                // A zombie has no environment left to read.
                let marker = if p.is_zombie() || !detailed {
                    None
                } else {
                    procs::carries_marker(p.pid, &self.run_id)
                };
                let escapes = diagnosis::escapes(p, &ports, marker, &cx);
                let holds_pipes = if detailed && !p.is_zombie() {
                    pipes::agent_streams_held(p.pid, &self.pipes)
                } else {
                    Vec::new()
                };
                let missed_by = diagnosis::missed_by(p, marker, &cx);
                let entry = observed
                    .seen
                    .entry((p.pid, p.start_ticks))
                    .or_insert_with(|| (p.clone(), now));
                // An exec since the first sighting changed what it runs, not who started
                // it: the report names it for its program, under its original parent.
                entry.0.comm.clone_from(&p.comm);
                entry.0.cmdline.clone_from(&p.cmdline);
                Survivor {
                    process: p.clone(),
                    ports,
                    original_parent: Some(entry.0.ppid),
                    env_marker: marker,
                    hints: escapes.iter().map(|e| e.hint()).collect(),
                    escapes,
                    missed_by,
                    holds_pipes,
                }
            })
            .collect();
        survivors
    }

    /// Survivors whose stdin is a pipe nobody can write any more: nothing of the tree
    /// holds a write end, and it is not the harness's open stdin pipe nor the caller's
    /// own stdin (whose writer is outside the tree).
    fn stdin_at_eof(&self, alive: &[ProcessInfo]) -> HashSet<i32> {
        let readers: Vec<(i32, u64)> = alive
            .iter()
            .take(DETAIL_LIMIT)
            .filter(|p| !p.is_zombie())
            .filter_map(|p| Some((p.pid, pipes::stdin_pipe(p.pid)?)))
            .collect();
        if readers.is_empty() {
            return HashSet::new();
        }
        let pids: Vec<i32> = alive.iter().map(|p| p.pid).collect();
        let written = pipes::pipes_written_by(&pids);
        let harness_writes = self
            .stdin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
            .then_some(self.pipes.stdin)
            .flatten();
        let callers = pipes::pipe_inode(std::io::stdin().as_fd());
        let ours = self.pipes.stdin;
        readers
            .into_iter()
            .filter(|(_, inode)| {
                !written.contains(inode)
                    && Some(*inode) != harness_writes
                    && (Some(*inode) == ours || Some(*inode) != callers)
            })
            .map(|(pid, _)| pid)
            .collect()
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
        if self.lost_track() {
            Err(self.failure(FailureReason::LostTrack(survivors.len())))
        } else if survivors.is_empty() {
            Ok(self)
        } else {
            Err(self.failure(FailureReason::Survivors(survivors.len())))
        }
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
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        // The earliest moment it was seen held: before the kill, at an earlier verdict,
        // or at a check of this one.
        let mut first_held = self
            .held_before_kill
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, at)| *at)
            .or_else(|| self.observed().ports.get(&port).and_then(|v| v.first_held));
        let mut checks = 0;
        let verdict = loop {
            let inodes = ports::on_port_fast(port).unwrap_or_default();
            let now = Instant::now();
            let since_start = self.tracker.clock.now();
            let since_kill = since_start.saturating_sub(self.killed_at);
            if inodes.is_empty() {
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
                    holders: self.holders(&inodes),
                    first_held,
                };
            }
            let reaped = self.tracker.lock().reaped.len();
            let wake = (now + backoff(checks)).min(until);
            self.tracker.wait(wake, |s| s.reaped.len() != reaped);
            checks += 1;
        };
        self.observed().ports.insert(port, verdict.clone());
        verdict
    }

    fn holders(&self, inodes: &[u64]) -> Vec<PortHolder> {
        let tree = procs::subtree_pids(self.sentinel.pid());
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
        if self.port_verdict(port, deadline).free {
            Ok(self)
        } else {
            Err(self.failure(FailureReason::PortHeld(port)))
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
        let until = self.after_kill(deadline.min(MAX_DEADLINE));
        self.tracker
            .wait(until, |s| s.empty_at.is_some() || s.sentinel_gone);
        let root = self
            .dirs
            .roots()
            .iter()
            .find(|r| dir.starts_with(r))
            .cloned()
            .unwrap_or_else(|| dir.to_path_buf());
        let alive = procs::subtree_pids(self.sentinel.pid());
        let mut changes = self.dirs.changes_under(dir);
        for c in &mut changes {
            c.writers = files::likely_writers(&c.path, &root, &alive);
        }
        self.observed().files = changes.clone();
        changes
    }

    /// Whether `dir` is one of the watched directories or inside one.
    fn watches(&self, dir: &Path) -> bool {
        let canonical = std::fs::canonicalize(dir).ok();
        self.dirs.roots().iter().any(|root| {
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

    /// The report of everything observed so far. When no survivor verdict was asked for
    /// yet, it looks at the tree now.
    pub fn report(&self) -> Report {
        let before_ready = self.exited_before_ready();
        let needs_snapshot = self.observed().survivors.is_none();
        if needs_snapshot {
            let empty = self.tracker.lock().empty_at.is_some();
            let survivors = if empty {
                Vec::new()
            } else {
                self.snapshot_survivors()
            };
            self.observed().survivors = Some(survivors);
        }
        let lost_track = self.lost_track();
        let observed = self.observed();
        let state = self.tracker.lock();
        let survivors = observed.survivors.clone().unwrap_or_default();
        let ports: Vec<PortVerdict> = observed.ports.values().cloned().collect();
        drop(state);
        drop(observed);
        let container = self.container_report();
        let observed = self.observed();
        let state = self.tracker.lock();
        let stop_failed = container.as_ref().is_some_and(|c| c.stop_failed);
        let leak = !survivors.is_empty()
            || ports.iter().any(|p| !p.free)
            || !observed.files.is_empty()
            || stop_failed;

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Indexes, so that a tree of thousands is reported in linear time.
        let mut reaped_by_pid: HashMap<i32, Vec<&crate::tracker::Reaped>> = HashMap::new();
        for r in &state.reaped {
            reaped_by_pid.entry(r.pid).or_default().push(r);
        }
        let survivor_ids: HashSet<(i32, u64)> = survivors
            .iter()
            .map(|s| (s.process.pid, s.process.start_ticks))
            .collect();
        let cleanup_killed: HashSet<i32> =
            state.cleanup_kills.iter().map(|(pid, _)| *pid).collect();
        let mut timeline: Vec<TimelineEntry> = Vec::new();
        for (info, first_seen) in observed.seen.values() {
            let reaped = reaped_by_pid
                .get(&info.pid)
                .and_then(|rs| rs.iter().find(|r| r.at >= *first_seen))
                .copied();
            let survived = survivor_ids.contains(&(info.pid, info.start_ticks));
            // The harness's cleanup SIGKILLed it: the sentinel's loop named it, or it died
            // of SIGKILL after the cleanup began (cgroup.kill got there first).
            let killed_in_cleanup = cleanup_killed.contains(&info.pid)
                || reaped
                    .zip(observed.cleanup_started)
                    .is_some_and(|(r, started)| {
                        r.at >= started
                            && libc::WIFSIGNALED(r.status)
                            && libc::WTERMSIG(r.status) == libc::SIGKILL
                    });
            timeline.push(TimelineEntry {
                pid: info.pid,
                command: info.command(),
                original_parent: Some(info.ppid),
                pgid: Some(info.pgid),
                sid: Some(info.sid),
                first_seen_ms: Some(ms(*first_seen)),
                exit: reaped.map(|r| ExitRecord {
                    at_ms: ms(r.at),
                    how: describe_status(r.status),
                }),
                reaped_by: if reaped.is_some() {
                    Some("sentinel")
                } else if survived {
                    None
                } else {
                    Some("parent")
                },
                needed_sigkill: (info.pid == self.top.pid && self.plan_record.agent_needed_sigkill)
                    || killed_in_cleanup,
                survived,
                pid_in_namespace: info.pid_in_namespace,
            });
        }
        // Children of the sentinel that were never seen alive (short-lived orphans).
        let listed: HashSet<i32> = timeline.iter().map(|t| t.pid).collect();
        for r in &state.reaped {
            if !listed.contains(&r.pid) {
                timeline.push(TimelineEntry {
                    pid: r.pid,
                    command: "(never seen alive)".into(),
                    original_parent: None,
                    pgid: None,
                    sid: None,
                    first_seen_ms: None,
                    exit: Some(ExitRecord {
                        at_ms: ms(r.at),
                        how: describe_status(r.status),
                    }),
                    reaped_by: Some("sentinel"),
                    needed_sigkill: false,
                    survived: false,
                    pid_in_namespace: None,
                });
            }
        }
        timeline.sort_by(|a, b| {
            a.first_seen_ms
                .unwrap_or(f64::MAX)
                .total_cmp(&b.first_seen_ms.unwrap_or(f64::MAX))
                .then(a.pid.cmp(&b.pid))
        });
        // The sentinel's child (the agent, or its wrapper) is the root of the tree.
        for t in &mut timeline {
            if t.pid == self.top.pid {
                t.original_parent = None;
            }
        }
        let omitted = timeline.len().saturating_sub(TIMELINE_LIMIT);
        timeline.truncate(TIMELINE_LIMIT);

        let mut oracles = vec!["subreaper", "env-marker"];
        if self.cgroup.is_some() {
            oracles.push("cgroup");
        }
        Report {
            schema: "orphan-check/report",
            schema_version: SCHEMA_VERSION,
            verdict: if lost_track {
                Verdict::LostTrack
            } else if self.did_not_finish() {
                Verdict::DidNotFinish
            } else if leak {
                Verdict::Leak
            } else {
                Verdict::Clean
            },
            command: self.command.clone(),
            run_id: self.run_id.clone(),
            plan: PlanSummary {
                name: self.plan.name(),
                does: if self.container && !self.plan.needs_container() {
                    self.plan
                        .describe()
                        .replace("the agent's pid", "the container's PID 1")
                } else {
                    self.plan.describe()
                },
                simulates: if self.container && self.plan == KillPlan::sigkill() {
                    "docker kill"
                } else {
                    self.plan.simulates()
                },
            },
            ready: self.ready.clone(),
            agent_pid: self.agent.pid,
            ready_ms: ms(self.ready_at),
            kill_after_ms: self.kill_after.as_millis() as u64,
            killed_ms: ms(self.killed_at),
            deadline_ms: observed.deadline.map(|d| d.as_millis() as u64),
            oracles,
            survivors,
            ports,
            ports_at_ready: self.ports_at_ready.clone(),
            files: observed.files.clone(),
            signals: self.plan_record.sent.clone(),
            agent_needed_sigkill: self.plan_record.agent_needed_sigkill,
            timeline,
            timeline_omitted: omitted,
            quiet_after_kill_ms: state.empty_at.map(|e| ms(e.saturating_sub(self.killed_at))),
            cost: self.cgroup.as_ref().map(|cg| Cost {
                cpu_usec: cg.cpu_usage_usec(),
                memory_bytes: cg.memory_bytes(),
            }),
            stdout: state.stdout.clone(),
            stderr: state.stderr.clone(),
            wrapper: self.wrapper.map(|role| WrapperSummary {
                role: role.name(),
                pid: self.top.pid,
                command: self.top.command(),
            }),
            container,
            touched: self.touched.clone(),
            agent_exit: state
                .agent_exit()
                .map(|e| AgentExit::new(e.status, ms(e.at), before_ready)),
            exit_timeout_ms: self
                .plan
                .is_own_exit()
                .then_some(self.exit_timeout.as_millis() as u64),
            stdin: self.stdin_mode,
            stdin_closed_ms: self.plan_record.stdin_closed_at_ms,
        }
    }

    /// Kills everything left of the tree now and waits (up to `patience`) until it is
    /// gone. Returns how long that took. Dropping the outcome does the same.
    pub fn kill_remaining(&self, patience: Duration) -> Option<Duration> {
        let started = Instant::now();
        self.observed().cleanup_started = Some(self.tracker.clock.now());
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill();
        }
        if self.lost_track() {
            return crate::lost::end(&self.run_id, self.cgroup.as_ref(), patience)
                .then(|| started.elapsed());
        }
        let _ = self.sentinel.send(crate::sentinel::Request::KillTree);
        let state = self.tracker.wait_until(started + patience, |s| {
            s.empty_at.is_some() || s.sentinel_gone
        });
        state.empty_at.map(|_| started.elapsed())
    }

    fn failure(&self, reason: FailureReason) -> Failure {
        Failure {
            reason,
            report: Box::new(self.report()),
        }
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watched ports (including a readiness port).
    pub fn watched_ports(&self) -> &[u16] {
        &self.watched_ports
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // One deadline for every step that may wait, so the whole drop takes at most
        // DROP_BOUND however the steps share it.
        let deadline = Instant::now() + DROP_BOUND;
        // cgroup.kill first: atomic, so a fork storm cannot outrun it. The sentinel's own
        // loop (lifeline EOF, when its handle shuts down next) then reaps everything.
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill();
        }
        if self.lost_track() {
            // No sentinel left to kill the tree: end what the cgroup and the marker find.
            let left = deadline.saturating_duration_since(Instant::now());
            crate::lost::end(&self.run_id, self.cgroup.as_ref(), LOST_PATIENCE.min(left));
        }
        self.sentinel.shut_down(deadline);
        if let Some(cg) = &mut self.cgroup {
            cg.remove(deadline);
        }
    }
}

/// The longest an outcome's drop blocks: every step shares this one deadline (the
/// sentinel's shutdown, then the cgroup's removal; a sentinel still busy after it is
/// left to a reaper thread, and removes the cgroup itself when it is done).
const DROP_BOUND: Duration = Duration::from_secs(10);

/// How long dropping an outcome that lost track spends ending the run's processes.
const LOST_PATIENCE: Duration = Duration::from_secs(5);
