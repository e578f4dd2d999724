//! Passing signals on to an agent that ends by itself (`orphan-check wrap`'s forwarding).

use crate::signal::Signal;
use crate::tracker::Mailbox;

/// Hands signals to a scenario that waits for its agent's own exit, which sends each to
/// the agent's process group (the agent leads it): how a wrapper passes a runner's
/// SIGTERM, or a terminal's Ctrl-C, on to the program it runs and the children that
/// stayed in its group.
///
/// The library installs no signal handler; the caller catches the signals and calls
/// [`SignalForwarder::forward`].
///
/// ```
/// use orphan_check::kill::SignalForwarder;
/// use orphan_check::signal::Signal;
/// use orphan_check::{KillPlan, Scenario};
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
