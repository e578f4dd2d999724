//! Endings that are not plain signals to the agent: a dying parent, a container stop, and
//! a touch after the kill that provokes a watcher. One named test per cell; each cell's
//! verdict follows from how the kernel behaves:
//!
//! - **parent death** (`KillPlan::parent_death`): the agent is started by a launcher and
//!   the plan SIGKILLs the launcher only. The kernel sends `PR_SET_PDEATHSIG`'s signal
//!   to a child when its parent dies, and reparents every orphan to the nearest
//!   subreaper (the sentinel), so a poll of `getppid()` sees the change. `listener`
//!   does neither and survives; `parent-poller` polls and exits; `pdeathsig-child
//!   --self` is SIGKILLed by the kernel and its own pdeathsig child follows it; plain
//!   `pdeathsig-child` covers only its child: one generation deep, so the agent lives
//!   and keeps its child alive (two survivors).
//! - **container** (`Scenario::container`, `KillPlan::container_stop`): the agent (or
//!   init) is PID 1 of a new PID namespace. The kernel delivers to a namespace's init
//!   only the signals it has a handler for (SIGKILL from an ancestor namespace is
//!   forced), and when init dies it SIGKILLs every other process of the namespace.
//!   Fixtures have default dispositions: as PID 1, `listener` and `agent` ignore
//!   SIGTERM, so the stop takes the whole grace (cause 6) and `agent`'s child dies by
//!   the namespace's SIGKILL. `agent --on-term forward` has a handler, forwards SIGTERM
//!   to its child, waits, exits 0: graceful. `tini --` forwards SIGTERM to its child
//!   only (the agent dies of it; the agent's child is left to the namespace's SIGKILL);
//!   `tini -g --` and `dumb-init` (which runs its child in a new session and signals
//!   that whole group) reach every process: graceful. `docker kill` (SIGKILL to PID 1)
//!   is the namespace's SIGKILL for everything else, and is not a failed stop.
//! - **touch**: `file-watcher --source F` rebuilds only when F's size or modification
//!   time changes. Started in its own session, it survives a kill of the agent's group;
//!   it writes after the kill only when the harness touches F. In the agent's group it
//!   dies with the group, and the touch finds no one to rebuild.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use orphan_check::signal::{Recipient, Signal};
use orphan_check::{Error, Escape, Fixture, KillPlan, Ready, Scenario};
use rstest::rstest;

use crate::common::{run_with_port, survivor_names, DEADLINE};

// ------------------------------------------------------------------ parent death

#[rstest]
#[case::listener_survives(Fixture::Listener, &[], &["listener"])]
#[case::parent_poller_follows(Fixture::ParentPoller, &[], &[])]
#[case::pdeathsig_self_follows(Fixture::PdeathsigChild, &["--self"], &[])]
#[case::pdeathsig_child_covers_one_generation(Fixture::PdeathsigChild, &[], &["pdeathsig-child", "pdeathsig-child"])]
fn parent_death(#[case] fixture: Fixture, #[case] args: &[&str], #[case] expected: &[&str]) {
    let (outcome, port) = run_with_port(|port| {
        let mut c = fixture.command();
        c.args(["--port", &port.to_string()]).args(args);
        Scenario::new(c)
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::parent_death())
            .watch_port(port)
    });
    let launcher = outcome.launcher_pid().expect("a launcher");
    assert_ne!(
        launcher,
        outcome.agent_pid(),
        "launcher and agent are distinct"
    );
    let sent = &outcome.plan_record().sent;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].signal, sent[0].target, sent[0].to),
        (Signal::Kill, Recipient::Launcher, launcher)
    );
    assert_eq!(survivor_names(&outcome), expected, "{}", outcome.report());
    assert_eq!(
        outcome.port_verdict(port, DEADLINE).free,
        expected.is_empty()
    );
    let report = outcome.report();
    assert_eq!(report.is_leak(), !expected.is_empty(), "{report}");
    let wrapper = report.wrapper.as_ref().expect("the launcher is reported");
    assert_eq!((wrapper.role, wrapper.pid), ("launcher", launcher));
    if let Some(agent) = report
        .survivors
        .iter()
        .find(|s| s.pid() == outcome.agent_pid())
    {
        assert_eq!(
            agent.escapes[0],
            Escape::ParentDied { parent: launcher },
            "{report}"
        );
    }
    assert!(report
        .to_string()
        .contains(&format!("launcher pid {launcher}")));
}

