//! The command line, driven as a user would.
//!
//! Every `orphan-check` started here carries `ORPHAN_CHECK_RUN=<tag>`, so every agent it
//! launches carries `<tag>.oc-…`; a [`Leftovers`] guard per test sweeps that prefix when
//! the test ends (pass or fail) and fails the test if anything was left.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use orphan_check::RUN_ENV;
use serde_json::Value;

use crate::common::{tag, Watched};

fn bin() -> PathBuf {
    cargo_bin("orphan-check")
}

/// Processes whose `ORPHAN_CHECK_RUN` starts with a test's tag; swept on drop.
struct Leftovers {
    tag: String,
}

impl Leftovers {
    fn new() -> Leftovers {
        // The trailing letter keeps tags prefix-free: `cli-7-1-t` is no prefix of
        // `cli-7-12-t`.
        Leftovers {
            tag: format!("cli-{}-t", tag()),
        }
    }

    /// `orphan-check ARGS…` with this test's marker.
    fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin());
        c.env(RUN_ENV, &self.tag).env_remove("NO_COLOR");
        c
    }

    fn alive(&self) -> Vec<i32> {
        marked_with_prefix(&self.tag)
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let left = self.alive();
        if left.is_empty() {
            return;
        }
        let _ = Command::new(bin())
            .args(["sweep", "--kill", "--run", &self.tag])
            .env_remove(RUN_ENV)
            .stdout(Stdio::null())
            .status();
        if !std::thread::panicking() {
            panic!("processes left behind by {}: {left:?}", self.tag);
        }
    }
}

/// Pids whose environment carries `ORPHAN_CHECK_RUN=<prefix…>`.
fn marked_with_prefix(prefix: &str) -> Vec<i32> {
    let wanted = format!("{RUN_ENV}={prefix}");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env
                .split(|b| *b == 0)
                .any(|kv| kv.starts_with(wanted.as_bytes()))
            {
                out.push(pid);
            }
        }
    }
    out
}

/// A process this test started; killed (by its pid, which cannot be reused while it is
/// an unreaped child) and reaped on drop.
struct Spawned(Child);

impl Spawned {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `build(port)` for a port from `orphan_check::free_port` (reserved by this test
/// process, so no other test gets it while the command runs).
fn on_free_port(build: impl Fn(u16) -> assert_cmd::Command) -> (std::process::Output, u16) {
    let p = orphan_check::free_port();
    (build(p).output().expect("orphan-check runs"), p)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON file was written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Checks one report against schema version 1.
#[track_caller]
fn check_report_schema(r: &Value) {
    assert_eq!(r["schema"], "orphan-check/report");
    assert_eq!(r["schema_version"], 1);
    assert!(matches!(r["verdict"].as_str(), Some("clean" | "leak")));
    for key in ["command", "run_id", "ready"] {
        assert!(r[key].is_string(), "{key}");
    }
    for key in ["name", "does", "simulates"] {
        assert!(r["plan"][key].is_string(), "plan.{key}");
    }
    assert!(r["agent_pid"].as_i64().is_some_and(|p| p > 0));
    assert!(r["ready_ms"].is_number() && r["killed_ms"].is_number());
    for key in [
        "oracles",
        "survivors",
        "ports",
        "files",
        "signals",
        "timeline",
    ] {
        assert!(r[key].is_array(), "{key}");
    }
    for s in r["survivors"].as_array().unwrap() {
        assert!(s["pid"].as_i64().is_some_and(|p| p > 0));
        for key in ["ppid", "pgid", "sid", "start_ticks", "uid"] {
            assert!(s[key].is_number(), "survivors[].{key}");
        }
        assert!(s["comm"].is_string() && s["cmdline"].is_array());
        assert!(s["escapes"].is_array() && s["hints"].is_array());
    }
    for p in r["ports"].as_array().unwrap() {
        assert!(p["port"].is_number() && p["free"].is_boolean());
    }
    for key in ["stdout", "stderr"] {
        assert!(r[key]["head"].is_array() && r[key]["tail"].is_array());
    }
}

/// A small JUnit check: well-formed tags (every opened element closed in order, quoted
/// attributes, known entities only), and the counts. Returns the testsuite's `tests`
/// and the number of `<failure` elements.
fn check_junit(xml: &str) -> (usize, usize) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut tests = None;
    let mut failures = 0;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = rest[open..].find('>').expect("tag closed") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric()),
            "element name {name:?}"
        );
        let attrs = parse_attrs(attrs);
        if name == "testsuite" {
            tests = attrs
                .iter()
                .find(|(k, _)| k == "tests")
                .and_then(|(_, v)| v.parse().ok());
        }
        if name == "failure" {
            failures += 1;
            assert!(attrs.iter().any(|(k, _)| k == "message"));
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    (tests.expect("testsuite tests="), failures)
}

fn parse_attrs(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return out;
        }
        let (key, after) = s.split_once("=\"").expect("attribute key=\"value\"");
        let end = after.find('"').expect("attribute value closed");
        let value = &after[..end];
        check_text(value);
        out.push((key.to_string(), value.to_string()));
        s = &after[end + 1..];
    }
}

