//! Kill plans: how real life ends an agent, and the record of what a plan sent.
//!
//! Each plan is named for its mechanism and documented with what it simulates. Signals
//! for the agent go through the sentinel, which holds a pidfd of the agent. A group
//! signal is sent with `kill(-pgid)` while the agent is unreaped; when the agent is
//! already gone, the group's remaining members are signalled one by one, each verified
//! first.

// This file is the plan: its constructors and what it says of itself. The rest, in
// `kill/`: `name.rs` reads a plan back from its name (`ParsePlanError`),
// `execute.rs` runs a plan through the sentinel, `record.rs` is what it sent
// (`PlanRecord`, `SentSignal`), `forwarder.rs` passes a caller's signals on
// (`SignalForwarder`), and `verified.rs` is the one verified signal for a process
// that is not the sentinel's unreaped child.

mod execute;
mod forwarder;
mod name;
mod record;
mod verified;

pub(crate) use execute::{execute, Ending};
pub use forwarder::SignalForwarder;
pub use name::ParsePlanError;
pub use record::{PlanRecord, SentSignal};
pub(crate) use verified::{pidfd, signal_checked};

use serde::Serialize;
use std::fmt;
use std::time::Duration;

use crate::signal::{Signal, Target};
use crate::time::Human;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
enum Plan {
    Once {
        signal: Signal,
        target: Target,
    },
    TermThenKill {
        #[serde(rename = "grace_ms", serialize_with = "as_millis")]
        grace: Duration,
    },
    /// SIGKILL to the launcher the harness put between the sentinel and the agent.
    ParentDeath,
    /// SIGTERM to the PID namespace's init, grace, SIGKILL to it.
    ContainerStop {
        #[serde(rename = "grace_ms", serialize_with = "as_millis")]
        grace: Duration,
    },
    // Endings that are not kills: no signal starts them.
    /// The agent ends by itself; nothing is sent.
    OwnExit,
    /// The harness closes its end of the agent's stdin pipe; with a grace, SIGKILL
    /// follows when the agent has not exited by then.
    CloseStdin {
        #[serde(rename = "grace_ms", serialize_with = "as_millis_opt")]
        grace: Option<Duration>,
    },
}

fn as_millis_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// How the agent is killed once it is ready.
///
/// | constructor | does | simulates |
/// | --- | --- | --- |
/// | [`KillPlan::sigkill`] | SIGKILL to the agent's pid | the OOM killer, a budget kill, `kill -9` |
/// | [`KillPlan::sigterm`] | SIGTERM to the agent's pid | `kill`, a stop without grace |
/// | [`KillPlan::sigterm_then_sigkill`] | SIGTERM, up to `grace` for the agent to exit, then SIGKILL | `docker stop`, systemd stop |
/// | [`KillPlan::sigint_group`] | SIGINT to the agent's process group | Ctrl-C in a terminal |
/// | [`KillPlan::sigkill_group`] | SIGKILL to the agent's process group | `kill -9 -PGID` |
/// | [`KillPlan::sighup_group`] | SIGHUP to the agent's process group | the terminal closing |
/// | [`KillPlan::parent_death`] | SIGKILL to the agent's launcher (its parent), not the agent | the IDE, terminal or supervisor that started the agent dying |
/// | [`KillPlan::container_stop`] | SIGTERM to the container's PID 1, `grace`, then SIGKILL to it | `docker stop` |
/// | [`KillPlan::own_exit`] | nothing: the agent exits by itself | a task done, a budget hit, an exception |
/// | [`KillPlan::close_stdin`] | the harness closes the agent's stdin pipe | an MCP client or an editor going away |
/// | [`KillPlan::close_stdin_then_sigkill`] | stdin closed, up to `grace` for the agent to exit, then SIGKILL | a client that waits, then kills |
///
/// In container mode ([`Scenario::container`](crate::Scenario::container)) the pid plans
/// reach the namespace's PID 1: [`KillPlan::sigkill`] is `docker kill`.
///
/// The last three are endings, not kills: for [`KillPlan::own_exit`] every deadline is
/// counted from the agent's own exit (its reap by the sentinel).
///
/// ```
/// use orphan_check::KillPlan;
/// use std::time::Duration;
///
/// let plan = KillPlan::sigterm_then_sigkill(Duration::from_secs(5));
/// assert_eq!(plan.name(), "term-then-kill=5s");
/// assert_eq!(plan.simulates(), "docker stop, systemd stop");
/// assert!(KillPlan::sigint_group().targets_group());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct KillPlan {
    plan: Plan,
}

