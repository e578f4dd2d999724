//! Signals: the harness's own small signal type, and who a signal is for or went to.
//!
//! Own types, so that the public API exposes no system-call crate's: a [`Signal`] is
//! what a plan or a [`SignalForwarder`](crate::kill::SignalForwarder) sends, a
//! [`Target`] is who a plan means (the agent or its group), a [`Recipient`] is who a
//! sent signal reached, as the report names it.

use serde::Serialize;
use std::fmt;

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
    /// The launcher between the sentinel and the agent ([`KillPlan::parent_death`](crate::kill::KillPlan::parent_death)).
    Launcher,
    /// The container's PID 1 (the agent, or its init).
    Pid1,
    /// The agent's group, with a signal the caller passed on ([`SignalForwarder`](crate::kill::SignalForwarder)).
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
