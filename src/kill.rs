//! Kill plans: how real life ends an agent.
//!
//! Each plan is named for its mechanism and documented with what it simulates. Signals
//! for the agent go through the sentinel (see [`crate::sentinel`]), which holds a pidfd
//! of the agent. A group signal is sent with `kill(-pgid)` while the agent is unreaped;
//! when the agent is already gone, the group's remaining members are signalled one by
//! one, each verified first (see [`signal_verified`]).

use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags};

use crate::procs::{self, ProcessInfo};
use crate::sentinel::{Request, SentinelHandle};
use crate::time::Human;
use crate::tracker::{Mailbox, Tracker};

/// A signal the harness can send. Own type, so the public API does not expose a
/// system-call crate's. It serializes as its conventional name (`"SIGTERM"`), as the
/// report spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGHUP: the terminal closed.
    Hup,
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGQUIT: Ctrl-\.
    Quit,
    /// SIGKILL: cannot be caught, blocked or ignored.
    Kill,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGTERM: the polite request to stop.
    Term,
}

impl Signal {
    /// The raw signal number.
    pub fn as_raw(self) -> i32 {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Kill => libc::SIGKILL,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
            Signal::Term => libc::SIGTERM,
        }
    }

    /// The conventional name, `SIGTERM`.
    pub fn name(self) -> &'static str {
        signal_name(self.as_raw())
    }
}

/// The conventional name of a raw signal number.
pub fn signal_name(raw: i32) -> &'static str {
    match raw {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        _ => "signal",
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Who a signal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Target {
    /// The agent's pid only.
    Agent,
    /// The agent's process group (the agent leads it, like a shell job).
    Group,
}

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
    /// pipe ([`Stdin::Pipe`](crate::Stdin::Pipe)).
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

/// Who a signal the plan sent went to. It serializes (and displays) as the report's
/// word for it: `agent`, `group`, `member`, `launcher`, `pid1`, `forwarded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Recipient {
    /// The agent's pid.
    Agent,
    /// The agent's process group.
    Group,
    /// One member of the agent's group, signalled by itself: the agent was gone, so its
    /// pid no longer pinned the group id.
    Member,
    /// The launcher between the sentinel and the agent ([`KillPlan::parent_death`]).
    Launcher,
    /// The container's PID 1 (the agent, or its init).
    Pid1,
    /// The agent's group, with a signal the caller passed on ([`SignalForwarder`]).
    Forwarded,
}

impl Recipient {
    /// The report's word for it: `agent`, `group`, `member`, `launcher`, `pid1`,
    /// `forwarded`.
    pub fn name(self) -> &'static str {
        match self {
            Recipient::Agent => "agent",
            Recipient::Group => "group",
            Recipient::Member => "member",
            Recipient::Launcher => "launcher",
            Recipient::Pid1 => "pid1",
            Recipient::Forwarded => "forwarded",
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A signal the plan sent, as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
pub struct PlanRecord {
    /// Every signal sent, in order.
    pub sent: Vec<SentSignal>,
    /// True when the agent (in container mode: PID 1) survived SIGTERM for the whole
    /// grace and needed SIGKILL.
    pub agent_needed_sigkill: bool,
    /// True when the agent had exited on its own before the plan ran.
    pub agent_exited_before_kill: bool,
    /// [`KillPlan::own_exit`]: the agent had not exited by the scenario's exit timeout
    /// (its tree was then killed).
    pub did_not_finish: bool,
    /// When the harness closed the agent's stdin, ms since the start.
    pub stdin_closed_at_ms: Option<f64>,
}

/// Hands signals to a scenario that waits for its agent's own exit, which sends each to
/// the agent's process group (the agent leads it): how a wrapper passes a runner's
/// SIGTERM, or a terminal's Ctrl-C, on to the program it runs and the children that
/// stayed in its group.
///
/// The library installs no signal handler; the caller catches the signals and calls
/// [`SignalForwarder::forward`].
///
/// ```
/// use orphan_check::{KillPlan, Scenario, Signal, SignalForwarder};
/// use std::process::Command;
///
/// let forwarder = SignalForwarder::new();
/// let scenario = Scenario::new(Command::new("true"))
///     .kill(KillPlan::own_exit())
///     .forward_signals(&forwarder);
/// let outcome = scenario.run()?;
/// outcome.assert_no_survivors(std::time::Duration::from_secs(1));
/// // The scenario is over: nothing to forward to.
/// assert!(!forwarder.forward(Signal::Term));
/// # Ok::<(), orphan_check::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SignalForwarder {
    slot: std::sync::Arc<std::sync::Mutex<Slot>>,
}

/// Where forwarded signals go: the running scenario, or a queue until one runs.
#[derive(Debug, Default)]
struct Slot {
    mailbox: Option<Mailbox>,
    /// Signals that came before the agent was started: delivered once it is.
    early: Vec<Signal>,
    /// The scenario has ended: nothing will take signals any more.
    closed: bool,
}

impl Default for SignalForwarder {
    fn default() -> Self {
        SignalForwarder::new()
    }
}

impl SignalForwarder {
    /// A forwarder for one scenario; signals given to it before the scenario starts are
    /// kept for its agent.
    pub fn new() -> Self {
        SignalForwarder {
            slot: std::sync::Arc::new(std::sync::Mutex::new(Slot::default())),
        }
    }