#[test]
fn parent_death_cannot_run_in_a_container() {
    let err = Scenario::new(Fixture::Listener.command())
        .container()
        .kill(KillPlan::parent_death())
        .run()
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidCommand(_)), "{err}");
}

// --------------------------------------------------------------------- container

/// Why container mode cannot run here, if it cannot (tried once per test process).
fn container_skip() -> Option<&'static str> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            match Scenario::new(Fixture::Listener.command())
                .container()
                .ready_when(Ready::stdout_line("ready"))
                .run()
            {
                Err(e @ Error::ContainerUnavailable { .. }) => Some(e.to_string()),
                Err(e) => panic!("container mode: {e}"),
                Ok(_) => None,
            }
        })
        .as_deref()
}

pub(crate) fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

const GRACE: Duration = Duration::from_millis(400);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Expect {
    /// PID 1 outlived SIGTERM for the whole grace.
    took_grace: bool,
    /// Processes (besides PID 1) the namespace's SIGKILL took.
    namespace_killed: usize,
}

#[rstest]
#[case::listener_as_pid1(None, &["listener"], Expect { took_grace: true, namespace_killed: 0 })]
#[case::agent_as_pid1(None, &["agent", "--child", "listener"], Expect { took_grace: true, namespace_killed: 1 })]
#[case::forwarding_agent_as_pid1(None, &["agent", "--child", "listener", "--on-term", "forward"], Expect { took_grace: false, namespace_killed: 0 })]
#[case::tini(Some("tini --"), &["agent", "--child", "listener"], Expect { took_grace: false, namespace_killed: 1 })]
#[case::tini_group(Some("tini -g --"), &["agent", "--child", "listener"], Expect { took_grace: false, namespace_killed: 0 })]
#[case::dumb_init(Some("dumb-init"), &["agent", "--child", "listener"], Expect { took_grace: false, namespace_killed: 0 })]
fn docker_stop(#[case] init: Option<&str>, #[case] agent: &[&str], #[case] expect: Expect) {
    if let Some(reason) = container_skip() {
        eprintln!("skip: {reason}");
        return;
    }
    let init_words: Option<Vec<&str>> = init.map(|i| i.split(' ').collect());
    if let Some(words) = &init_words {
        if !installed(words[0]) {
            eprintln!("skip: {} is not installed", words[0]);
            return;
        }
    }
    let fixture = Fixture::from_name(agent[0]).expect("a fixture");
    let mut s = Scenario::new({
        let mut c = fixture.command();
        c.args(&agent[1..]);
        c
    })
    .container()
    .ready_when(Ready::stdout_line("ready"))
    .kill(KillPlan::container_stop(GRACE));
    if let Some(words) = &init_words {
        let mut c = std::process::Command::new(words[0]);
        c.args(&words[1..]);
        s = s.init(c);
    }
    let outcome = s.run().expect("the container runs");
    let graceful = outcome.check_graceful_stop(Duration::from_secs(5)).is_ok();
    let report = outcome.report();
    let c = report.container.as_ref().expect("a container report");
    assert_eq!(c.stop_took_whole_grace, expect.took_grace, "{report}");
    assert_eq!(
        outcome.plan_record().agent_needed_sigkill,
        expect.took_grace
    );
    assert_eq!(c.killed_by_namespace(), expect.namespace_killed, "{report}");
    assert_eq!(
        c.escape == Some(Escape::ContainerInit),
        expect.took_grace,
        "cause 6 is named exactly when the stop took the grace\n{report}"
    );
    let clean = !expect.took_grace && expect.namespace_killed == 0;
    assert_eq!(graceful, clean, "{report}");
    assert_eq!(report.is_leak(), !clean, "{report}");
    assert!(
        report.survivors.is_empty(),
        "nothing outlives PID 1\n{report}"
    );
    // Host and namespace pids side by side: PID 1 is 1 inside.
    assert_eq!(outcome.pid1(), Some(c.pid1));
    let pid1 = report
        .timeline
        .iter()
        .find(|t| t.pid == c.pid1)
        .expect("PID 1 listed");
    assert_eq!(pid1.pid_in_namespace, Some(1), "{report}");
    assert!(c
        .processes
        .iter()
        .all(|p| p.pid_in_namespace.is_some_and(|n| n > 1)));
    assert_eq!(
        report.wrapper.as_ref().map(|w| w.role),
        init.map(|_| "init")
    );
    if init.is_some() {
        assert_ne!(outcome.agent_pid(), c.pid1, "the agent runs under init");
    }
}

