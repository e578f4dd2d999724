//! Snapshot tests of the report, text and JSON, through `insta`, with what changes from
//! run to run masked by its filters: pids (named by their role), times, the watched
//! port, the run id and the fixtures' directory.
//!
//! A snapshot that differs, or is missing, fails the test (and `insta` leaves the new one
//! beside it as `.snap.new`; in CI, `CI=true` or `INSTA_UPDATE=no`, it writes nothing).
//! `INSTA_UPDATE=always cargo test --test suite report::` rewrites the snapshots in
//! `tests/snapshots/` (or `cargo insta review` accepts them one by one); review the diff
//! before committing it.

use std::time::Duration;

use orphan_check::fixture::fixture_dir;
use orphan_check::scenario::CgroupMode;
use orphan_check::{Fixture, KillPlan, Outcome, Ready, Scenario};
use serde_json::Value;

use crate::common::{expect_held_at_ready, DEADLINE};

/// What a run's report holds that the next run's does not.
struct Masks {
    /// Each pid of the run and the placeholder it becomes.
    pids: Vec<(i32, String)>,
    port: u16,
    run_id: String,
    fixtures: String,
}

impl Masks {
    /// The sentinel and the agent by role; every other pid of the tree `<PIDn>` in the
    /// timeline's order (first seen, then pid), so both snapshots name a process alike.
    fn of(outcome: &Outcome, port: u16) -> Masks {
        let report = outcome.report();
        let mut pids = vec![
            (outcome.sentinel_pid(), "<SENTINEL>".to_string()),
            (report.agent_pid, "<AGENT>".to_string()),
        ];
        let others = report
            .timeline
            .iter()
            .map(|t| t.pid)
            .chain(report.survivors.iter().map(|s| s.process.pid));
        for pid in others {
            if !pids.iter().any(|(p, _)| *p == pid) {
                pids.push((pid, format!("<PID{}>", pids.len() - 1)));
            }
        }
        Masks {
            pids,
            port,
            run_id: report.run_id.clone(),
            fixtures: fixture_dir().display().to_string(),
        }
    }

    /// The snapshot settings: where the snapshots live, and the filters, in an order
    /// where none can eat another's match (a time's digits go before a pid can match
    /// them; numbers only as whole words, so pid 145678 keeps its 4567).
    fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.add_filter(&regex::escape(&self.fixtures), "<FIXTURES>");
        settings.add_filter(&regex::escape(&self.run_id), "<RUN>");
        settings.add_filter(r"\b\d+(?:\.\d+)?m?s\b", "<T>");
        settings.add_filter(&format!(r"\b{}\b", self.port), "<PORT>");
        for (pid, name) in &self.pids {
            settings.add_filter(&format!(r"\b{pid}\b"), name.as_str());
        }
        settings
    }
}

#[test]
fn the_masks_replace_whole_numbers_and_leave_the_rest() {
    let masks = Masks {
        pids: vec![(1234, "<AGENT>".into()), (99, "<PID1>".into())],
        port: 4567,
        run_id: "oc-1.2".into(),
        fixtures: "/t/out+1/fixtures".into(),
    };
    masks.settings().bind(|| {
        insta::assert_snapshot!(
            "SURVIVED 1234 (99) listener --port 4567 --other 4321, pid 145678 :4567 at +12.5ms, \
             1.25s after, 3 lines; /t/out+1/fixtures/listener run=oc-1.2 oc-1x2",
            @"SURVIVED <AGENT> (<PID1>) listener --port <PORT> --other 4321, pid 145678 :<PORT> at +<T>, <T> after, 3 lines; <FIXTURES>/listener run=<RUN> oc-1x2"
        );
    });
}

fn shell_fork_tree_under_sigterm() -> (Outcome, u16) {
    let port = orphan_check::free_port();
    let mut cmd = Fixture::ShellForkTree.command();
    cmd.args(["--port", &port.to_string()]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .watch_port(port)
        .cgroup(CgroupMode::Off)
        .run()
        .expect("the scenario runs");
    expect_held_at_ready(&outcome, port);
    assert_eq!(outcome.survivors_after(DEADLINE).len(), 2);
    assert!(!outcome.port_verdict(port, Duration::from_millis(100)).free);
    (outcome, port)
}

/// What the two snapshots show, written into each.
const SCENARIO: &str = "shell-fork-tree killed by SIGTERM to the shell: both listeners survive, \
                        one holding the watched port";

#[test]
fn text_report_snapshot() {
    let (outcome, port) = shell_fork_tree_under_sigterm();
    let mut settings = Masks::of(&outcome, port).settings();
    settings.set_description(SCENARIO);
    // Column padding depends on how many digits the pids had: runs of spaces become
    // one, so an indented line keeps one leading space.
    settings.add_filter(r"(?m) +$", "");
    settings.add_filter(r" {2,}", " ");
    settings.bind(|| {
        insta::assert_snapshot!("shell_fork_tree_sigterm_text", outcome.report().to_string());
    });
}

#[test]
fn json_report_snapshot_follows_the_schema() {
    let (outcome, port) = shell_fork_tree_under_sigterm();
    let report = outcome.report();
    let mut value: Value =
        serde_json::from_str(&report.to_json()).expect("the report is valid JSON");
    assert_eq!(value["schema"], "orphan-check/report");
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["verdict"], "leak");
    assert_eq!(value["survivors"].as_array().unwrap().len(), 2);
    assert_eq!(value["ports"][0]["free"], false);
    mask_numbers(&mut value);
    let mut settings = Masks::of(&outcome, port).settings();
    settings.set_description(SCENARIO);
    settings.bind(|| {
        insta::assert_snapshot!(
            "shell_fork_tree_sigterm_json",
            serde_json::to_string_pretty(&value).unwrap()
        );
    });
}

/// Replaces, by key, the numbers no filter can tell from others: times in ms (bare
/// numbers, no unit), start times, and what depends on the user and the runtime (uid,
/// signal masks). Pids and ports are left to the filters, which name them.
fn mask_numbers(v: &mut Value) {
    const KEYS: &[&str] = &[
        "at_ms",
        "ready_ms",
        "killed_ms",
        "first_seen_ms",
        "quiet_after_kill_ms",
        "checked_after_kill_ms",
        "first_held_ms",
        "deadline_ms",
        "start_ticks",
        "uid",
        "sig_ignored",
        "sig_caught",
    ];
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if KEYS.contains(&k.as_str()) && child.is_number() {
                    *child = Value::String("<n>".into());
                } else {
                    mask_numbers(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_numbers),
        _ => {}
    }
}
