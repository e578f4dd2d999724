//! `orphan-check wrap` as a nextest wrapper script, on a real crate's suite.
//!
//! `tests/data/nextest-leaks` has three tests: one leaves a child with null stdio, one a
//! daemon (setsid, double fork), one kills and reaps its child. nextest's own leak
//! detection sees neither leak (it watches only the test's stdout and stderr, which these
//! children do not hold); under the wrapper each leaking test's process leaves a
//! survivor when it exits, so that test fails with the report naming it, and the clean
//! one passes. The crate has no dependencies and builds offline; the test is skipped
//! where cargo-nextest is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin;
use orphan_check::RUN_ENV;

use crate::common::{pids_where_env, tag};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn nextest_under_the_wrapper_names_both_leaking_tests() {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let has_nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nextest {
        eprintln!("skipped: cargo-nextest is not installed");
        return;
    }
    // A copy, so that the build writes nothing into the source tree.
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("nextest-leaks");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nextest-leaks"),
        &krate,
    );
    let bin_dir = cargo_bin("orphan-check").parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let run = format!("nextest-{}-t", tag());
    let mut inner = Command::new(&cargo);
    // Run under nextest itself, this test inherits its settings (`NEXTEST_PROFILE=ci`
    // among them); the small crate's run must use its own configuration.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEXTEST") {
            inner.env_remove(key);
        }
    }
    let out = inner
        .args([
            "nextest",
            "run",
            "--no-fail-fast",
            "--offline",
            "--color",
            "never",
        ])
        .arg("--target-dir")
        .arg(dir.path().join("target"))
        .current_dir(&krate)
        .env("PATH", path)
        .env(RUN_ENV, &run)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("{RUN_ENV}={run}");
    let left = pids_where_env(|kv| kv.starts_with(prefix.as_bytes()));
    assert!(left.is_empty(), "left running: {left:?}\n{text}");

    assert!(!out.status.success(), "{text}");
    assert!(text.contains("1 passed, 2 failed"), "{text}");
    let line_with = |status: &str, test: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(status) && l.ends_with(test))
    };
    assert!(line_with("PASS", "tests::cleans_up_its_child"), "{text}");
    // Each report names its test (the command line nextest ran) and the survivor.
    let mut named: Vec<&str> = text
        .split("orphan-check: LEAK")
        .skip(1)
        .filter(|report| report.contains("SURVIVED") && report.contains("sleep 300"))
        .filter_map(|report| {
            let command = report
                .lines()
                .find(|l| l.trim_start().starts_with("command"))?;
            command.split("--exact ").nth(1)?.split_whitespace().next()
        })
        .collect();
    named.sort_unstable();
    assert_eq!(
        named,
        [
            "tests::leaks_a_child_with_null_stdio",
            "tests::leaks_a_daemon"
        ],
        "{text}"
    );
    for test in [
        "tests::leaks_a_child_with_null_stdio",
        "tests::leaks_a_daemon",
    ] {
        assert!(line_with("FAIL", test), "{text}");
    }
}
