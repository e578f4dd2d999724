//! The run up to the kill, as [`Scenario::run`](crate::Scenario::run) recorded it.
//!
//! The scenario writes it once the plan has run; the outcome keeps it, and the report is
//! built from it. It sits below both, so that neither the outcome nor the report imports
//! the scenario, and the report does not import the outcome.

use std::time::Duration;

use crate::kill::{KillPlan, PlanRecord};
use crate::ports::PortAtReady;
use crate::procs::ProcessInfo;
use crate::touch::TouchRecord;

/// The run up to the kill, as [`Scenario::run`](crate::Scenario::run) recorded it;
/// nothing in it changes afterwards.
pub(crate) struct Run {
    /// The agent's command line, as a person would type it.
    pub command: String,
    pub run_id: String,
    pub plan: KillPlan,
    /// The readiness condition, as the report states it.
    pub ready: String,
    /// How readiness was decided, to tell whether the agent exited before it.
    pub ready_by: ReadyBy,
    /// Watched ports (a readiness port included).
    pub watched_ports: Vec<u16>,
    /// The agent (read once it was ready; as started when it was gone by then).
    pub agent: ProcessInfo,
    /// The sentinel's child, which the plans signal: the agent itself, or the launcher
    /// (parent-death) or init (`Scenario::init`) started in its place.
    pub top: ProcessInfo,
    pub wrapper: Option<WrapperRole>,
    pub container: bool,
    pub touched: Option<TouchRecord>,
    pub ready_at: Duration,
    pub kill_after: Duration,
    pub kill_started_at: Duration,
    /// When the plan finished (for [`KillPlan::own_exit`], the agent's reap): every
    /// deadline counts from here.
    pub killed_at: Duration,
    pub before_kill: Vec<ProcessInfo>,
    /// How many of `before_kill` were seen at readiness (the rest during the delay
    /// before the kill).
    pub seen_at_ready: usize,
    /// Watched ports seen held before the kill, and when.
    pub held_before_kill: Vec<(u16, Duration)>,
    pub ports_at_ready: Vec<PortAtReady>,
    pub plan_record: PlanRecord,
    /// What the agent's stdin is, for the report: `null`, `pipe`, `inherited`.
    pub stdin_mode: &'static str,
    pub exit_timeout: Duration,
    /// The deadline of the verdicts that take none.
    pub verdict_deadline: Duration,
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

/// The process the harness puts between the sentinel and the agent, when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WrapperRole {
    /// The launcher [`KillPlan::parent_death`] kills.
    Launcher,
    /// The container's init (`--init`: tini, dumb-init), PID 1 with the agent under it.
    Init,
}

impl WrapperRole {
    pub(crate) fn name(self) -> &'static str {
        match self {
            WrapperRole::Launcher => "launcher",
            WrapperRole::Init => "init",
        }
    }
}
