//! `orphan-check wrap`, and the endings that are not kills on the `run` command line.
//!
//! Expected, from the kernel's rules: a process CMD started and did not wait for lives on
//! after CMD exits (reparented), so the wrapper fails; one CMD reaped is gone, so the
//! wrapper ends as CMD did. A signal the wrapper forwards reaches CMD's pid; CMD dying of
//! it is passed on as the same signal. Every process started here carries
//! `ORPHAN_CHECK_RUN=<tag>…`; each test checks that nothing with its tag is left.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use orphan_check::{Fixture, RUN_ENV};

use crate::common::{pids_where_env, tag};

/// `orphan-check ARGS…` with a fresh run tag; returns the command and the tag.
fn oc(args: &[&str]) -> (Command, String) {
    let tag = format!("wrap-{}-t", tag());
    let mut c = Command::new(cargo_bin("orphan-check"));
    c.args(args).env(RUN_ENV, &tag).env("NO_COLOR", "1");
    (c, tag)
}

/// Nothing carrying `tag` in its `ORPHAN_CHECK_RUN` is alive.
fn assert_nothing_left(tag: &str) {
    let prefix = format!("{RUN_ENV}={tag}");
    let left = pids_where_env(|kv| kv.starts_with(prefix.as_bytes()));
    assert!(left.is_empty(), "left running: {left:?}");
}

fn listener() -> String {
    Fixture::Listener.path().display().to_string()
}

#[test]
fn wrap_passes_stdin_stdout_stderr_and_the_exit_code_through() {
    let (mut c, tag) = oc(&[
        "wrap",
        "--",
        "sh",
        "-c",
        "read x; echo \"got $x\"; echo oops >&2; exit 7",
    ]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_nothing_left(&tag);
}

#[test]
fn wrap_gives_cmd_the_callers_own_descriptors() {
    // Inherited, not copied through pipes: CMD's stdout is the very file the caller gave.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let (mut c, tag) = oc(&[
        "wrap",
        "--",
        "sh",
        "-c",
        "test -f /proc/self/fd/1 && readlink /proc/self/fd/1",
    ]);
    let status = c.stdout(file).status().unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim(), path.display().to_string());
    assert_nothing_left(&tag);
}

#[test]
fn wrap_fails_a_clean_exit_that_leaves_a_process_behind() {
    let (mut c, tag) = oc(&[
        "wrap",
        "--deadline",
        "300ms",
        "--",
        "sh",
        "-c",
        &format!("{} --port 0 >/dev/null 2>&1 &", listener()),
    ]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("orphan-check: LEAK"), "{stderr}");
    assert!(stderr.contains("SURVIVED") && stderr.contains("listener --port 0"));
    assert_nothing_left(&tag);
}

#[test]
fn wrap_keeps_cmds_own_failure_when_it_also_leaks() {
    let (mut c, tag) = oc(&[
        "wrap",
        "--deadline",
        "300ms",
        "--",
        "sh",
        "-c",
        &format!("{} --port 0 >/dev/null 2>&1 & exit 5", listener()),
    ]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("orphan-check: LEAK"));
    assert_nothing_left(&tag);
}

#[test]
fn wrap_of_a_clean_command_is_silent_and_exits_0() {
    let (mut c, tag) = oc(&[
        "wrap",
        "--",
        "sh",
        "-c",
        &format!("{} --port 0 >/dev/null & kill $!; wait", listener()),
    ]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&tag);
}

#[test]
fn wrap_dies_of_the_signal_cmd_died_of() {
    // SIGUSR1's default action ends the process without a core dump.
    let (mut c, tag) = oc(&["wrap", "--", "sh", "-c", "kill -USR1 $$"]);
    let status = c.status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGUSR1), "{status:?}");
    assert_nothing_left(&tag);
}