fn check_text(text: &str) {
    assert!(!text.contains('<'), "raw < in {text:?}");
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let entity = &rest[i..rest[i..].find(';').expect("entity ends with ;") + i + 1];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
            "entity {entity}"
        );
        rest = &rest[i + 1..];
    }
    assert!(
        !text
            .chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')),
        "control character in XML text"
    );
}

fn fixture_args(name: &str) -> Vec<String> {
    vec![
        bin().display().to_string(),
        "fixture".into(),
        name.to_string(),
    ]
}

// ---------------------------------------------------------------- options and help

#[test]
fn help_documents_the_exit_codes() {
    let l = Leftovers::new();
    for args in [vec!["--help"], vec!["run", "--help"]] {
        let out = l.cmd().args(&args).output().unwrap();
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(text.contains("Exit codes:"), "{text}");
        assert!(text.contains("0  clean") && text.contains("1  leak"));
        assert!(text.contains("2  the harness could not do its job"));
    }
}

#[test]
fn option_errors_exit_2_with_one_line_reasons() {
    let l = Leftovers::new();
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "--kill", "sigstop", "--", "true"],
            "unknown kill plan",
        ),
        (
            &["run", "--deadline", "5parsecs", "--", "true"],
            "unknown unit",
        ),
        (
            &["run", "--deadline", "0s", "--", "true"],
            "greater than zero",
        ),
        (
            &["run", "--ready", "socket:1", "--", "true"],
            "unknown readiness",
        ),
        (&["run", "--kill", "sigterm"], "required arguments"),
        (
            &["run", "--kill-at", "random:2s..1s", "--", "true"],
            "ends before",
        ),
        (&["fixture", "no-such-fixture"], "unknown fixture"),
    ];
    for (args, why) in cases {
        let out = l.cmd().args(args).output().unwrap();
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            err.starts_with("orphan-check: error: ") && err.contains(why),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn fixture_list_names_fixtures_and_example_agents() {
    let l = Leftovers::new();
    let out = l.cmd().args(["fixture", "--list"]).output().unwrap();
    assert_exit(&out, 0);
    let text = stdout(&out);
    for f in orphan_check::Fixture::ALL {
        assert!(text.contains(f.name()) && text.contains(f.summary()));
    }
    for a in orphan_check::fixture::ExampleAgent::ALL {
        assert!(text.contains(&a.path().display().to_string()));
    }
}

// ---------------------------------------------------------------- exit codes

#[test]
fn a_clean_run_exits_0_and_writes_a_clean_report() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let (out, p) = on_free_port(|p| {
        let mut c = l.cmd();
        c.args(["run", "--kill", "sigterm", "--ready", &format!("port:{p}")])
            .args(["--cgroup", "off", "--port", &p.to_string()])
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .arg("--")
            .args(fixture_args("listener"))
            .args(["--port", &p.to_string()]);
        c
    });
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("orphan-check: CLEAN"), "{err}");
    assert!(!err.contains('\x1b'), "colour without a terminal");
    let report = read_json(&json);
    check_report_schema(&report);
    assert_eq!(report["verdict"], "clean");
    assert_eq!(report["plan"]["name"], "sigterm");
    assert_eq!(report["ports"][0]["port"], p);
    assert_eq!(report["ports"][0]["free"], true);
    let (tests, failures) = check_junit(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!((tests, failures), (1, 0));
}