impl KillPlan {
    /// SIGKILL to the agent's pid: the OOM killer, a budget or watchdog kill, `kill -9`.
    /// Nothing in the agent runs: no `finally`, no `atexit`, no signal handler.
    pub fn sigkill() -> Self {
        Self::signal(Signal::Kill, Target::Agent)
    }

    /// SIGTERM to the agent's pid: `kill`, a supervisor stop without grace.
    pub fn sigterm() -> Self {
        Self::signal(Signal::Term, Target::Agent)
    }

    /// SIGTERM to the agent's pid, then up to `grace` for it to exit, then SIGKILL:
    /// `docker stop`, systemd's stop, a test runner's timeout.
    ///
    /// (`docker stop` then SIGKILLs the whole container; here only the agent, so what the
    /// agent left behind stays visible.)
    pub fn sigterm_then_sigkill(grace: Duration) -> Self {
        KillPlan {
            plan: Plan::TermThenKill { grace },
        }
    }

    /// SIGINT to the agent's process group: Ctrl-C in a terminal.
    pub fn sigint_group() -> Self {
        Self::signal(Signal::Int, Target::Group)
    }

    /// SIGKILL to the agent's process group: `kill -9 -PGID`, `timeout --kill-after` on a
    /// group.
    pub fn sigkill_group() -> Self {
        Self::signal(Signal::Kill, Target::Group)
    }

    /// SIGHUP to the agent's process group: the terminal closing.
    pub fn sighup_group() -> Self {
        Self::signal(Signal::Hup, Target::Group)
    }

    /// SIGKILL to the agent's launcher only: the IDE, terminal or supervisor that started
    /// the agent dying. The scenario starts the agent through a small launcher process
    /// (which forks the agent and waits for it) and kills that launcher; the agent is
    /// reparented to the sentinel. An agent that set `PR_SET_PDEATHSIG` or polls its
    /// parent pid (gunicorn's workers) follows its parent; any other survives.
    pub fn parent_death() -> Self {
        KillPlan {
            plan: Plan::ParentDeath,
        }
    }

    /// SIGTERM to the container's PID 1, up to `grace` for it to exit, then SIGKILL to
    /// it: `docker stop` (whose default grace is 10 s). When PID 1 dies the kernel
    /// SIGKILLs everything else in its PID namespace. Runs the scenario in container
    /// mode ([`Scenario::container`](crate::Scenario::container)).
    pub fn container_stop(grace: Duration) -> Self {
        KillPlan {
            plan: Plan::ContainerStop { grace },
        }
    }

    /// True for [`KillPlan::parent_death`]: the agent is started through a launcher.
    pub fn needs_launcher(&self) -> bool {
        matches!(self.plan, Plan::ParentDeath)
    }

    /// True for [`KillPlan::container_stop`]: the scenario runs in container mode.
    pub fn needs_container(&self) -> bool {
        matches!(self.plan, Plan::ContainerStop { .. })
    }

    /// No signal: the agent ends by itself (its task is done, it hit its budget, it
    /// raised). The scenario waits for that exit up to
    /// [`Scenario::exit_timeout`](crate::Scenario::exit_timeout); the verdicts count from
    /// it. An agent that does not exit in time is a verdict of its own
    /// ([`Verdict::DidNotFinish`](crate::Verdict::DidNotFinish)), and its tree is killed.
    pub fn own_exit() -> Self {
        KillPlan {
            plan: Plan::OwnExit,
        }
    }

    /// The harness closes its end of the agent's stdin pipe, as a client that goes away
    /// does (an MCP client, an editor, a parent process reading the agent's answers).
    /// A well-behaved stdio server exits on end of file. The scenario's stdin is then a
    /// pipe ([`Stdin::Pipe`](crate::scenario::Stdin::Pipe)).
    pub fn close_stdin() -> Self {
        KillPlan {
            plan: Plan::CloseStdin { grace: None },
        }
    }

