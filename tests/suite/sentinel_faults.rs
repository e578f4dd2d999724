//! The sentinel's own faults: killed from inside its tree, started by a caller with odd
//! signal dispositions, started by exec with secrets in the environment, flooded by a
//! tree that will not die.
//!
//! Each test tags its agent with `OC_FAULT_TAG=<tag>`; a [`Tagged`] guard SIGKILLs what
//! still carries the tag when the test ends, pass or fail (through a pidfd, the tag read
//! again after the open, so a reused pid is never signalled), and the test itself
//! asserts that nothing was left for the guard.

use std::process::Command;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use orphan_check::outcome::FailureReason;
use orphan_check::scenario::{cgroup_root, CgroupMode};
use orphan_check::{Fixture, KillPlan, Ready, Scenario, Verdict};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::common::{pids_with_env, tag, Watched};

/// The processes of one test, by tag; whatever still carries it is killed on drop.
struct Tagged(String);

impl Tagged {
    fn new() -> Tagged {
        Tagged(format!("sf-{}", tag()))
    }

    fn left(&self) -> Vec<i32> {
        pids_with_env("OC_FAULT_TAG", &self.0).into_iter().collect()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args).env("OC_FAULT_TAG", &self.0);
        c
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        for pid in self.left() {
            let Some(fd) = Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
            else {
                continue;
            };
            if pids_with_env("OC_FAULT_TAG", &self.0).contains(&pid) {
                let _ = pidfd_send_signal(&fd, Signal::KILL);
            }
        }
    }
}

fn cgroup_modes() -> Vec<CgroupMode> {
    let mut modes = vec![CgroupMode::Off];
    if cgroup_root().is_some() {
        modes.push(CgroupMode::Required);
    } else {
        println!("SKIPPED the cgroup half: no writable cgroup v2 here");
    }
    modes
}

// ---------------------------------------------------------------------------------------
// A dead sentinel is never a clean tree
// ---------------------------------------------------------------------------------------

/// The agent SIGKILLs its parent, the sentinel, and leaves a child running. The
/// kernel hands both orphans to init, so the sentinel's subtree is empty: only the
/// cgroup and the marker still find them. The verdict must be "lost track" with both
/// listed, the check must fail, and dropping the outcome must kill both.
#[test]
fn a_sentinel_killed_from_inside_is_lost_track_and_its_survivors_are_found_and_killed() {
    for mode in cgroup_modes() {
        let t = Tagged::new();
        let cmd = t.command(
            "sh",
            // On the plan's SIGTERM the agent kills the sentinel and goes on living.
            &[
                "-c",
                "trap 'kill -9 $PPID' TERM; sleep 313 & echo ready; wait; wait",
            ],
        );
        let outcome = Scenario::new(cmd)
            .cgroup(mode)
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .run()
            .expect("the scenario runs");
        let survivors = outcome.survivors_after(Duration::from_millis(300));
        let mut names: Vec<String> = survivors.iter().map(|s| s.process.comm.clone()).collect();
        names.sort();
        assert_eq!(names, ["sh", "sleep"], "{mode:?}\n{}", outcome.report());
        let report = outcome.report();
        assert_eq!(report.verdict, Verdict::LostTrack, "{mode:?}\n{report}");
        assert!(report.to_string().starts_with("orphan-check: LOST TRACK"));
        let failure = outcome
            .check_no_survivors(Duration::from_millis(100))
            .expect_err("lost track never passes");
        assert_eq!(failure.reason, FailureReason::LostTrack(2), "{mode:?}");
        assert!(failure.to_string().contains("lost track"), "{failure}");
        let watched = Watched::new(survivors.iter().map(|s| s.process.pid));
        assert_eq!(watched.len(), 2);
        drop(outcome);
        assert!(
            watched.wait_all_gone(Duration::from_secs(5)).is_empty(),
            "{mode:?}: the survivors outlived the outcome"
        );
        assert!(t.left().is_empty(), "{mode:?}: left {:?}", t.left());
    }
}