#[test]
fn a_leak_exits_1_with_survivors_in_json_and_junit() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let (out, p) = on_free_port(|p| {
        let mut c = l.cmd();
        c.args(["run", "--kill", "sigterm", "--ready", "line:ready"])
            .args(["--deadline", "300ms", "--port", &p.to_string()])
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .arg("--")
            .args(fixture_args("shell-fork-tree"))
            .args(["--port", &p.to_string()]);
        c
    });
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("orphan-check: LEAK") && err.contains("SURVIVED"));
    assert!(!err.contains('\x1b'), "colour without a terminal");
    let report = read_json(&json);
    check_report_schema(&report);
    assert_eq!(report["verdict"], "leak");
    assert_eq!(
        report["ports_at_ready"][0]["held_by_tree"], true,
        "the fixture never held its port {p}: {report:#}"
    );
    let survivors = report["survivors"].as_array().unwrap();
    assert_eq!(survivors.len(), 2, "{report:#}");
    assert!(survivors.iter().all(|s| s["comm"] == "listener"));
    assert!(report["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["port"] == p && x["free"] == false));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(check_junit(&xml), (1, 1));
    assert!(xml.contains("2 survived: pid "), "{xml}");
}

#[test]
fn html_writes_the_picture_of_the_run() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("run.html");
    let (out, p) = on_free_port(|p| {
        let mut c = l.cmd();
        c.args(["run", "--kill", "sigterm", "--ready", "line:ready"])
            .args(["--deadline", "300ms", "--port", &p.to_string()])
            .arg("--html")
            .arg(&html)
            .arg("--")
            .args(fixture_args("shell-fork-tree"))
            .args(["--port", &p.to_string()]);
        c
    });
    assert_exit(&out, 1);
    let page = std::fs::read_to_string(&html).expect("the page was written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"data-verdict="leak""#));
    assert_eq!(page.matches("<div class=\"row proc surv\"").count(), 2);
    assert!(page.contains(&format!("<div class=\"row port held\" data-port=\"{p}\"")));
    // A run that cannot start writes no page.
    let missing = dir.path().join("never.html");
    let out = l
        .cmd()
        .args(["run", "--html"])
        .arg(&missing)
        .args(["--", "/nonexistent/agent"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(!missing.exists());
}

#[test]
fn html_with_repeat_draws_the_first_repetition_that_leaked() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("runs.html"), dir.path().join("runs.json"));
    let out = l
        .cmd()
        .args(["run", "--kill", "sigterm", "--ready", "line:ready"])
        .args(["--deadline", "200ms", "--repeat", "2", "--html"])
        .arg(&html)
        .arg("--json")
        .arg(&json)
        .arg("--")
        .args(fixture_args("shell-fork-tree"))
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let reports = read_json(&json);
    let page = std::fs::read_to_string(&html).expect("the page was written");
    let first = reports[0]["run_id"].as_str().unwrap();
    let second = reports[1]["run_id"].as_str().unwrap();
    assert!(page.contains(first) && !page.contains(second));
}

#[test]
fn writes_after_the_kill_are_a_leak() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let watched = dir.path().join("out");
    std::fs::create_dir(&watched).unwrap();
    // The driver agent starts the watcher in a new session: SIGKILL to the agent
    // leaves it writing.
    let out = l
        .cmd()
        .args(["run", "--kill", "sigkill", "--ready", "line:ready"])
        .args(["--deadline", "300ms", "--watch-dir"])
        .arg(&watched)
        .arg("--json")
        .arg(&json)
        .arg("--")
        .args(fixture_args("agent"))
        .args(["--child", "file-watcher", "--how", "session", "--", "--dir"])
        .arg(&watched)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let report = read_json(&json);
    assert!(
        !report["files"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}

#[test]
fn a_missing_executable_exits_2() {
    let l = Leftovers::new();
    let out = l
        .cmd()
        .args(["run", "--", "/nonexistent/orphan-check-agent"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with("orphan-check: error: executable not found"),
        "{err}"
    );
}

#[test]
fn an_agent_never_ready_exits_2() {
    let l = Leftovers::new();
    let out = l
        .cmd()
        .args([
            "run",
            "--ready",
            "line:never",
            "--ready-timeout",
            "300ms",
            "--",
        ])
        .args(fixture_args("listener"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with("orphan-check: error: the agent was not ready after 300ms"),
        "{err}"
    );
}

#[test]
fn a_port_busy_before_the_start_exits_2() {
    let l = Leftovers::new();
    let held = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let p = held.local_addr().unwrap().port();
    let out = l
        .cmd()
        .args(["run", "--port", &p.to_string(), "--"])
        .args(fixture_args("listener"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "orphan-check: error: port {p} is already in use before the start"
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------- repetitions

/// The `#N kill after T` lines of the summary.
fn kill_times(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| l.trim_start().starts_with('#') && l.contains("kill after"))
        .map(|l| {
            let t = l.split("kill after").nth(1).unwrap().split_whitespace();
            t.take(1).collect()
        })
        .collect()
}

#[test]
fn repetitions_with_a_seed_reproduce_the_kill_times() {
    let l = Leftovers::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |n: usize| {
        let json = dir.path().join(format!("r{n}.json"));
        let junit = dir.path().join(format!("r{n}.xml"));
        let out = l
            .cmd()
            .args(["run", "--kill", "sigterm", "--ready", "line:ready"])
            .args([
                "--repeat",
                "3",
                "--kill-at",
                "random:0ms..80ms",
                "--seed",
                "1234",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .arg("--")
            .args(fixture_args("listener"))
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let err = stderr(&out);
        assert!(!err.contains('\x1b'), "no progress bar without a terminal");
        let reports = read_json(&json);
        let reports = reports.as_array().expect("an array of reports");
        assert_eq!(reports.len(), 3);
        reports.iter().for_each(check_report_schema);
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert_eq!(check_junit(&xml), (3, 0));
        (kill_times(&err), err)
    };
    let (first, err) = run(1);
    let (second, _) = run(2);
    assert_eq!(first.len(), 3, "{err}");
    assert_eq!(first, second);
    assert!(
        err.contains("0 of 3 repetitions leaked (--seed 1234)"),
        "{err}"
    );
}

// ---------------------------------------------------------------- sweep

/// `sleep 1000` with (or without) the marker, started by this test.
fn sleeper(marker: Option<&str>) -> Spawned {
    let mut c = Command::new("sleep");
    c.arg("1000").env_remove(RUN_ENV).stdin(Stdio::null());
    if let Some(m) = marker {
        c.env(RUN_ENV, m);
    }
    Spawned(c.spawn().expect("sleep starts"))
}

#[test]
fn sweep_kills_only_marked_processes() {
    let prefix = format!("cli-sweep-{}-t", tag());
    let mut marked = sleeper(Some(&format!("{prefix}.oc-1")));
    let decoy = sleeper(None);
    let watched = Watched::new([marked.pid()]);
    assert_eq!(watched.len(), 1);

    // Listing only: reported, exit 1, nothing signalled.
    let out = Command::new(bin())
        .args(["sweep", "--run", &prefix])
        .env_remove(RUN_ENV)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(stdout(&out).contains(&marked.pid().to_string()));
    assert!(!stdout(&out).contains(&format!(" {} ", decoy.pid())));
    assert_eq!(marked.0.try_wait().unwrap(), None, "listing killed it");

    let out = Command::new(bin())
        .args(["sweep", "--run", &prefix, "--kill"])
        .env_remove(RUN_ENV)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("killed"), "{}", stdout(&out));
    assert!(
        watched.wait_all_gone(Duration::from_secs(5)).is_empty(),
        "the marked process survived the sweep"
    );
    let status = marked.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let mut decoy = decoy;
    assert_eq!(decoy.0.try_wait().unwrap(), None, "the decoy was signalled");
    drop(decoy);
}

#[test]
fn sweep_never_signals_itself_or_its_parent() {
    // The sweep runs with the marker itself, under a marked shell: both are its own
    // line of ancestry and must be spared.
    let prefix = format!("cli-self-{}-t", tag());
    let out = Command::new("sh")
        .args(["-c", "\"$0\" sweep --run \"$1\" --kill; echo shell-alive"])
        .arg(bin())
        .arg(&prefix)
        .env(RUN_ENV, format!("{prefix}.me"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("shell-alive"), "{}", stdout(&out));
}

// ---------------------------------------------------------------- matrix

#[test]
fn matrix_prints_a_deterministic_table_and_skips_missing_wrappers() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("matrix.json");
    let out = Command::new(bin())
        .args([
            "matrix",
            "--fixture",
            "listener",
            "--fixture",
            "shell-fork-tree",
        ])
        .args(["--plan", "sigterm", "--plan", "kill-group"])
        .args([
            "--wrapper",
            "",
            "--wrapper",
            "no-such-wrapper-for-orphan-check --",
        ])
        .arg("--json")
        .arg(&json)
        .env_remove(RUN_ENV)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let md = stdout(&out);
    assert!(
        md.starts_with("<!-- generated by `orphan-check matrix` on "),
        "{md}"
    );
    assert!(md.contains("| fixture | sigterm | kill-group |"), "{md}");
    assert!(md.contains("| `listener` | clean | clean |"), "{md}");
    assert!(
        md.contains("| `shell-fork-tree` | 2 left | clean |"),
        "{md}"
    );
    assert!(md.contains("### `no-such-wrapper-for-orphan-check --`: skipped (not installed)"));
    let doc = read_json(&json);
    assert_eq!(doc["schema"], "orphan-check/matrix");
    assert_eq!(doc["wrappers"][0]["cells"].as_array().unwrap().len(), 4);
    assert_eq!(doc["wrappers"][1]["installed"], false);
}

// ---------------------------------------------------------------- other ecosystems

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs an example with `ORPHAN_CHECK_BIN` set and the test's marker; prints its output
/// on failure.
fn run_example(l: &Leftovers, program: &str, args: &[&str]) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .env("ORPHAN_CHECK_BIN", bin())
        .env(RUN_ENV, &l.tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("example starts");
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{program} {args:?}:\n{}",
        lines.join("\n")
    );
}

#[test]
fn pytest_example_gates_python_agents() {
    if !works("python3", &["-m", "pytest", "--version"]) {
        eprintln!("skipped: `python3 -m pytest --version` failed (pip install pytest)");
        return;
    }
    let l = Leftovers::new();
    run_example(
        &l,
        "python3",
        &[
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "examples/pytest",
        ],
    );
}

#[test]
fn node_example_finds_the_leak() {
    if !works("node", &["--version"]) {
        eprintln!("skipped: node is not installed");
        return;
    }
    let l = Leftovers::new();
    run_example(&l, "node", &["examples/node/check.mjs"]);
}