    /// The agent's stdin closed, then up to `grace` for it to exit, then SIGKILL to its
    /// pid: a client that waits before it kills.
    pub fn close_stdin_then_sigkill(grace: Duration) -> Self {
        KillPlan {
            plan: Plan::CloseStdin { grace: Some(grace) },
        }
    }

    /// Any signal to the agent or its group.
    pub fn signal(signal: Signal, target: Target) -> Self {
        KillPlan {
            plan: Plan::Once { signal, target },
        }
    }

    /// Every named plan, with `grace` for the one that has a grace period.
    pub fn all(grace: Duration) -> [KillPlan; 6] {
        [
            KillPlan::sigkill(),
            KillPlan::sigterm(),
            KillPlan::sigterm_then_sigkill(grace),
            KillPlan::sigint_group(),
            KillPlan::sigkill_group(),
            KillPlan::sighup_group(),
        ]
    }

    /// A short name, also the CLI's: `sigkill`, `sigterm`, `term-then-kill=5s`,
    /// `int-group`, `kill-group`, `hup-group`.
    pub fn name(&self) -> String {
        match self.plan {
            Plan::Once { signal, target } => match (signal, target) {
                (Signal::Kill, Target::Agent) => "sigkill".into(),
                (Signal::Term, Target::Agent) => "sigterm".into(),
                (Signal::Int, Target::Group) => "int-group".into(),
                (Signal::Kill, Target::Group) => "kill-group".into(),
                (Signal::Hup, Target::Group) => "hup-group".into(),
                (s, Target::Agent) => s.name().to_ascii_lowercase(),
                (s, Target::Group) => format!(
                    "{}-group",
                    s.name().trim_start_matches("SIG").to_ascii_lowercase()
                ),
            },
            Plan::TermThenKill { grace } => format!("term-then-kill={}", Human(grace)),
            Plan::ParentDeath => "parent-death".into(),
            Plan::ContainerStop { grace } => format!("docker-stop={}", Human(grace)),
            Plan::OwnExit => "own-exit".into(),
            Plan::CloseStdin { grace: None } => "close-stdin".into(),
            Plan::CloseStdin { grace: Some(g) } => format!("close-stdin-then-kill={}", Human(g)),
        }
    }

    /// What the plan does, for a report: "SIGKILL to the agent's pid".
    pub fn describe(&self) -> String {
        match self.plan {
            Plan::Once {
                signal,
                target: Target::Agent,
            } => format!("{signal} to the agent's pid"),
            Plan::Once {
                signal,
                target: Target::Group,
            } => format!("{signal} to the agent's process group"),
            Plan::TermThenKill { grace } => {
                format!(
                    "SIGTERM, {} grace, then SIGKILL to the agent's pid",
                    Human(grace)
                )
            }
            Plan::ParentDeath => {
                "SIGKILL to the agent's launcher (its parent), not the agent".into()
            }
            Plan::ContainerStop { grace } => format!(
                "SIGTERM to the container's PID 1, {} grace, then SIGKILL to it",
                Human(grace)
            ),
            Plan::OwnExit => "no signal: the agent's own exit".into(),
            Plan::CloseStdin { grace: None } => "end of file on the agent's stdin".into(),
            Plan::CloseStdin { grace: Some(g) } => format!(
                "end of file on the agent's stdin, {} grace, then SIGKILL to the agent's pid",
                Human(g)
            ),
        }
    }

