//! The record of what a plan sent, as the report shows it.

use serde::Serialize;

use crate::signal::{Recipient, Signal};

/// A signal the plan sent, as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SentSignal {
    /// The signal.
    pub signal: Signal,
    /// Who it went to.
    pub target: Recipient,
    /// The pid (or process group id) it went to.
    pub to: i32,
    /// Milliseconds since the scenario started.
    pub at_ms: f64,
    /// Whether it was delivered; false when the target was already gone.
    pub delivered: bool,
}

/// What running the plan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PlanRecord {
    /// Every signal sent, in order.
    pub sent: Vec<SentSignal>,
    /// True when the agent (in container mode: PID 1) survived SIGTERM for the whole
    /// grace and needed SIGKILL.
    pub agent_needed_sigkill: bool,
    /// True when the agent had exited on its own before the plan ran.
    pub agent_exited_before_kill: bool,
    /// [`KillPlan::own_exit`](super::KillPlan::own_exit): the agent had not exited by the scenario's exit timeout
    /// (its tree was then killed).
    pub did_not_finish: bool,
    /// When the harness closed the agent's stdin, ms since the start.
    pub stdin_closed_at_ms: Option<f64>,
}
