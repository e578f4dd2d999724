//! The harness could not do its job. (A leak is not an error: it is a
//! [`Failure`](crate::Failure), a verdict that carries the report.)
//!
//! Every error is returned with nothing of the scenario left running.

use std::path::PathBuf;
use std::time::Duration;

use crate::output::OutputTail;
use crate::ports::PortHolder;

/// Why a scenario could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program is not a file, or not on `PATH`.
    #[error("executable not found: {program:?} (searched {searched})")]
    NotFound {
        /// The program as given.
        program: String,
        /// Where it was looked for.
        searched: String,
    },

    /// The program exists but may not be executed.
    #[error("not executable: {} (check its mode and the mount's noexec)", path.display())]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },

    /// The agent could not be started at all.
    #[error("could not start the agent: {stage} failed")]
    Launch {
        /// What was being done: "exec", "chdir", "join the cgroup", "fork".
        stage: &'static str,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A watched port was already held before the agent started: the verdict would be
    /// about someone else.
    #[error("port {port} is already in use before the start{}", holder_text(.holders))]
    PortBusy {
        /// The port.
        port: u16,
        /// Who holds it, when that can be read.
        holders: Vec<PortHolder>,
    },

    /// A deadline or delay that cannot mean anything.
    #[error("invalid deadline for {what}: {value:?} ({why})")]
    InvalidDeadline {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: Duration,
        /// What is allowed.
        why: &'static str,
    },

    /// The agent exited before it was ready.
    #[error("the agent exited before it was ready ({status}); waiting for {condition}{}", tails(.stdout, .stderr))]
    ExitedBeforeReady {
        /// How it ended: "exit status 1", "killed by SIGSEGV".
        status: String,
        /// The readiness condition.
        condition: String,
        /// The agent's stdout.
        stdout: Box<OutputTail>,
        /// The agent's stderr.
        stderr: Box<OutputTail>,
    },

    /// The agent did not become ready in time.
    #[error("the agent was not ready after {}: waiting for {condition}{}{}", crate::time::format_duration(*.timeout), exited_text(.agent_exit), tails(.stdout, .stderr))]
    NeverReady {
        /// The readiness condition.
        condition: String,
        /// The timeout.
        timeout: Duration,
        /// When the agent itself had exited, though its tree lived on: "exit status 0 at
        /// +12ms".
        agent_exit: Option<String>,
        /// The agent's stdout.
        stdout: Box<OutputTail>,
        /// The agent's stderr.
        stderr: Box<OutputTail>,
    },

    /// Container mode cannot run here: not root, and no unprivileged user namespaces.
    #[error("container mode needs root or unprivileged user namespaces: {reason}")]
    ContainerUnavailable {
        /// Why, in one line.
        reason: String,
    },

    /// The command cannot be represented (an argument or variable with a NUL byte).
    #[error("invalid command: {0}")]
    InvalidCommand(String),

    /// A system call the harness needs failed.
    #[error("{what}")]
    Io {
        /// What the harness was doing.
        what: &'static str,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
}

fn exited_text(exit: &Option<String>) -> String {
    exit.as_ref().map_or_else(String::new, |e| {
        format!(" (the agent itself exited, {e}; its descendants lived on)")
    })
}

fn holder_text(holders: &[PortHolder]) -> String {
    if holders.is_empty() {
        return " (holder not readable: another user's process?)".into();
    }
    let names: Vec<String> = holders
        .iter()
        .map(|h| format!("pid {} `{}`", h.pid, h.command))
        .collect();
    format!(" by {}", names.join(", "))
}

fn tails(stdout: &OutputTail, stderr: &OutputTail) -> String {
    let mut s = String::new();
    for (name, out) in [("stdout", stdout), ("stderr", stderr)] {
        if out.is_empty() {
            s.push_str(&format!("\n{name}: (empty)"));
        } else {
            s.push_str(&format!("\n{name}:\n"));
            for line in out.to_string().lines() {
                s.push_str("  | ");
                s.push_str(line);
                s.push('\n');
            }
            s.pop();
        }
    }
    s
}
