//! Which common cleanups would have missed a survivor: a group kill, a sweep by the
//! environment marker, a walk down from the agent, a SIGTERM-only cleanup.

use std::collections::HashMap;

use super::{Cleanup, Context};
use crate::procs::ProcessInfo;

/// Which common cleanups would have missed this survivor.
pub(crate) fn missed_by(p: &ProcessInfo, marker: Option<bool>, cx: &Context<'_>) -> Vec<Cleanup> {
    let mut out = Vec::new();
    if p.pgid != cx.agent.pid {
        out.push(Cleanup::GroupKill);
    }
    if marker == Some(false) {
        out.push(Cleanup::EnvMarkerSweep);
    }
    // A walk from the agent finds only processes whose parent chain still reaches it.
    if p.pid != cx.agent.pid && !chain_reaches(p, cx.agent.pid, &cx.alive) {
        out.push(Cleanup::ParentWalk);
    }
    if !p.is_zombie() && (p.ignores(libc::SIGTERM) || p.blocks(libc::SIGTERM) || p.is_stopped()) {
        out.push(Cleanup::SigtermCleanup);
    }
    out
}

fn chain_reaches(p: &ProcessInfo, ancestor: i32, alive: &HashMap<i32, i32>) -> bool {
    let mut ppid = p.ppid;
    for _ in 0..alive.len() + 1 {
        if ppid == ancestor {
            return true;
        }
        match alive.get(&ppid) {
            Some(&grandparent) => ppid = grandparent,
            None => return false,
        }
    }
    false
}
