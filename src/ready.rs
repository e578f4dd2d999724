//! Readiness: when the agent has done enough that killing it means something.
//!
//! A stdout line is an event (the reader thread wakes the waiter). A port or a file is
//! checked, at first every millisecond and backing off to every 20 ms, and the waiter
//! also wakes at once when the agent exits, so a failed start is reported immediately.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ports;

/// When the agent counts as ready to be killed.
///
/// ```
/// use orphan_check::{Error, Fixture, Ready, Scenario};
/// use std::time::Duration;
///
/// // `listener --quiet` never prints its ready line: the wait ends with a clear error,
/// // and nothing is left running.
/// let mut quiet = Fixture::Listener.command();
/// quiet.arg("--quiet");
/// let err = Scenario::new(quiet)
///     .ready_when(Ready::stdout_line("ready"))
///     .ready_timeout(Duration::from_millis(200))
///     .run()
///     .unwrap_err();
/// assert!(matches!(err, Error::NeverReady { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ready {
    /// A TCP socket is listening on the port (IPv4 or IPv6, any address).
    Port(u16),
    /// A line of the agent's stdout starts with this text (leading spaces ignored).
    StdoutLine(String),
    /// The path exists.
    File(PathBuf),
    /// A fixed time after the start: for agents with no better signal.
    After(Duration),
}

impl Ready {
    /// Ready when something listens on `port`.
    pub fn port(port: u16) -> Self {
        Ready::Port(port)
    }

    /// Ready when a stdout line starts with `text` (every fixture prints `ready pid=…`
    /// when it is set up; `server-ready …` does not match `ready`).
    pub fn stdout_line(text: impl Into<String>) -> Self {
        Ready::StdoutLine(text.into())
    }

    /// Ready when `path` exists.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Ready::File(path.into())
    }

    /// Ready `delay` after the start.
    pub fn after(delay: Duration) -> Self {
        Ready::After(delay)
    }

    /// The line to watch for, when this is a stdout condition.
    pub(crate) fn line(&self) -> Option<String> {
        match self {
            Ready::StdoutLine(text) => Some(text.clone()),
            _ => None,
        }
    }

    /// Checks a condition that is polled (port, file); `None` for the others.
    pub(crate) fn poll(&self) -> Option<bool> {
        match self {
            Ready::Port(port) => Some(
                ports::on_port_fast(*port)
                    .map(|inodes| !inodes.is_empty())
                    .unwrap_or(false),
            ),
            Ready::File(path) => Some(path.exists()),
            Ready::StdoutLine(_) | Ready::After(_) => None,
        }
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ready::Port(p) => write!(f, "port {p} listening"),
            Ready::StdoutLine(t) => write!(f, "a stdout line starting with {t:?}"),
            Ready::File(p) => write!(f, "{} existing", p.display()),
            Ready::After(d) => write!(f, "{} elapsed", crate::time::format_duration(*d)),
        }
    }
}

/// The polling interval after `n` unsuccessful checks: 1 ms doubling up to 20 ms.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis((1u64 << n.min(5)).min(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_fast_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(1));
        assert_eq!(backoff(3), Duration::from_millis(8));
        assert_eq!(backoff(30), Duration::from_millis(20));
    }

    #[test]
    fn a_file_condition_checks_existence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flag");
        let ready = Ready::file(&path);
        assert_eq!(ready.poll(), Some(false));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(ready.poll(), Some(true));
        assert_eq!(Ready::stdout_line("ready").poll(), None);
    }
}