    /// Passes `signal` to the scenario's agent. A signal that comes before the agent is
    /// started is kept and delivered once it is, so a runner's early SIGTERM is not lost.
    /// False once the scenario using this forwarder is over, or when none was given it.
    pub fn forward(&self, signal: Signal) -> bool {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.closed {
            return false;
        }
        match slot.mailbox.as_ref() {
            Some(mailbox) => mailbox.post(signal),
            None => slot.early.push(signal),
        }
        true
    }

    /// The agent runs: deliver what came early, and everything from now on.
    pub(crate) fn attach(&self, mailbox: Mailbox) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        for signal in slot.early.drain(..) {
            mailbox.post(signal);
        }
        slot.mailbox = Some(mailbox);
    }

    /// The scenario is over.
    pub(crate) fn close(&self) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.mailbox = None;
        slot.early.clear();
        slot.closed = true;
    }
}

/// What the endings that are not kills need from the scenario.
pub(crate) struct Ending {
    /// How long [`KillPlan::own_exit`] waits for the agent.
    pub exit_timeout: Duration,
    /// The harness's write end of the agent's stdin, when stdin is a pipe.
    pub stdin: Option<std::os::fd::OwnedFd>,
}

/// How long to wait for the sentinel to acknowledge a command. It answers in
/// microseconds; this only bounds a sentinel that is gone.
const REPLY_PATIENCE: Duration = Duration::from_secs(5);

/// Runs `plan` against the sentinel's child: the agent, its launcher
/// ([`KillPlan::parent_death`]), or the container's PID 1 (`container`).
pub(crate) fn execute(
    plan: &KillPlan,
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    container: bool,
    ending: &mut Ending,
) -> PlanRecord {
    let mut record = PlanRecord {
        agent_exited_before_kill: tracker.lock().agent_exit().is_some(),
        ..PlanRecord::default()
    };
    // In container mode the sentinel's child, which the pid plans reach, is PID 1.
    let pid_label = if container {
        Recipient::Pid1
    } else {
        Recipient::Agent
    };
    match plan.plan {
        Plan::Once { signal, target } => {
            let label = match target {
                Target::Agent => pid_label,
                Target::Group => Recipient::Group,
            };
            send(sentinel, tracker, agent, signal, target, label, &mut record);
        }
        // The launcher is the sentinel's child: the pid plan's target.
        Plan::ParentDeath => send(
            sentinel,
            tracker,
            agent,
            Signal::Kill,
            Target::Agent,
            Recipient::Launcher,
            &mut record,
        ),
        Plan::TermThenKill { grace } | Plan::ContainerStop { grace } => {
            send(
                sentinel,
                tracker,
                agent,
                Signal::Term,
                Target::Agent,
                pid_label,
                &mut record,
            );
            sigkill_after(grace, sentinel, tracker, agent, pid_label, &mut record);
        }
        Plan::OwnExit => wait_for_own_exit(sentinel, tracker, agent, ending, &mut record),
        Plan::CloseStdin { grace } => {
            // Dropping the harness's write end is the whole act: the agent (and whoever
            // shares that pipe) reads end of file.
            if ending.stdin.take().is_some() {
                record.stdin_closed_at_ms = Some(tracker.clock.now().as_secs_f64() * 1000.0);
            }
            if let Some(grace) = grace {
                sigkill_after(grace, sentinel, tracker, agent, pid_label, &mut record);
            }
        }
    }
    record
}

