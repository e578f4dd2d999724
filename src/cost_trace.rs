//! Timestamps of the clean path's steps, for finding where a scenario's time goes.
//!
//! Compiled in only with the `cost-trace` feature; without it `mark` is empty and
//! inlined away, so a normal build carries no trace. `cargo run --release --features
//! cost-trace --example clean-cost` prints the median time of each step (the time since
//! the previous mark). The marks are read through the hidden
//! `orphan_check::bench::cost_marks`, not part of the API.

#[cfg(feature = "cost-trace")]
mod on {
    use std::sync::Mutex;
    use std::time::Instant;

    static MARKS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

    pub(crate) fn mark(label: &'static str) {
        mark_at(label, Instant::now());
    }

    pub(crate) fn mark_at(label: &'static str, at: Instant) {
        MARKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((label, at));
    }

    /// Takes the marks recorded so far (and forgets them).
    pub(crate) fn take_marks() -> Vec<(&'static str, Instant)> {
        std::mem::take(&mut *MARKS.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(feature = "cost-trace")]
pub(crate) use on::{mark, mark_at, take_marks};

/// Records that the step `label` ended now (nothing without `cost-trace`).
#[cfg(not(feature = "cost-trace"))]
#[inline(always)]
pub(crate) fn mark(_label: &'static str) {}

/// Records that the step `label` ended at `at` (nothing without `cost-trace`).
#[cfg(not(feature = "cost-trace"))]
#[inline(always)]
pub(crate) fn mark_at(_label: &'static str, _at: std::time::Instant) {}
