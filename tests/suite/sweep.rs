//! The marker sweep as a library: `orphan_check::sweep::find` lists this user's
//! processes carrying `ORPHAN_CHECK_RUN` with a run id under a prefix, and
//! `MarkedProcess::end` SIGKILLs one only while it is still that process.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orphan_check::sweep::{self, Ended};
use orphan_check::RUN_ENV;

use crate::common::tag;

/// `sleep 1000` with (or without) the marker, killed and reaped when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start(marker: Option<&str>) -> Sleeper {
        let mut c = Command::new("sleep");
        c.arg("1000").env_remove(RUN_ENV).stdin(Stdio::null());
        if let Some(m) = marker {
            c.env(RUN_ENV, m);
        }
        Sleeper(c.spawn().expect("sleep starts"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pids(found: &sweep::Leftovers) -> Vec<i32> {
    found.processes.iter().map(|m| m.process.pid).collect()
}

#[test]
fn a_marked_process_is_found_and_ended_and_nothing_else_is_touched() {
    let prefix = format!("lib-sweep-{}-t", tag());
    let mut marked = Sleeper::start(Some(&format!("{prefix}.oc-1")));
    // Unmarked, and marked for a run id that only shares the first characters.
    let mut decoy = Sleeper::start(None);
    let mut other = Sleeper::start(Some(&format!("lib-sweep-other-{}", tag())));

    let found = sweep::find(&prefix);
    // `sleep` has the marker in its environment from its first instruction: found.
    assert_eq!(pids(&found), [marked.pid()]);
    assert_eq!(found.processes[0].run_id, format!("{prefix}.oc-1"));
    assert_eq!(found.processes[0].process.comm, "sleep");
    assert!(!found.is_empty());
    // Finding signals nothing.
    assert_eq!(marked.0.try_wait().unwrap(), None, "find killed it");

    // Same start time, same marker: SIGKILLed, and the wait sees it exit.
    assert_eq!(
        found.processes[0].end(Duration::from_secs(5)),
        Ended::Killed
    );
    let status = marked.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    assert!(sweep::find(&prefix).processes.is_empty());

    assert_eq!(
        decoy.0.try_wait().unwrap(),
        None,
        "the unmarked one was signalled"
    );
    assert_eq!(
        other.0.try_wait().unwrap(),
        None,
        "another run was signalled"
    );
}

#[test]
fn nothing_marked_is_nothing_found() {
    let prefix = format!("lib-sweep-none-{}-t", tag());
    let _decoy = Sleeper::start(None);
    let found = sweep::find(&prefix);
    assert!(found.processes.is_empty(), "{:?}", found.processes);
    assert!(found.cgroups.is_empty(), "{:?}", found.cgroups);
    assert!(found.is_empty());
}

#[test]
fn a_process_that_exited_after_it_was_found_is_not_signalled() {
    let prefix = format!("lib-sweep-gone-{}-t", tag());
    let mut marked = Sleeper::start(Some(&prefix));
    let found = sweep::find(&prefix);
    assert_eq!(pids(&found), [marked.pid()]);
    marked.0.kill().unwrap();
    marked.0.wait().unwrap();
    // Reaped: its pid names nothing, or (reused) a stranger without the marker.
    let ended = found.processes[0].end(Duration::from_secs(5));
    assert!(matches!(ended, Ended::Gone | Ended::Changed), "{ended:?}");
}

#[test]
fn the_caller_is_never_listed_even_when_it_carries_the_marker() {
    // This test process's own marker (set by whoever runs the suite, or absent): the
    // sweep of that prefix never lists the caller or its ancestors.
    let Ok(own) = std::env::var(RUN_ENV) else {
        return;
    };
    let me = std::process::id() as i32;
    assert!(!pids(&sweep::find(&own)).contains(&me));
}