#[test]
fn wrap_forwards_sigterm_to_cmd() {
    // The listener dies of SIGTERM; the wrapper, which caught it, forwards it and then
    // ends as the listener did. Without forwarding, the wrapper would die alone and the
    // listener would be killed by the sentinel's cleanup instead (SIGKILL).
    // The exit timeout bounds a broken forwarder: the listener would then run on.
    let (mut c, tag) = oc(&[
        "wrap",
        "--exit-timeout",
        "20s",
        "--",
        &listener(),
        "--port",
        "0",
    ]);
    let mut child = c.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_nothing_left(&tag);
}

#[test]
fn wrap_forwards_sigterm_to_cmds_group_so_its_children_get_it_too() {
    // A runner's group kill would have reached the shell's background listener too: the
    // forwarded SIGTERM goes to CMD's group, so nothing is left (sent to CMD's pid only,
    // the listener would survive and the wrapper report a leak).
    let (mut c, tag) = oc(&[
        "wrap",
        "--exit-timeout",
        "20s",
        "--",
        "sh",
        "-c",
        &format!("{} --port 0 & wait", listener()),
    ]);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{stderr}");
    assert!(!stderr.contains("LEAK"), "{stderr}");
    assert_nothing_left(&tag);
}

#[test]
fn run_judges_setsid_http_server_as_a_leak_naming_the_server() {
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let mut last = String::new();
    for _ in 0..5 {
        let p = orphan_check::free_port().to_string();
        let ready = format!("port:{p}");
        let (mut c, tag) = oc(&[
            "run",
            "--ready",
            &ready,
            "--ready-timeout",
            "20s",
            "--deadline",
            "300ms",
            "--",
            "setsid",
            "python3",
            "-m",
            "http.server",
            &p,
        ]);
        let out = c.output().unwrap();
        assert_nothing_left(&tag);
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if last.contains("already in use") {
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{last}");
        assert!(last.contains("http.server"), "{last}");
        assert!(
            last.contains("daemonized by a launcher that exited at once (exit status 0)"),
            "{last}"
        );
        return;
    }
    panic!("no free port: {last}");
}

#[test]
fn run_own_exit_that_does_not_finish_exits_1_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (mut c, tag) = oc(&[
        "run",
        "--kill",
        "own-exit",
        "--exit-timeout",
        "300ms",
        "--json",
        json.to_str().unwrap(),
        "--",
        "sleep",
        "30",
    ]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DID NOT FINISH"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "did_not_finish");
    assert_eq!(report["plan"]["name"], "own-exit");
    assert_nothing_left(&tag);
}

#[test]
fn run_kill_none_is_own_exit_and_a_clean_exit_is_0() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (mut c, tag) = oc(&[
        "run",
        "--kill",
        "none",
        "--json",
        json.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["plan"]["name"], "own-exit");
    assert_eq!(report["agent_exit"]["code"], 4);
    assert_eq!(report["agent_exit"]["before_ready"], false);
    assert_eq!(report["stdin"], "null");
    assert_nothing_left(&tag);
}

#[test]
fn run_close_stdin_with_stdin_null_is_refused() {
    let (mut c, tag) = oc(&[
        "run",
        "--kill",
        "close-stdin",
        "--stdin",
        "null",
        "--",
        "cat",
    ]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("orphan-check: error:"), "{stderr}");
    assert_nothing_left(&tag);
}

#[test]
fn run_close_stdin_ends_cat_clean() {
    // `cat` exits on end of file: closing its stdin pipe is the whole ending.
    let (mut c, tag) = oc(&["run", "--kill", "close-stdin", "--", "cat"]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stdin    closed at"), "{stderr}");
    assert_nothing_left(&tag);
}

#[test]
fn wrap_exit_timeout_kills_a_command_that_runs_too_long() {
    let (mut c, tag) = oc(&["wrap", "--exit-timeout", "300ms", "--", "sleep", "30"]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DID NOT FINISH"));
    assert_nothing_left(&tag);
}