    /// What the plan simulates: "the OOM killer, a budget kill, kill -9".
    pub fn simulates(&self) -> &'static str {
        match self.plan {
            Plan::Once { signal, target } => match (signal, target) {
                (Signal::Kill, Target::Agent) => "the OOM killer, a budget kill, kill -9",
                (Signal::Term, Target::Agent) => "kill, a stop without grace",
                (Signal::Int, Target::Group) => "Ctrl-C in a terminal",
                (Signal::Kill, Target::Group) => "kill -9 -PGID",
                (Signal::Hup, Target::Group) => "the terminal closing",
                _ => "a custom signal",
            },
            Plan::TermThenKill { .. } => "docker stop, systemd stop",
            Plan::ParentDeath => "the IDE, terminal or supervisor that started the agent dying",
            Plan::ContainerStop { .. } => "docker stop",
            Plan::OwnExit => "a task done, a budget hit, an exception",
            Plan::CloseStdin { grace: None } => "an MCP client or an editor going away",
            Plan::CloseStdin { grace: Some(_) } => {
                "a client that closes the pipe, waits, then kills"
            }
        }
    }

    /// True when the plan reaches the whole process group, not only the agent.
    pub fn targets_group(&self) -> bool {
        matches!(
            self.plan,
            Plan::Once {
                target: Target::Group,
                ..
            }
        )
    }

    /// The first signal the plan sends. For an ending that starts without a signal
    /// ([`KillPlan::starts_with_signal`] is false) this is SIGKILL, the only signal it
    /// may still send (after the grace, or to clean up an agent that did not finish).
    pub fn first_signal(&self) -> Signal {
        match self.plan {
            Plan::Once { signal, .. } => signal,
            Plan::TermThenKill { .. } | Plan::ContainerStop { .. } => Signal::Term,
            Plan::ParentDeath | Plan::OwnExit | Plan::CloseStdin { .. } => Signal::Kill,
        }
    }

    /// False for the endings that start without a signal: [`KillPlan::own_exit`],
    /// [`KillPlan::close_stdin`], [`KillPlan::close_stdin_then_sigkill`].
    pub fn starts_with_signal(&self) -> bool {
        self.opening_signal().is_some()
    }

    /// The signal that starts the plan, if one does.
    pub(crate) fn opening_signal(&self) -> Option<Signal> {
        match self.plan {
            Plan::OwnExit | Plan::CloseStdin { .. } => None,
            _ => Some(self.first_signal()),
        }
    }

    /// True for [`KillPlan::own_exit`].
    pub fn is_own_exit(&self) -> bool {
        matches!(self.plan, Plan::OwnExit)
    }

    /// True for the plans that close the agent's stdin.
    pub fn closes_stdin(&self) -> bool {
        matches!(self.plan, Plan::CloseStdin { .. })
    }

    /// The grace period, for the plans that have one.
    pub fn grace(&self) -> Option<Duration> {
        match self.plan {
            Plan::TermThenKill { grace } | Plan::ContainerStop { grace } => Some(grace),
            Plan::CloseStdin { grace } => grace,
            Plan::Once { .. } | Plan::ParentDeath | Plan::OwnExit => None,
        }
    }
}

/// What the plan does, as [`KillPlan::describe`] says it; the report's text is built on
/// it. The name, which [`str::parse`] reads back, is [`KillPlan::name`].
impl fmt::Display for KillPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_are_the_cli_tokens() {
        let names: Vec<String> = KillPlan::all(Duration::from_secs(5))
            .iter()
            .map(KillPlan::name)
            .collect();
        assert_eq!(
            names,
            [
                "sigkill",
                "sigterm",
                "term-then-kill=5s",
                "int-group",
                "kill-group",
                "hup-group"
            ]
        );
    }

    #[test]
    fn the_endings_that_are_not_plain_signals_have_names() {
        let stop = KillPlan::container_stop(Duration::from_secs(10));
        assert_eq!(stop.name(), "docker-stop=10s");
        assert_eq!(stop.grace(), Some(Duration::from_secs(10)));
        assert_eq!(stop.first_signal(), Signal::Term);
        assert!(stop.needs_container() && !stop.needs_launcher());
        let death = KillPlan::parent_death();
        assert_eq!(death.name(), "parent-death");
        assert_eq!(death.first_signal(), Signal::Kill);
        assert!(death.needs_launcher() && !death.needs_container());
        assert!(!death.targets_group() && !stop.targets_group());
    }

    #[test]
    fn only_group_plans_target_the_group() {
        assert!(KillPlan::sigint_group().targets_group());
        assert!(!KillPlan::sigkill().targets_group());
        assert!(!KillPlan::sigterm_then_sigkill(Duration::from_secs(1)).targets_group());
    }
}
