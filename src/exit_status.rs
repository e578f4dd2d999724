//! How a process ended, from its raw wait status.

use std::fmt;

use crate::signal::signal_name;

/// How a process ended: its exit code, or the signal that killed it. `Display` reads the
/// way a shell says it: "exit status 0", "killed by SIGTERM".
///
/// ```
/// use orphan_check::process::ExitStatus;
///
/// assert_eq!(ExitStatus::from_raw(1 << 8).to_string(), "exit status 1");
/// assert_eq!(ExitStatus::from_raw(9), ExitStatus::Signaled(9));
/// assert_eq!(ExitStatus::Signaled(9).to_string(), "killed by SIGKILL");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It called `exit(code)` or returned from `main`.
    Exited(i32),
    /// A signal (its raw number) ended it.
    Signaled(i32),
    /// A wait status that is neither (stopped or continued); kept raw.
    Other(i32),
}

impl ExitStatus {
    /// Reads a raw status as `waitpid(2)` returns it.
    pub fn from_raw(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Other(status)
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signaled(sig) => write!(f, "killed by {}", signal_name(sig)),
            ExitStatus::Other(raw) => write!(f, "status {raw:#x}"),
        }
    }
}

/// A raw wait status for people, as [`ExitStatus`] says it.
pub(crate) fn describe_status(status: i32) -> String {
    ExitStatus::from_raw(status).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_read_like_a_shell_would_say_them() {
        assert_eq!(describe_status(0), "exit status 0");
        assert_eq!(describe_status(1 << 8), "exit status 1");
        assert_eq!(describe_status(libc::SIGKILL), "killed by SIGKILL");
        assert_eq!(describe_status(libc::SIGTERM), "killed by SIGTERM");
        assert_eq!(ExitStatus::from_raw(3 << 8), ExitStatus::Exited(3));
        assert_eq!(
            ExitStatus::from_raw(libc::SIGTERM),
            ExitStatus::Signaled(libc::SIGTERM)
        );
    }
}
