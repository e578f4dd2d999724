//! An idle sentinel: from the second scenario of a process on, a clean scenario's
//! sentinel waits for the next scenario, and is reused only when that changes nothing an
//! agent could tell.
//!
//! The idle sentinels are the process's, shared by every test thread; so each test
//! here runs its scenarios in a child process of its own (the `reuse_victim` test, one
//! step after another), which prints what it saw.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use orphan_check::{KillPlan, Ready, Scenario};

use crate::common::Watched;

/// One clean scenario whose agent prints `what` (a shell command's output) before it
/// is ready: its sentinel's pid and that output.
fn clean(what: &str) -> (i32, String) {
    let script = format!("{what}; echo ready; exec sleep 300");
    let mut agent = Command::new("sh");
    agent.args(["-c", &script]);
    let outcome = Scenario::new(agent)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("the scenario runs");
    outcome.assert_no_survivors(Duration::from_secs(10));
    let printed = outcome.stdout().lines().next().unwrap_or("").to_owned();
    (outcome.sentinel_pid(), printed)
}

/// One scenario that leaks (the agent's child outlives its SIGKILL): its sentinel's pid.
fn leaking() -> i32 {
    let mut agent = Command::new("sh");
    agent.args(["-c", "sleep 301 & echo ready; exec sleep 300"]);
    let outcome = Scenario::new(agent)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .expect("the scenario runs");
    assert_eq!(outcome.survivors_after(Duration::from_millis(200)).len(), 1);
    outcome.sentinel_pid()
}

fn gone(pid: i32) -> bool {
    std::fs::metadata(format!("/proc/{pid}")).is_err()
}

/// Not a test on its own: the process the tests below start, running the steps its
/// `OC_REUSE_VICTIM` names and printing `fact key value` lines.
#[test]
#[ignore = "started by the reuse tests as a child process"]
fn reuse_victim() {
    let Ok(mode) = std::env::var("OC_REUSE_VICTIM") else {
        return;
    };
    // The process's first scenario keeps nothing: its sentinel ends with it.
    let (first, _) = clean("true");
    println!("fact first_gone {}", gone(first));
    match mode.as_str() {
        "sequence" => sequence(),
        "park" => {
            println!("fact idle {}", clean("true").0);
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            loop {
                std::thread::park();
            }
        }
        "exit" => println!("fact idle {}", clean("true").0),
        "off" => {
            let (second, _) = clean("true");
            println!("fact second_gone {}", gone(second));
            println!("fact third_new {}", clean("true").0 != second);
        }
        "fork" => {
            let (idle, _) = clean("true");
            // A child forked by the caller inherits the list of idle sentinels, not the
            // sentinels: its scenario must start its own.
            // SAFETY: fork in a test process whose other threads wait; the child runs
            // one scenario and leaves by `_exit`, never returning into the harness.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = match std::panic::catch_unwind(|| clean("true").0) {
                    Ok(sentinel) if sentinel != idle => 0,
                    Ok(_) => 1,
                    Err(_) => 2,
                };
                orphan_check::end_idle_sentinels();
                // SAFETY: ends the forked child at once.
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just forked, into a local.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("fact child_exit {}", libc::WEXITSTATUS(status));
            println!("fact parent_reuses {}", clean("true").0 == idle);
        }
        other => panic!("no mode {other}"),
    }
}

fn sequence() {
    let (a, _) = clean("true");
    println!("fact a_alive {}", !gone(a));
    // The working directory of the next agent is the caller's now, not the one the idle
    // sentinel was started in.
    let dir = tempfile::tempdir().expect("tempdir");
    std::env::set_current_dir(dir.path()).expect("cd");
    let (b, pwd) = clean("pwd -P");
    println!("fact b_reused {}", b == a);
    println!(
        "fact b_pwd_is_callers {}",
        pwd == dir.path().canonicalize().unwrap().to_string_lossy()
    );
    std::env::set_current_dir("/").expect("cd /");
    // A leak ends its sentinel with its tree, even a reused one.
    let c = leaking();
    println!("fact c_reused {}", c == a);
    println!("fact c_gone {}", gone(c));
    let (d, _) = clean("true");
    println!("fact d_new {}", d != c);
    // Another umask: the idle sentinel has the old one, so a new sentinel starts and
    // the agent gets the new one; the idle one is ended.
    // SAFETY: umask only sets this process's file mode mask.
    let old = unsafe { libc::umask(0o077) };
    let (e, umask) = clean("umask");
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    println!("fact e_new {}", e != d);
    println!("fact e_umask {umask}");
    println!("fact d_gone {}", gone(d));
    // Another thread's nice value: the same, from that thread.
    let (f, nice) = std::thread::spawn(|| {
        // SAFETY: setpriority with PRIO_PROCESS and 0 sets the calling thread's nice
        // value on Linux; raising it needs no privilege.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        clean("nice")
    })
    .join()
    .expect("thread");
    println!("fact f_new {}", f != e);
    println!("fact f_nice {nice}");
    // Back on this thread, the umask as it was: neither idle sentinel has this state.
    let (g, nice) = clean("nice");
    println!("fact g_new {}", g != f && g != e);
    println!("fact g_nice {nice}");
    // An idle sentinel killed while it waits is reaped, and the next scenario starts a
    // sentinel of its own.
    // SAFETY: a signal to our own unreaped child, the idle sentinel `g`.
    unsafe { libc::kill(g, libc::SIGKILL) };
    let (h, _) = clean("true");
    println!("fact h_new {}", h != g);
    println!("fact g_reaped {}", gone(g));
    orphan_check::end_idle_sentinels();
    println!("fact h_ended {}", gone(h));
}

