//! Building the report from what the run recorded and what one look saw.
//!
//! [`build`] is a plain function of its [`Evidence`]: it reads no process and waits for
//! nothing, so the same evidence always gives the same report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::{
    AgentExit, Cost, ExitRecord, PlanSummary, Report, Survivor, TimelineEntry, Verdict,
    WrapperSummary, SCHEMA_VERSION,
};
use crate::container::ContainerReport;
use crate::exit_status::describe_status;
use crate::files::FileChange;
use crate::kill::KillPlan;
use crate::ports::PortVerdict;
use crate::procs::ProcessInfo;
use crate::run::Run;
use crate::tracker::{Reaped, State};

/// Largest number of processes listed in a report's timeline.
const TIMELINE_LIMIT: usize = 200;

/// Everything a report is built from, borrowed from the outcome.
pub(crate) struct Evidence<'a> {
    /// The run up to the kill.
    pub run: &'a Run,
    /// The tracker's record: reaps, cleanup kills, the tree's end, the agent's output.
    pub state: &'a State,
    /// Every process seen alive, with when it was first seen.
    pub seen: &'a BTreeMap<(i32, u64), (ProcessInfo, Duration)>,
    /// When the harness's own cleanup began.
    pub cleanup_started: Option<Duration>,
    /// The deadline of the last survivor verdict asked.
    pub deadline: Option<Duration>,
    /// The survivors (diagnosed), every watched port and the files written after the
    /// kill, as one look saw them.
    pub survivors: Vec<Survivor>,
    pub ports: Vec<PortVerdict>,
    pub files: Vec<FileChange>,
    pub container: Option<ContainerReport>,
    pub cost: Option<Cost>,
    /// Whether the scenario's cgroup was in use.
    pub cgroup: bool,
    /// The sentinel died before its tree was empty.
    pub lost_track: bool,
    /// The agent exited before it was ready, its tree living on.
    pub exited_before_ready: bool,
}

/// The report of `evidence`.
pub(crate) fn build(evidence: Evidence<'_>) -> Report {
    let Evidence {
        run,
        state,
        seen,
        cleanup_started,
        deadline,
        survivors,
        ports,
        files,
        container,
        cost,
        cgroup,
        lost_track,
        exited_before_ready,
    } = evidence;
    let stop_failed = container.as_ref().is_some_and(|c| c.stop_failed);
    let leak =
        !survivors.is_empty() || ports.iter().any(|p| !p.free) || !files.is_empty() || stop_failed;
    let (timeline, timeline_omitted) = timeline(run, state, seen, &survivors, cleanup_started);
    let mut oracles = vec!["subreaper", "env-marker"];
    if cgroup {
        oracles.push("cgroup");
    }
    Report {
        schema: "orphan-check/report",
        schema_version: SCHEMA_VERSION,
        verdict: if lost_track {
            Verdict::LostTrack
        } else if run.plan_record.did_not_finish {
            Verdict::DidNotFinish
        } else if leak {
            Verdict::Leak
        } else {
            Verdict::Clean
        },
        command: run.command.clone(),
        run_id: run.run_id.clone(),
        plan: plan_summary(&run.plan, run.container),
        ready: run.ready.clone(),
        agent_pid: run.agent.pid,
        ready_ms: ms(run.ready_at),
        kill_after_ms: run.kill_after.as_millis() as u64,
        killed_ms: ms(run.killed_at),
        deadline_ms: deadline.map(|d| d.as_millis() as u64),
        oracles,
        survivors,
        ports,
        ports_at_ready: run.ports_at_ready.clone(),
        files,
        signals: run.plan_record.sent.clone(),
        agent_needed_sigkill: run.plan_record.agent_needed_sigkill,
        timeline,
        timeline_omitted,
        quiet_after_kill_ms: state.empty_at.map(|e| ms(e.saturating_sub(run.killed_at))),
        cost,
        stdout: state.stdout.clone(),
        stderr: state.stderr.clone(),
        wrapper: run.wrapper.map(|role| WrapperSummary {
            role: role.name(),
            pid: run.top.pid,
            command: run.top.command(),
        }),
        container,
        touched: run.touched.clone(),
        agent_exit: state
            .agent_exit()
            .map(|e| AgentExit::new(e.status, ms(e.at), exited_before_ready)),
        exit_timeout_ms: run
            .plan
            .is_own_exit()
            .then_some(run.exit_timeout.as_millis() as u64),
        stdin: run.stdin_mode,
        stdin_closed_ms: run.plan_record.stdin_closed_at_ms,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The plan as the report states it: in container mode the pid plans reach PID 1.
fn plan_summary(plan: &KillPlan, container: bool) -> PlanSummary {
    PlanSummary {
        name: plan.name(),
        does: if container && !plan.needs_container() {
            plan.describe()
                .replace("the agent's pid", "the container's PID 1")
        } else {
            plan.describe()
        },
        simulates: if container && *plan == KillPlan::sigkill() {
            "docker kill"
        } else {
            plan.simulates()
        },
    }
}

/// Every process seen, from first sight to its end, sorted by first sight, at most
/// [`TIMELINE_LIMIT`] of them; and how many were left out.
fn timeline(
    run: &Run,
    state: &State,
    seen: &BTreeMap<(i32, u64), (ProcessInfo, Duration)>,
    survivors: &[Survivor],
    cleanup_started: Option<Duration>,
) -> (Vec<TimelineEntry>, usize) {
    // Indexes, so that a tree of thousands is reported in linear time.
    let mut reaped_by_pid: HashMap<i32, Vec<&Reaped>> = HashMap::new();
    for r in &state.reaped {
        reaped_by_pid.entry(r.pid).or_default().push(r);
    }
    let survivor_ids: HashSet<(i32, u64)> = survivors
        .iter()
        .map(|s| (s.process.pid, s.process.start_ticks))
        .collect();
    let cleanup_killed: HashSet<i32> = state.cleanup_kills.iter().map(|(pid, _)| *pid).collect();
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    for (info, first_seen) in seen.values() {
        let reaped = reaped_by_pid
            .get(&info.pid)
            .and_then(|rs| rs.iter().find(|r| r.at >= *first_seen))
            .copied();
        let survived = survivor_ids.contains(&(info.pid, info.start_ticks));
        // The harness's cleanup SIGKILLed it: the sentinel's loop named it, or it died
        // of SIGKILL after the cleanup began (cgroup.kill got there first).
        let killed_in_cleanup = cleanup_killed.contains(&info.pid)
            || reaped.zip(cleanup_started).is_some_and(|(r, started)| {
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
            needed_sigkill: (info.pid == run.top.pid && run.plan_record.agent_needed_sigkill)
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
        if t.pid == run.top.pid {
            t.original_parent = None;
        }
    }
    let omitted = timeline.len().saturating_sub(TIMELINE_LIMIT);
    timeline.truncate(TIMELINE_LIMIT);
    (timeline, omitted)
}