#[test]
fn the_container_has_its_own_proc_and_the_host_mounts_stay_as_they_were() {
    if let Some(reason) = container_skip() {
        eprintln!("skip: {reason}");
        return;
    }
    // The mounts on /proc as the harness sees them (other mounts may come and go with
    // the rest of the machine).
    let mounts = || -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some("/proc"))
            .map(str::to_owned)
            .collect()
    };
    let before = mounts();
    // Inside, /proc shows the namespace's processes only: PID 1 (sh), and the few it
    // forks to count them. The host's /proc shows every process of the machine.
    let mut sh = std::process::Command::new("sh");
    sh.args([
        "-c",
        "echo ready procs=$(ls -d /proc/[0-9]* | wc -l) self=$$; exec sleep 60",
    ]);
    let outcome = Scenario::new(sh)
        .container()
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("runs");
    let line = outcome.stdout().to_string();
    let field = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
    };
    assert_eq!(field("self="), 1, "the agent is PID 1");
    assert!(
        field("procs=") <= 4,
        "a fresh /proc of the namespace: {line}"
    );
    outcome.assert_no_survivors(Duration::from_secs(5));
    drop(outcome);
    assert_eq!(
        before,
        mounts(),
        "the container's /proc did not propagate to the host"
    );
}

#[test]
fn docker_kill_takes_the_namespace_and_is_not_a_failed_stop() {
    if let Some(reason) = container_skip() {
        eprintln!("skip: {reason}");
        return;
    }
    let mut c = Fixture::Agent.command();
    c.args(["--child", "listener"]);
    let outcome = Scenario::new(c)
        .container()
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("runs");
    outcome.assert_no_survivors(Duration::from_secs(5));
    outcome.assert_graceful_stop(Duration::from_secs(5));
    let report = outcome.report();
    assert_eq!(report.plan.simulates, "docker kill");
    let c = report.container.as_ref().expect("a container report");
    assert_eq!(c.killed_by_namespace(), 1, "the listener went with PID 1");
    assert!(!c.stop_took_whole_grace);
    assert!(!report.is_leak());
}

