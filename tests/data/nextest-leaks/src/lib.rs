//! Tests that leave processes behind in the two ways nextest's own leak detection cannot
//! see (it watches only the test's stdout and stderr), and one that cleans up.

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    /// A child with its stdio on /dev/null, never waited for: it outlives the test.
    #[test]
    fn leaks_a_child_with_null_stdio() {
        Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sleep starts");
    }

    /// A daemon: a new session and a double fork, its stdio on /dev/null.
    #[test]
    fn leaks_a_daemon() {
        let status = Command::new("setsid")
            .args(["sh", "-c", "sleep 300 &"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("setsid runs");
        assert!(status.success());
    }

    /// A child that is killed and reaped before the test ends.
    #[test]
    fn cleans_up_its_child() {
        let mut child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("sleep starts");
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
}