/// Up to `grace` for the agent to exit after the plan's first act, then SIGKILL to it.
fn sigkill_after(
    grace: Duration,
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    label: Recipient,
    record: &mut PlanRecord,
) {
    let exited = tracker
        .wait_until(Instant::now() + grace, |s| {
            s.agent_exit().is_some() || s.sentinel_gone
        })
        .agent_exit()
        .is_some();
    if exited {
        return;
    }
    send(
        sentinel,
        tracker,
        agent,
        Signal::Kill,
        Target::Agent,
        label,
        record,
    );
    // The sentinel's answer decides, not our clock: on a loaded machine the agent may
    // have died of the first signal while this thread waited for the CPU, and then the
    // SIGKILL found it already reaped.
    record.agent_needed_sigkill = record
        .sent
        .last()
        .is_some_and(|s| s.signal == Signal::Kill && s.delivered);
}

/// Waits for the agent to exit by itself, up to the exit timeout, passing on every
/// signal a [`SignalForwarder`] hands over meanwhile.
fn wait_for_own_exit(
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    ending: &Ending,
    record: &mut PlanRecord,
) {
    let deadline = Instant::now() + ending.exit_timeout;
    loop {
        let mut state = tracker.wait_until(deadline, |s| {
            s.agent_exit().is_some() || s.sentinel_gone || !s.forward.is_empty()
        });
        let pending: Vec<Signal> = state.forward.drain(..).collect();
        let done = state.agent_exit().is_some() || state.sentinel_gone;
        drop(state);
        for signal in pending {
            // To the agent's group, as the runner's group signal or a terminal's Ctrl-C
            // would have reached it without a wrapper (member by member once it is gone).
            send(
                sentinel,
                tracker,
                agent,
                signal,
                Target::Group,
                Recipient::Forwarded,
                record,
            );
        }
        if done {
            return;
        }
        if Instant::now() >= deadline {
            record.did_not_finish = true;
            return;
        }
    }
}

fn send(
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    signal: Signal,
    target: Target,
    label: Recipient,
    record: &mut PlanRecord,
) {
    // Every command gets exactly one `Signalled` reply: wait for the next one.
    let before = tracker.lock().signals.len();
    let command = match target {
        Target::Agent => Request::SignalAgent(signal.as_raw()),
        Target::Group => Request::SignalGroup(signal.as_raw()),
    };
    if sentinel.send(command).is_err() {
        return;
    }
    let state = tracker.wait_until(Instant::now() + REPLY_PATIENCE, |s| {
        s.signals.len() > before || s.sentinel_gone
    });
    let Some(sent) = state.signals.get(before).copied() else {
        return;
    };
    drop(state);
    let at_ms = sent.at.as_secs_f64() * 1000.0;
    record.sent.push(SentSignal {
        signal,
        target: label,
        to: sent.target,
        at_ms,
        delivered: sent.errno == 0,
    });
    if target == Target::Group && sent.errno == libc::ESRCH {
        // The agent was already reaped, so its pid no longer pins the group id. Signal
        // whoever is still in the group, one verified member at a time.
        for member in procs::subtree(sentinel.pid())
            .into_iter()
            .filter(|p| p.pgid == agent)
        {
            let delivered = signal_verified(&member, sentinel.pid(), signal);
            record.sent.push(SentSignal {
                signal,
                target: Recipient::Member,
                to: member.pid,
                at_ms: tracker.clock.now().as_secs_f64() * 1000.0,
                delivered,
            });
        }
    }
}

/// Signals `who` only if it is still that very process and still descends from `root`
/// (see [`signal_checked`]).
pub(crate) fn signal_verified(who: &ProcessInfo, root: i32, signal: Signal) -> bool {
    pidfd(who.pid)
        .is_some_and(|fd| signal_checked(&fd, who, signal, |_| procs::descends_from(who.pid, root)))
}

/// A pidfd for `pid`; `None` when there is no such process.
pub(crate) fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// Signals through `pidfd` (opened for `who.pid` before this call) only if the pid
/// still names `who` (same start time) and `still_ours` holds for it now.
///
/// The pidfd is opened first and the identity checked after: if the pid was reused
/// before the open, the check sees the stranger (other start time, not ours) and
/// nothing is sent; if the process died after the open, the pidfd refers to the dead
/// process and the signal goes nowhere. A stranger is never signalled.
pub(crate) fn signal_checked(
    pidfd: &std::os::fd::OwnedFd,
    who: &ProcessInfo,
    signal: Signal,
    still_ours: impl FnOnce(&ProcessInfo) -> bool,
) -> bool {
    let Some(now) = ProcessInfo::read(who.pid) else {
        return false;
    };
    if !now.same_process(who) || !still_ours(&now) {
        return false;
    }
    let Some(sig) = rustix::process::Signal::from_named_raw(signal.as_raw()) else {
        return false;
    };
    pidfd_send_signal(pidfd, sig).is_ok()
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