/// Nothing survives, but the sentinel was killed before it could say so: still never
/// clean (the harness cannot tell "gone" from "escaped where no oracle sees").
#[test]
fn a_sentinel_killed_by_an_agent_that_then_exits_is_still_not_clean() {
    let t = Tagged::new();
    // On SIGTERM the agent kills the sentinel, then its own child, and exits. The child
    // (a listener) prints the ready line itself, once it has exec'd: until then a shell's
    // background child still has the shell's trap handler, which takes a SIGTERM and
    // drops it when the child resets its signals for the exec, so a `sleep 313 &` killed
    // that early lives on (SigBlk and SigCgt empty: its SIGTERM never reached it).
    let script = "trap 'kill -9 $PPID; kill $!; exit 0' TERM; \"$1\" & wait";
    let listener = Fixture::Listener.path();
    let listener = listener.to_str().expect("a UTF-8 fixture path");
    let outcome = Scenario::new(t.command("sh", &["-c", script, "sh", listener]))
        .cgroup(CgroupMode::Off)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("the scenario runs");
    let before: Vec<i32> = outcome.tree_before_kill().iter().map(|p| p.pid).collect();
    assert_eq!(before.len(), 2, "the agent and its listener at readiness");
    // The trap ends both processes; on a loaded machine that can take longer than any
    // verdict deadline. Wait for them to be gone (through pidfds: one already reaped has
    // none to open, and is gone), then judge a tree that is empty.
    let alive = Watched::new(before).wait_all_gone(Duration::from_secs(20));
    assert!(alive.is_empty(), "the trap did not end {alive:?}");
    let failure = outcome
        .check_no_survivors(Duration::from_millis(500))
        .expect_err("lost track never passes");
    assert_eq!(failure.reason, FailureReason::LostTrack(0));
    assert_eq!(outcome.report().verdict, Verdict::LostTrack);
    assert!(outcome.kill_remaining(Duration::from_secs(5)).is_some());
}