/// A victim that is SIGKILLed and reaped when the test ends, however it ends (a
/// failed assertion must not leave it parked).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the victim in `mode`, with reuse as it is by default unless `env` says.
fn victim(mode: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "reuse::reuse_victim", "--ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env("OC_REUSE_VICTIM", mode)
        .env_remove("ORPHAN_CHECK_SENTINEL_START")
        .env_remove("ORPHAN_CHECK_SENTINEL_REUSE")
        .envs(env.iter().copied());
    cmd
}

/// The `fact key value` lines a victim printed (the first may follow the test
/// harness's own `test … ` on its line).
fn facts(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("fact ")?.1.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn run(mode: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let out = victim(mode, env).output().expect("the victim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    facts(&text)
}

#[test]
fn an_idle_sentinel_is_reused_only_when_the_agent_could_not_tell() {
    let f = run("sequence", &[]);
    let expect = |key: &str, value: &str| {
        assert_eq!(f.get(key).map(String::as_str), Some(value), "{key}: {f:?}");
    };
    expect("first_gone", "true");
    expect("a_alive", "true");
    expect("b_reused", "true");
    expect("b_pwd_is_callers", "true");
    expect("c_reused", "true");
    expect("c_gone", "true");
    expect("d_new", "true");
    expect("e_new", "true");
    expect("e_umask", "0077");
    expect("d_gone", "true");
    expect("f_new", "true");
    expect("f_nice", "19");
    expect("g_new", "true");
    expect("g_nice", "0");
    expect("h_new", "true");
    expect("g_reaped", "true");
    expect("h_ended", "true");
}

#[test]
fn without_reuse_every_sentinel_ends_with_its_scenario() {
    let f = run("off", &[("ORPHAN_CHECK_SENTINEL_REUSE", "off")]);
    for key in ["first_gone", "second_gone", "third_new"] {
        assert_eq!(f.get(key).map(String::as_str), Some("true"), "{key}: {f:?}");
    }
}

#[test]
fn a_forked_child_of_the_caller_starts_its_own_sentinel() {
    let f = run("fork", &[]);
    // 0: its own sentinel; 1: it used its parent's idle one; 2: its scenario failed.
    assert_eq!(f.get("child_exit").map(String::as_str), Some("0"), "{f:?}");
    assert_eq!(
        f.get("parent_reuses").map(String::as_str),
        Some("true"),
        "{f:?}"
    );
}

#[test]
fn an_idle_sentinel_ends_when_its_process_exits() {
    let f = run("exit", &[]);
    let idle: i32 = f["idle"].parse().expect("a pid");
    // The `atexit` handler waited for it: gone when the process is.
    assert!(gone(idle), "the idle sentinel {idle} outlived its process");
}

#[test]
fn an_idle_sentinel_ends_when_its_process_is_killed() {
    let mut child = KillOnDrop(
        victim("park", &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the victim starts"),
    );
    let mut out = std::io::BufReader::new(child.0.stdout.take().expect("piped"));
    // The harness's own lines come first; the idle sentinel's pid after them.
    let mut seen = String::new();
    let idle: Option<i32> = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
            break None;
        }
        seen.push_str(&line);
        if let Some(pid) = facts(&line).get("idle") {
            break pid.parse().ok();
        }
    };
    let Some(idle) = idle else {
        panic!("no idle pid in {seen:?}")
    };
    let watched = Watched::new([idle]);
    assert_eq!(watched.len(), 1, "the idle sentinel {idle} is alive");
    // SIGKILL: no `atexit` handler runs; the lifeline closes with the process.
    child.0.kill().expect("kill");
    child.0.wait().expect("wait");
    let left = watched.wait_all_gone(Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "the idle sentinel {idle} outlived its killed process"
    );
}
