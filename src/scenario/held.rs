//! What a scenario holds between the sentinel's start and its outcome: the sentinel and
//! the cgroup. A start that fails ends them as an outcome's drop would, in the same steps
//! under one deadline, so that no error path blocks longer than a drop. (Before the
//! sentinel starts, the cgroup is empty: its own drop removes it at once.)

use std::time::Instant;

use crate::cgroup::ScenarioCgroup;
use crate::outcome::{end_held, DROP_BOUND};
use crate::sentinel::SentinelHandle;

/// The sentinel and the cgroup of a scenario on its way to an outcome.
pub(super) struct Held {
    /// Always there until the outcome takes it (`into_parts`).
    sentinel: Option<SentinelHandle>,
    cgroup: Option<ScenarioCgroup>,
    run_id: String,
    /// The sentinel is gone: ending must find the tree by the cgroup and the marker.
    lost: bool,
}

impl Held {
    /// What run `run_id` holds once its sentinel has started.
    pub(super) fn new(
        sentinel: SentinelHandle,
        cgroup: Option<ScenarioCgroup>,
        run_id: &str,
    ) -> Self {
        Held {
            sentinel: Some(sentinel),
            cgroup,
            run_id: run_id.to_owned(),
            lost: false,
        }
    }

    /// Something killed the sentinel: no lifeline will end the tree it started.
    pub(super) fn lost(&mut self) {
        self.lost = true;
    }

    /// The start is over: the outcome takes them over.
    pub(super) fn into_parts(mut self) -> (SentinelHandle, Option<ScenarioCgroup>) {
        let sentinel = self
            .sentinel
            .take()
            .expect("held from `new` until this, which consumes it");
        (sentinel, self.cgroup.take())
    }
}

impl Held {
    /// Ends the sentinel and the cgroup by `deadline`, as an outcome's drop does; after
    /// it, dropping what is left waits for nothing.
    fn end(&mut self, deadline: Instant) {
        if let Some(mut sentinel) = self.sentinel.take() {
            end_held(
                &mut sentinel,
                self.cgroup.as_mut(),
                self.lost.then_some(self.run_id.as_str()),
                // A start that failed was never judged empty: kill it all.
                false,
                deadline,
            );
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.end(Instant::now() + DROP_BOUND);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_ends_the_sentinel_and_the_cgroup_by_one_deadline() {
        let (sentinel, mut child, lifeline) = SentinelHandle::stuck();
        let (_parent, cgroup) = ScenarioCgroup::stuck();
        let kill = cgroup.dir().join("cgroup.kill");
        let mut held = Held::new(sentinel, Some(cgroup), "oc-test-held");
        held.end(Instant::now());
        // Both steps had the deadline that had passed: the lifeline is closed (the
        // sentinel left to the reaper) and the cgroup killed once and kept.
        let mut byte = [0u8; 1];
        assert_eq!(
            rustix::io::read(&lifeline, &mut byte),
            Ok(0),
            "lifeline closed"
        );
        assert_eq!(std::fs::read_to_string(&kill).ok().as_deref(), Some("1"));
        std::fs::remove_file(&kill).expect("rm cgroup.kill");
        // The drop (an error path's `return`) starts no second wait and no second kill:
        // a cgroup dropped on its own would kill again and wait up to 5 s.
        drop(held);
        assert!(!kill.exists(), "the cgroup was not killed a second time");
        child.kill().expect("kill");
        let _ = child.wait();
    }
}
