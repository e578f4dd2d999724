//! Verdict deadlines: the scenario's own, for the verdicts that take none, and zero, which
//! every verdict reads the same way: one look, now.

use std::time::Duration;

use orphan_check::outcome::FailureReason;
use orphan_check::{Failure, Fixture, KillPlan, Outcome, Ready, Scenario, Verdict};

use crate::common::{
    expect_held_at_ready, fixture, holding_port_after_sigterm, run_with_port, DEADLINE,
};

/// A slow port holder that keeps its port after SIGTERM while it lives, with a watched
/// directory nothing writes to; verdicts that take no deadline use `deadline`.
fn holder(deadline: Duration) -> (Outcome, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, port) = run_with_port(|p| {
        holding_port_after_sigterm(p)
            .watch_dir(dir.path())
            .verdict_deadline(deadline)
    });
    expect_held_at_ready(&outcome, port);
    (outcome, port, dir)
}

#[track_caller]
fn reason(result: Result<&Outcome, Failure>) -> FailureReason {
    result.map(|_| ()).expect_err("the verdict fails").reason
}

#[test]
fn a_zero_deadline_looks_once_now_in_every_verdict() {
    let (o, port, dir) = holder(Duration::ZERO);
    let zero = Duration::ZERO;
    // Right after the kill the holder lives and holds its port: each verdict says so,
    // none refuses the deadline.
    assert_eq!(o.survivors_after(zero).len(), 1);
    assert_eq!(
        reason(o.check_no_survivors(zero)),
        FailureReason::Survivors(1)
    );
    assert!(!o.port_verdict(port, zero).free);
    assert_eq!(
        reason(o.check_port_free(port, zero)),
        FailureReason::PortHeld(port)
    );
    assert!(o.writes_after_kill(dir.path(), zero).is_empty());
    assert!(o.check_no_writes_after_kill(dir.path(), zero).is_ok());
    assert!(
        o.check_graceful_stop(zero).is_ok(),
        "outside container mode"
    );
    // The verdicts without a deadline argument use the scenario's: zero here.
    assert_eq!(o.verdict_deadline(), zero);
    assert_eq!(o.survivors().len(), 1);
    let failure = o.check_clean().map(|_| ()).unwrap_err();
    assert_eq!(failure.reason, FailureReason::Survivors(1));
    assert_eq!(failure.report.deadline_ms, Some(0));
    assert_eq!(failure.report.verdict, Verdict::Leak);
}

#[test]
fn the_scenario_deadline_is_what_the_verdicts_without_one_use() {
    let (o, port, _dir) = holder(DEADLINE);
    assert_eq!(o.verdict_deadline(), DEADLINE);
    let failure = o.check_clean().map(|_| ()).unwrap_err();
    assert_eq!(failure.reason, FailureReason::Survivors(1));
    let report = &failure.report;
    assert_eq!(report.deadline_ms, Some(DEADLINE.as_millis() as u64));
    let held = report.ports.iter().find(|p| p.port == port).unwrap();
    assert!(!held.free, "{report}");
    assert!(
        held.checked_after_kill_ms >= DEADLINE.as_millis() as u64,
        "{report}"
    );
}

#[test]
fn the_default_verdict_deadline_is_five_seconds_and_a_clean_run_passes_at_once() {
    let (outcome, port) = run_with_port(|p| {
        let port = p.to_string();
        Scenario::new(fixture(Fixture::Listener, &["--port", &port]))
            .ready_when(Ready::port(p))
            .kill(KillPlan::sigterm())
    });
    expect_held_at_ready(&outcome, port);
    assert_eq!(outcome.verdict_deadline(), Duration::from_secs(5));
    outcome.assert_clean();
    assert!(outcome.survivors().is_empty());
    assert_eq!(outcome.report().verdict, Verdict::Clean);
}
