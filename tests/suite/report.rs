//! Snapshot tests of the report, text and JSON, with pids, times, ports and paths masked.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test suite report::` rewrites the snapshots; review
//! the diff before committing it.

use std::path::PathBuf;
use std::time::Duration;

use orphan_check::{fixture_dir, CgroupMode, Fixture, KillPlan, Ready, Report, Scenario};
use serde_json::Value;

use crate::common::{expect_held_at_ready, DEADLINE};

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

fn check_snapshot(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it)"
    );
}

/// Masks what changes from run to run: pids, times, the port, the run id, paths.
fn mask(report: &Report, text: &str, port: u16) -> String {
    let mut pids: Vec<i32> = report.timeline.iter().map(|t| t.pid).collect();
    for s in &report.survivors {
        pids.extend([s.process.pid, s.process.ppid, s.process.pgid, s.process.sid]);
    }
    pids.extend(report.signals.iter().map(|s| s.to.abs()));
    pids.extend(report.timeline.iter().filter_map(|t| t.sid));
    let text = text
        .replace(&fixture_dir().display().to_string(), "<FIXTURES>")
        .replace(&report.run_id, "<RUN>");
    // The port as a whole number only: its digits may also be part of a pid or a time.
    let text = replace_number(&text, port, "<PORT>");
    orphan_check::redact(&text, &pids)
}

/// Replaces every occurrence of `number` that is not part of a longer word.
fn replace_number(text: &str, number: u16, with: &str) -> String {
    let wanted = number.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(&wanted) {
        let prev = rest[..at].chars().next_back().or(before);
        let next = rest[at + wanted.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        if word(prev) || word(next) {
            out.push_str(&wanted);
        } else {
            out.push_str(with);
        }
        before = wanted.chars().next_back();
        rest = &rest[at + wanted.len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_port_mask_leaves_longer_numbers_alone() {
    assert_eq!(
        replace_number("port 4567, pid 145678, :4567\n", 4567, "<PORT>"),
        "port <PORT>, pid 145678, :<PORT>\n"
    );
}

fn shell_fork_tree_under_sigterm() -> (orphan_check::Outcome, u16) {
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

#[test]
fn text_report_snapshot() {
    let (outcome, port) = shell_fork_tree_under_sigterm();
    let report = outcome.report();
    let text = mask(&report, &report.to_string(), port);
    // Column padding depends on how many digits the pids had: fold runs of spaces.
    let folded: String = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    check_snapshot("shell_fork_tree_sigterm.txt", &(folded + "\n"));
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
    // Numbers by key first (so the text masking below only ever touches strings).
    mask_numbers(&mut value);
    let json = mask(
        &report,
        &serde_json::to_string_pretty(&value).unwrap(),
        port,
    );
    check_snapshot("shell_fork_tree_sigterm.json", &(json + "\n"));
}

/// Replaces run-dependent numbers (ids, times, masks) by key.
fn mask_numbers(v: &mut Value) {
    const KEYS: &[&str] = &[
        "pid",
        "ppid",
        "pgid",
        "sid",
        "agent_pid",
        "start_ticks",
        "to",
        "original_parent",
        "uid",
        "at_ms",
        "ready_ms",
        "killed_ms",
        "first_seen_ms",
        "quiet_after_kill_ms",
        "checked_after_kill_ms",
        "first_held_ms",
        "deadline_ms",
        "port",
        "sig_ignored",
        "sig_caught",
    ];
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if KEYS.contains(&k.as_str()) && child.is_number() {
                    *child = Value::String("<n>".into());
                } else if k == "ports" && child.is_array() {
                    for p in child.as_array_mut().unwrap() {
                        if p.is_number() {
                            *p = Value::String("<n>".into());
                        } else {
                            mask_numbers(p);
                        }
                    }
                } else {
                    mask_numbers(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_numbers),
        _ => {}
    }
}