#[test]
fn a_pid1_without_handler_survives_sigterm_as_cause_6_and_drop_ends_the_container() {
    if let Some(reason) = container_skip() {
        eprintln!("skip: {reason}");
        return;
    }
    let mut c = Fixture::Agent.command();
    c.args(["--child", "listener"]);
    let outcome = Scenario::new(c)
        .container()
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("runs");
    // The kernel drops SIGTERM for a namespace's init without a handler: PID 1 and its
    // child live on.
    let survivors = outcome.survivors_after(DEADLINE);
    let pid1 = outcome.pid1().expect("container mode");
    assert_eq!(survivors.len(), 2, "{}", outcome.report());
    let init = survivors
        .iter()
        .find(|s| s.pid() == pid1)
        .expect("PID 1 survived");
    assert_eq!(init.process.pid_in_namespace, Some(1));
    assert!(
        init.escapes.contains(&Escape::ContainerInit),
        "{}",
        outcome.report()
    );
    let report = outcome.report();
    let c = report.container.as_ref().expect("a container report");
    assert_eq!(c.escape, Some(Escape::ContainerInit));
    assert!(c.stop.contains("still running"), "{}", c.stop);
    assert!(outcome
        .check_graceful_stop(Duration::from_millis(100))
        .is_err());
    let pids: Vec<i32> = survivors.iter().map(|s| s.pid()).collect();
    drop(outcome);
    for pid in pids {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_err(),
            "pid {pid} outlived the outcome"
        );
    }
}

// ------------------------------------------------------------------------- touch

fn watcher_scenario(dir: &Path, how: &str, touch: bool) -> Scenario {
    let source = dir.join("app.ts");
    let mut c = Fixture::Agent.command();
    c.args(["--child", "file-watcher", "--how", how, "--", "--dir"])
        .arg(dir.join("out"))
        .arg("--source")
        .arg(&source)
        .args(["--interval-ms", "20"]);
    let s = Scenario::new(c)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill_group())
        .watch_dir(dir);
    if touch {
        s.touch_after_kill(source)
    } else {
        s
    }
}

fn source_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let source = dir.path().join("app.ts");
    std::fs::write(&source, "export const x = 1;\n").expect("write");
    // An old time, so that the touch's new time differs whatever the clock's tick.
    std::fs::File::options()
        .write(true)
        .open(&source)
        .and_then(|f| f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000)))
        .expect("set the time");
    dir
}

#[rstest]
#[case::session_watcher_touched("session", true, 1, 1)]
#[case::session_watcher_untouched("session", false, 1, 0)]
#[case::grouped_watcher_touched("plain", true, 0, 0)]
fn touch_provokes_a_watcher(
    #[case] how: &str,
    #[case] touch: bool,
    #[case] survivors: usize,
    #[case] writes: usize,
) {
    let dir = source_dir();
    let outcome = watcher_scenario(dir.path(), how, touch)
        .run()
        .expect("runs");
    let alive = outcome.survivors_after(DEADLINE);
    assert_eq!(alive.len(), survivors, "{}", outcome.report());
    // The watcher polls every 20 ms: a rebuild after the touch is written well within
    // the deadline (the write check waits the whole deadline while the watcher lives).
    let changes = outcome.writes_after_kill(dir.path(), DEADLINE);
    assert_eq!(changes.len(), writes, "{changes:?}\n{}", outcome.report());
    for c in &changes {
        assert!(c.path.ends_with("out/app.js"), "{c:?}");
        assert_eq!(c.writers, vec![alive[0].pid()], "the watcher is named");
    }
    let report = outcome.report();
    let touched = report.touched.as_ref();
    assert_eq!(touched.is_some(), touch);
    if let Some(t) = touched {
        assert_eq!((t.mode, t.error.as_deref()), ("rewrite", None));
        assert!(t.after_kill_ms >= 0.0);
        assert!(
            report.files.iter().all(|f| !f.path.ends_with("app.ts")),
            "the harness's own write is not a write after the kill\n{report}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.ts")).expect("read"),
        "export const x = 1;\n",
        "a rewrite keeps the content"
    );
}

#[test]
fn touching_a_missing_file_is_refused_before_the_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let err = Scenario::new(Fixture::Listener.command())
        .touch_after_kill(dir.path().join("missing.ts"))
        .run()
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidCommand(_)), "{err}");
}

// ---------------------------------------------------------------- the command line

