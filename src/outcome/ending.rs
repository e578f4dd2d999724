//! How a run ends: what it holds open (the sentinel, and through it the tree; the
//! scenario's cgroup) is ended in the same steps under one deadline, whether an
//! [`Outcome`] is dropped or a scenario fails before it has one.

use std::time::{Duration, Instant};

use super::Outcome;
use crate::cgroup::ScenarioCgroup;
use crate::sentinel::SentinelHandle;

/// The longest ending a run blocks: every step shares this one deadline (the sentinel's
/// shutdown, then the cgroup's removal; a sentinel still busy after it is left to a
/// reaper thread, and removes the cgroup itself when it is done).
pub(crate) const DROP_BOUND: Duration = Duration::from_secs(10);

/// How long ending a run that lost track spends ending the run's processes.
const LOST_PATIENCE: Duration = Duration::from_secs(5);

/// Ends the sentinel and the cgroup by `deadline`, however the steps share it:
/// `cgroup.kill` first (atomic, so a fork storm cannot outrun it); when the sentinel was
/// lost (`lost_run` names the run), what the cgroup and the marker find; then the
/// sentinel's shutdown (its lifeline closed, its own loop reaps the rest) and the
/// cgroup's removal. Both parts are done afterwards: their own drops wait no more.
///
/// A tree the sentinel reported empty (`reported_empty`) gets no `cgroup.kill`: the
/// sentinel was the subreaper of every process in it, so nothing is left that could
/// fork; should anything still be in the cgroup, its removal kills it and waits. Its
/// sentinel, unless it was lost, is released to wait idle for another scenario (when
/// its start allows: see `SentinelStart::Auto`) instead of being waited for.
pub(crate) fn end_held(
    sentinel: &mut SentinelHandle,
    cgroup: Option<&mut ScenarioCgroup>,
    lost_run: Option<&str>,
    reported_empty: bool,
    deadline: Instant,
) {
    if let Some(cg) = cgroup.as_deref().filter(|_| !reported_empty) {
        let _ = cg.kill();
    }
    if let Some(run_id) = lost_run {
        // No sentinel left to kill the tree: end what the cgroup and the marker find.
        let left = deadline.saturating_duration_since(Instant::now());
        crate::lost::end(run_id, cgroup.as_deref(), LOST_PATIENCE.min(left));
    }
    if !(reported_empty && lost_run.is_none() && crate::sentinel::release(sentinel)) {
        sentinel.shut_down(deadline);
    }
    if let Some(cg) = cgroup {
        cg.remove(deadline);
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // One deadline for every step that may wait, so the whole drop takes at most
        // DROP_BOUND however the steps share it.
        crate::cost_trace::mark("drop: start");
        let deadline = Instant::now() + DROP_BOUND;
        let lost = self.lost_track();
        // A protocol error makes nothing the sentinel said believable, its "empty" too.
        let empty = {
            let state = self.live.tracker.lock();
            state.empty_at.is_some() && state.protocol_error.is_none()
        };
        end_held(
            &mut self.live.sentinel,
            self.live.cgroup.as_mut(),
            lost.then_some(self.run.run_id.as_str()),
            empty,
            deadline,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_and_the_cgroup_share_one_deadline_and_their_drops_add_no_wait() {
        let (mut sentinel, mut child, lifeline) = SentinelHandle::stuck();
        let (_parent, mut cgroup) = ScenarioCgroup::stuck();
        let kill = cgroup.dir().join("cgroup.kill");
        end_held(
            &mut sentinel,
            Some(&mut cgroup),
            None,
            false,
            Instant::now(),
        );
        // Each step had the deadline that had passed: the lifeline is closed and the
        // sentinel left to the reaper; the cgroup was killed (once) and kept.
        let mut byte = [0u8; 1];
        assert_eq!(
            rustix::io::read(&lifeline, &mut byte),
            Ok(0),
            "lifeline closed"
        );
        assert_eq!(std::fs::read_to_string(&kill).ok().as_deref(), Some("1"));
        std::fs::remove_file(&kill).expect("rm cgroup.kill");
        // Neither part starts a wait of its own afterwards, whatever it is given: the
        // shutdown and the removal have run.
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(!sentinel.shut_down(far));
        assert!(!cgroup.remove(far));
        drop(sentinel);
        drop(cgroup);
        assert!(!kill.exists(), "nothing killed the cgroup a second time");
        // End the stand-in, so that the reaper thread's wait ends too.
        child.kill().expect("kill");
        let _ = child.wait();
    }
}
