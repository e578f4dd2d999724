//! What the diagnosis knows about the scenario as a whole: the plan, the agent, the tree
//! before the kill and what is alive now, indexed once for every survivor.

use std::collections::{HashMap, HashSet};

use crate::kill::KillPlan;
use crate::procs::ProcessInfo;

/// What the diagnosis knows about the scenario as a whole, indexed so that diagnosing
/// every survivor of a tree of thousands stays linear.
pub(crate) struct Context<'a> {
    pub(super) plan: &'a KillPlan,
    /// The agent as it was at the start.
    pub(super) agent: &'a ProcessInfo,
    /// The tree just before the kill, by pid.
    pub(super) before_kill: HashMap<i32, &'a ProcessInfo>,
    /// The parent of everything alive now that is not a zombie.
    pub(super) alive: HashMap<i32, i32>,
    /// The sentinel's pid (the subreaper every orphan is reparented to).
    pub(super) sentinel: i32,
    /// How the agent ended when it exited on its own before the kill, with an error.
    pub(super) agent_failed_before_kill: Option<String>,
    /// How the agent ended when it exited before it was ready (a launcher).
    pub(super) launcher_exit: Option<String>,
    /// Survivors whose stdin pipe has no writer left.
    pub(super) stdin_at_eof: HashSet<i32>,
    /// How each process the sentinel reaped ended (raw wait status), by pid.
    pub(super) ended: HashMap<i32, i32>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        plan: &'a KillPlan,
        agent: &'a ProcessInfo,
        before_kill: &'a [ProcessInfo],
        alive: &[ProcessInfo],
        sentinel: i32,
        agent_failed_before_kill: Option<String>,
        ended: HashMap<i32, i32>,
    ) -> Self {
        Context {
            plan,
            agent,
            before_kill: before_kill.iter().map(|p| (p.pid, p)).collect(),
            alive: alive
                .iter()
                .filter(|a| !a.is_zombie())
                .map(|a| (a.pid, a.ppid))
                .collect(),
            sentinel,
            agent_failed_before_kill,
            ended,
            launcher_exit: None,
            stdin_at_eof: Default::default(),
        }
    }

    /// The agent exited before it was ready, this way: its survivors were left by a
    /// launcher.
    pub(crate) fn launcher_exited(mut self, status: Option<String>) -> Self {
        self.launcher_exit = status;
        self
    }

    /// These survivors read a stdin pipe that has no writer left.
    pub(crate) fn stdin_at_eof(mut self, pids: HashSet<i32>) -> Self {
        self.stdin_at_eof = pids;
        self
    }

    /// Whether the plan's signal went to `p` itself: it is the agent, or the plan aims at
    /// the agent's group and `p` is in it. The agent was started as the leader of its own
    /// group, so that group's id is the agent's pid, whatever group the agent moved to.
    pub(super) fn reached(&self, p: &ProcessInfo) -> bool {
        p.pid == self.agent.pid || (self.plan.targets_group() && p.pgid == self.agent.pid)
    }
}

/// Whether `pid` is alive now (a zombie is not).
pub(super) fn alive_pid(cx: &Context<'_>, pid: i32) -> bool {
    cx.alive.contains_key(&pid)
}