mod cli {
    use assert_cmd::cargo::cargo_bin;
    use orphan_check::{Fixture, RUN_ENV};
    use serde_json::Value;

    use crate::common::tag;

    fn run(args: &[&str]) -> (Option<i32>, String, Option<Value>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let json = dir.path().join("report.json");
        let out = std::process::Command::new(cargo_bin("orphan-check"))
            .arg("run")
            .arg("--json")
            .arg(&json)
            .args(args)
            .env(RUN_ENV, format!("endings-cli-{}", tag()))
            .output()
            .expect("orphan-check runs");
        let report = std::fs::read_to_string(&json)
            .ok()
            .map(|t| serde_json::from_str(&t).expect("valid JSON"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            report,
        )
    }

    fn listener() -> String {
        Fixture::Listener.path().display().to_string()
    }

    #[test]
    fn help_names_the_new_endings() {
        let out = std::process::Command::new(cargo_bin("orphan-check"))
            .args(["run", "--help"])
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in [
            "parent-death",
            "docker-stop=10s",
            "--container",
            "--init <CMD>",
            "--touch <FILE>",
            "--touch-mode",
        ] {
            assert!(text.contains(word), "{word} missing from --help\n{text}");
        }
    }

    #[test]
    fn parent_death_leak_exits_1_and_names_the_launcher() {
        let (code, err, report) = run(&[
            "--kill",
            "parent-death",
            "--ready",
            "line:ready",
            "--deadline",
            "300ms",
            "--",
            &listener(),
        ]);
        assert_eq!(code, Some(1), "{err}");
        let r = report.expect("a report");
        assert_eq!(r["wrapper"]["role"], "launcher");
        assert_eq!(r["signals"][0]["target"], "launcher");
        assert_eq!(r["signals"][0]["to"], r["wrapper"]["pid"]);
        assert_eq!(r["survivors"][0]["pid"], r["agent_pid"]);
        assert_eq!(r["survivors"][0]["escapes"][0]["kind"], "parent_died");
    }

    #[test]
    fn docker_stop_of_a_pid1_without_handler_exits_1_naming_cause_6() {
        let (code, err, report) = run(&[
            "--kill",
            "docker-stop=300ms",
            "--ready",
            "line:ready",
            "--",
            &listener(),
        ]);
        if code == Some(2) && err.contains("container mode needs") {
            eprintln!("skip: {err}");
            return;
        }
        assert_eq!(code, Some(1), "{err}");
        let r = report.expect("a report");
        assert_eq!(r["container"]["stop_took_whole_grace"], true);
        assert_eq!(r["container"]["escape"]["kind"], "container_init");
        assert_eq!(r["timeline"][0]["pid_in_namespace"], 1, "{r}");
        assert!(err.contains("cause 6"), "{err}");
    }

    #[test]
    fn docker_stop_under_tini_forwarding_to_the_group_exits_0() {
        if !super::installed("tini") {
            eprintln!("skip: tini is not installed");
            return;
        }
        let agent = Fixture::Agent.path().display().to_string();
        let (code, err, report) = run(&[
            "--init",
            "tini -g --",
            "--kill",
            "docker-stop=2s",
            "--ready",
            "line:ready",
            "--",
            &agent,
            "--child",
            "listener",
        ]);
        if code == Some(2) && err.contains("container mode needs") {
            eprintln!("skip: {err}");
            return;
        }
        assert_eq!(code, Some(0), "{err}");
        let r = report.expect("a report");
        assert_eq!(r["wrapper"]["role"], "init");
        assert_eq!(r["container"]["stop_took_whole_grace"], false);
    }

    #[test]
    fn touch_errors_exit_2_with_one_line() {
        let (code, err, _) = run(&["--touch", "/nonexistent/app.ts", "--", "true"]);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("cannot be read"), "{err}");
        let (code, err, _) = run(&["--touch-mode", "append", "--", "true"]);
        assert_eq!(code, Some(2), "{err}");
    }
}