/// The command line as a new user tries it: never exit 0, one line on stderr, the
/// survivors listed in the report and gone afterwards.
#[test]
fn the_cli_exits_2_when_it_lost_track_and_leaves_nothing() {
    let t = Tagged::new();
    let out = Command::new(cargo_bin("orphan-check"))
        .args(["run", "--cgroup", "off", "--kill", "sigterm"])
        .args(["--ready", "line:ready", "--", "sh", "-c"])
        .arg("trap 'kill -9 $PPID' TERM; sleep 313 & echo ready; wait; wait")
        .env("OC_FAULT_TAG", &t.0)
        .output()
        .expect("orphan-check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("LOST TRACK"), "{stderr}");
    assert!(stderr.contains("sleep 313"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("orphan-check: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("lost track"), "{stderr}");
    assert!(t.left().is_empty(), "left {:?}", t.left());
}

/// Killed before readiness, by an agent that never gets ready: an error (no outcome to
/// judge), and nothing of the tree left, though no sentinel is there to end it.
#[test]
fn a_sentinel_killed_before_readiness_is_an_error_and_leaves_nothing() {
    let t = Tagged::new();
    let err = Scenario::new(t.command("sh", &["-c", "sleep 313 & kill -9 $PPID; wait"]))
        .cgroup(CgroupMode::Off)
        .ready_when(Ready::stdout_line("never printed"))
        .ready_timeout(Duration::from_secs(1))
        .run()
        .expect_err("no outcome without a sentinel");
    assert!(
        matches!(err, orphan_check::Error::NeverReady { .. })
            || err.to_string().contains("sentinel ended"),
        "{err}"
    );
    assert!(t.left().is_empty(), "left {:?}", t.left());
}

/// Killed at once, as a new user tried it: the agent still gets "ready" (after 300 ms),
/// and the verdict is lost track, with both survivors.
#[test]
fn a_sentinel_killed_at_the_start_still_gets_a_lost_track_verdict() {
    let t = Tagged::new();
    let result = Scenario::new(t.command("sh", &["-c", "sleep 313 & kill -9 $PPID; wait"]))
        .cgroup(CgroupMode::Off)
        .ready_when(Ready::after(Duration::from_millis(300)))
        .kill(KillPlan::sigterm())
        .run();
    // The kill may land before the sentinel reported the agent: then there is no
    // outcome, only an error, and nothing left.
    if let Ok(outcome) = result {
        let survivors = outcome.survivors_after(Duration::from_millis(200));
        assert_eq!(outcome.report().verdict, Verdict::LostTrack);
        let mut names: Vec<String> = survivors.iter().map(|s| s.process.comm.clone()).collect();
        names.sort();
        assert_eq!(names, ["sh", "sleep"], "{}", outcome.report());
        // They were seen before the kill: not "respawned" after it.
        assert!(
            survivors.iter().all(|s| !s
                .escapes
                .iter()
                .any(|e| matches!(e, orphan_check::Escape::Respawned { .. }))),
            "{}",
            outcome.report()
        );
    }
    assert!(t.left().is_empty(), "left {:?}", t.left());
}

// ---------------------------------------------------------------------------------------
// Signal dispositions inherited from the caller
// ---------------------------------------------------------------------------------------

/// Runs `orphan-check ARGS` from a process that ignores SIGCHLD: the disposition
/// survives the exec, as it does for a CI runner or a test harness that set it.
fn cli_with_sigchld_ignored(t: &Tagged, start: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args([
            "-c",
            "import os, signal, sys\n\
             signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
             os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(cargo_bin("orphan-check"))
        .args(args)
        .env("OC_FAULT_TAG", &t.0)
        .env("ORPHAN_CHECK_SENTINEL_START", start)
        .output()
        .expect("python3 runs")
}

/// With SIGCHLD ignored in the sentinel the kernel reaps every child at once, and no
/// exit is ever reported: an agent that exits reads as "never ready", and a clean
/// verdict has no exit for the agent. The sentinel resets the disposition.
#[test]
fn an_inherited_sigchld_ignore_loses_no_exit() {
    let t = Tagged::new();
    for start in ["fork", "exec"] {
        // The agent exits before it is ready: ExitedBeforeReady, at once, with its status.
        let out = cli_with_sigchld_ignored(
            &t,
            start,
            &[
                "run",
                "--ready",
                "line:never printed",
                "--ready-timeout",
                "20s",
            ]
            .into_iter()
            .chain(["--", "sh", "-c", "exit 3"])
            .collect::<Vec<_>>(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("exited before it was ready (exit status 3)"),
            "{stderr}"
        );
    }
    // A clean run records how the agent ended.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = cli_with_sigchld_ignored(
        &t,
        "fork",
        &[
            "run",
            "--kill",
            "sigterm",
            "--ready",
            "line:ready",
            "--json",
            json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 313",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let agent = report["agent_pid"].as_i64().unwrap();
    let entry = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pid"].as_i64() == Some(agent))
        .expect("the agent is in the timeline");
    assert_eq!(entry["exit"]["how"], "killed by SIGTERM", "{stderr}");
    assert!(t.left().is_empty(), "left {:?}", t.left());
}

/// A handler the caller installed (here for SIGUSR1) must not run in the forked
/// sentinel: there it would be the caller's code, on a copy of the caller's memory,
/// writing to descriptors that now mean something else. With the dispositions reset,
/// a SIGUSR1 from the tree gets the default action: the sentinel ends, and the verdict
/// says the harness lost track, rather than the caller's handler swallowing it.
#[test]
fn a_handler_of_the_caller_never_runs_in_the_forked_sentinel() {
    let caught = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, caught.clone())
        .expect("a SIGUSR1 handler");
    let t = Tagged::new();
    let script = "trap 'kill -USR1 $PPID' TERM; sleep 313 & echo ready; wait; wait";
    let outcome = Scenario::new(t.command("sh", &["-c", script]))
        .sentinel_start(orphan_check::scenario::SentinelStart::Fork)
        .cgroup(CgroupMode::Off)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("the scenario runs");
    let survivors = outcome.survivors_after(Duration::from_millis(300));
    assert_eq!(
        outcome.report().verdict,
        Verdict::LostTrack,
        "the sentinel ran the caller's handler and lived on\n{}",
        outcome.report()
    );
    assert_eq!(survivors.len(), 2, "{}", outcome.report());
    drop(outcome);
    assert!(t.left().is_empty(), "left {:?}", t.left());
    assert!(
        !caught.load(std::sync::atomic::Ordering::SeqCst),
        "nobody signals the test process"
    );
}

// ---------------------------------------------------------------------------------------
// The exec start: no secret on a command line, and a fall back when the hook cannot run
// ---------------------------------------------------------------------------------------

/// Every process's command line, NUL-separated, by pid.
fn command_lines() -> Vec<(i32, Vec<u8>)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            Some((pid, std::fs::read(format!("/proc/{pid}/cmdline")).ok()?))
        })
        .collect()
}

/// `/proc/<pid>/cmdline` is readable by every local user; the agent's environment (CI
/// tokens) must not be in the sentinel's.
#[test]
fn the_exec_start_puts_no_variable_of_the_agent_on_a_command_line() {
    let t = Tagged::new();
    let secret = format!("s3cr3t-{}", t.0);
    let mut cmd = t.command(
        "sh",
        &["-c", "echo \"got $MY_TOKEN\"; echo ready; exec sleep 313"],
    );
    cmd.env("MY_TOKEN", &secret);
    let outcome = Scenario::new(cmd)
        .sentinel_start(orphan_check::scenario::SentinelStart::Exec)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("the scenario runs");
    let sentinel = outcome.sentinel_pid();
    let lines = command_lines();
    let own = lines
        .iter()
        .find(|(pid, _)| *pid == sentinel)
        .map(|(_, l)| l.clone())
        .expect("the sentinel's command line");
    // Exec'd, not forked (a fork would show this test binary's command line).
    assert_eq!(
        String::from_utf8_lossy(&own),
        "orphan-sentinel\0--orphan-check-sentinel\0"
    );
    let leaked: Vec<i32> = lines
        .iter()
        .filter(|(_, l)| l.windows(secret.len()).any(|w| w == secret.as_bytes()))
        .map(|(pid, _)| *pid)
        .collect();
    assert!(
        leaked.is_empty(),
        "the token is on the command line of {leaked:?}"
    );
    // The agent did get it.
    let stdout = outcome.stdout().to_string();
    assert!(stdout.contains(&format!("got {secret}")), "{stdout}");
    outcome.assert_no_survivors(Duration::from_secs(2));
}

/// Child side of the two tests below: one scenario, exec start asked for; prints the
/// verdict and the sentinel's environment.
#[test]
#[ignore = "a victim: started by the exec-start fallback tests"]
fn exec_start_victim() {
    if std::env::var_os("OC_SF_VICTIM").is_none() {
        return;
    }
    let mut agent = Command::new("sh");
    agent.args(["-c", "echo ready; exec sleep 313"]);
    let outcome = Scenario::new(agent)
        .sentinel_start(orphan_check::scenario::SentinelStart::Exec)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("the scenario runs");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", outcome.sentinel_pid())).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", outcome.sentinel_pid())).unwrap();
    outcome.assert_no_survivors(Duration::from_secs(2));
    println!("VERDICT {:?}", outcome.report().verdict);
    println!("EXECED {}", cmdline.starts_with(b"orphan-sentinel\0"));
    for kv in environ
        .split(|b| *b == 0)
        .filter(|kv| kv.starts_with(b"LD_"))
    {
        println!("SENTINEL_ENV {}", String::from_utf8_lossy(kv));
    }
}

fn run_victim(mut cmd: Command) -> String {
    let out = cmd
        .args(["--exact", "sentinel_faults::exec_start_victim", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env("OC_SF_VICTIM", "1")
        .env_remove("ORPHAN_CHECK_SENTINEL_START")
        .output()
        .expect("the victim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The exec'd sentinel gets the caller's `LD_*` variables: a test binary that needs
/// `LD_LIBRARY_PATH` to load (libtorch, onnxruntime, cargo's dylib paths) dies in the
/// loader without them, before any hook could run.
#[test]
fn the_exec_start_forwards_the_loader_variables() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("LD_LIBRARY_PATH", dir.path());
    let text = run_victim(cmd);
    assert!(text.contains("VERDICT Clean"), "{text}");
    assert!(text.contains("EXECED true"), "{text}");
    let wanted = format!("SENTINEL_ENV LD_LIBRARY_PATH={}", dir.path().display());
    assert!(text.contains(&wanted), "{text}");
}

/// Started through the dynamic loader, `/proc/self/exe` is ld.so, not the binary with
/// the hook: the exec'd process rejects the sentinel flag and exits. The start must
/// fall back to fork, never fail.
#[test]
fn the_exec_start_falls_back_to_fork_when_the_hook_cannot_run() {
    let loader = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(loader) = loader else {
        println!("SKIPPED: no dynamic loader at a known path");
        return;
    };
    let mut cmd = Command::new(loader);
    cmd.arg(std::env::current_exe().unwrap());
    let text = run_victim(cmd);
    assert!(text.contains("VERDICT Clean"), "{text}");
    assert!(text.contains("EXECED false"), "{text}");
}

// ---------------------------------------------------------------------------------------
// A start that hangs
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "a victim: started under strace by a_hung_chdir_ends_the_start_at_ready_timeout"]
fn hung_start_victim() {
    if std::env::var_os("OC_SF_VICTIM").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Command::new("sleep");
    agent.arg("313").current_dir(dir.path());
    let started = std::time::Instant::now();
    let result = Scenario::new(agent)
        .sentinel_start(orphan_check::scenario::SentinelStart::Fork)
        .cgroup(CgroupMode::Off)
        .ready_timeout(Duration::from_secs(1))
        .run();
    println!("ELAPSED_MS {}", started.elapsed().as_millis());
    match result {
        Ok(_) => println!("STARTED"),
        Err(e) => println!("ERROR {e}"),
    }
}

/// A `chdir` on a network filesystem can hang; strace stands in for one here,
/// holding every `chdir` for 5 s (a ptrace stop that even SIGKILL waits out). The
/// start must end at `ready_timeout` (1 s) with an error that says so, not start the
/// agent 5 s late; the hung child, SIGKILLed, dies the moment it is let go.
#[test]
fn a_hung_chdir_ends_the_start_at_ready_timeout() {
    let probe = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED: strace cannot trace here");
        return;
    }
    let t = Tagged::new();
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=chdir"])
        .args(["-e", "inject=chdir:delay_enter=5000000"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "sentinel_faults::hung_start_victim", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env("OC_SF_VICTIM", "1")
        .env("OC_FAULT_TAG", &t.0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("strace starts");
    let pidfd = pidfd_open(
        Pid::from_raw(child.id() as i32).unwrap(),
        PidfdFlags::empty(),
    )
    .expect("pidfd");
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    let bound = rustix::event::Timespec {
        tv_sec: 30,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&bound));
    let finished = !fds[0].revents().is_empty();
    if !finished {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("strace ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(finished, "the start hung past ready_timeout\n{text}");
    assert!(
        text.contains("ERROR the agent did not start within ready_timeout"),
        "{text}"
    );
    assert!(t.left().is_empty(), "left {:?}", t.left());
}

// ---------------------------------------------------------------------------------------
// A child that cannot die yet
// ---------------------------------------------------------------------------------------

fn status_field(pid: i32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

/// A survivor held by a tracer outside the tree keeps its pending SIGKILL for as long
/// as the tracer holds it (the same as a process in uninterruptible sleep on a dead
/// NFS server). The cleanup loop used to kill and report it again every 20 ms (50
/// events a second, without bound); it must kill it once and back off.
#[test]
fn a_child_that_cannot_die_yet_is_killed_once_and_the_cleanup_backs_off() {
    let probe = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED: strace cannot trace here");
        return;
    }
    let t = Tagged::new();
    // The agent ignores the plan's SIGTERM and loops on wait4 (its sleeps).
    let script = "trap '' TERM; echo ready; while :; do sleep 0.05; done";
    let outcome = Scenario::new(t.command("sh", &["-c", script]))
        .cgroup(CgroupMode::Off)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("the scenario runs");
    let agent = outcome.agent_pid();
    // Hold its next wait4 for 3 s.
    let mut tracer = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "-e", "trace=wait4"])
        .args(["-e", "inject=wait4:delay_enter=3000000", "-p"])
        .arg(agent.to_string())
        .spawn()
        .expect("strace attaches");
    let held = {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut n = 0u32;
        loop {
            let state = status_field(agent, "State:").unwrap_or_default();
            if state.starts_with('t') {
                break true;
            }
            if std::time::Instant::now() >= until {
                break false;
            }
            // Waiting for another process's state: no event to wait on, so a backoff.
            std::thread::park_timeout(Duration::from_millis(1 << n.min(5)));
            n += 1;
        }
    };
    assert!(held, "strace never held the agent");
    let sentinel = outcome.sentinel_pid();
    let wakeups = || -> u64 {
        status_field(sentinel, "voluntary_ctxt_switches:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = wakeups();
    let gone = outcome.kill_remaining(Duration::from_secs(20));
    let after = wakeups();
    let _ = tracer.kill();
    let _ = tracer.wait();
    println!("sentinel wakeups during the cleanup: {}", after - before);
    assert!(
        gone.is_some(),
        "the held child never died\n{}",
        outcome.report()
    );
    // About 3 s of waiting: 20 ms polls woke the sentinel ~150 times; the backoff
    // (5 ms doubling to 500 ms) ~12, plus one per exit.
    assert!(
        after - before < 60,
        "the cleanup loop woke {} times while one child could not die",
        after - before
    );
    drop(outcome);
    assert!(t.left().is_empty(), "left {:?}", t.left());
}
