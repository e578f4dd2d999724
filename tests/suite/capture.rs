//! Output capture never stalls the agent and never hangs the harness.

use std::process::Command;
use std::time::Duration;

use orphan_check::scenario::SentinelStart;
use orphan_check::{KillPlan, Ready, Scenario};

#[test]
fn a_flood_of_output_does_not_stall_the_agent() {
    // 4 MB on each stream before the ready line: far more than a pipe holds.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "head -c 4000000 /dev/zero | tr '\\0' x; echo; head -c 4000000 /dev/zero | tr '\\0' y >&2; echo ready; exec sleep 1000",
    ]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(30))
        .run()
        .expect("ready despite the flood");
    outcome.assert_no_survivors(Duration::from_secs(2));
    let stdout = outcome.stdout();
    assert!(stdout.omitted() > 0, "the middle is dropped, not kept");
    assert_eq!(stdout.lines().last(), Some("ready"));
    assert!(outcome.report().to_string().contains("lines omitted"));
}

#[test]
fn a_survivor_holding_the_pipe_does_not_hang_the_harness() {
    // The survivor keeps writing to the captured stdout forever.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "(while :; do echo spam; done) & echo ready; exec sleep 1000",
    ]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    let failure = outcome
        .check_no_survivors(Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(failure.report.survivors.len(), 1, "{failure}");
    assert!(failure.report.stdout.lines().any(|l| l == "spam"));
    drop(outcome);
}

#[test]
fn the_agent_carries_its_run_id() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo \"ready $ORPHAN_CHECK_RUN\"; exec sleep 1000"]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .run()
        .unwrap();
    let line = outcome.stdout().lines().next().map(str::to_owned);
    assert_eq!(line, Some(format!("ready {}", outcome.run_id())));
    outcome.assert_no_survivors(Duration::from_secs(2));
}

#[rstest::rstest]
fn the_agent_starts_with_default_signal_dispositions_and_its_own_group(
    #[values(SentinelStart::Fork, SentinelStart::Exec)] start: SentinelStart,
) {
    // Rust ignores SIGPIPE in the test process, and glibc's posix_spawn (the exec start)
    // ignores its own signals 32 and 33 in the child: the agent must ignore nothing, as
    // from a shell, and it must lead its own process group in the sentinel's session.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "echo \"ready $(grep SigIgn /proc/$$/status)\"; exec sleep 1000",
    ]);
    let outcome = Scenario::new(cmd)
        .sentinel_start(start)
        .ready_when(Ready::stdout_line("ready"))
        .run()
        .unwrap();
    let line = outcome.stdout().lines().next().unwrap().to_owned();
    let mask = u64::from_str_radix(line.rsplit('\t').next().unwrap().trim(), 16).unwrap();
    assert_eq!(mask, 0, "{start:?}: {line}");
    let agent = outcome
        .tree_before_kill()
        .iter()
        .find(|p| p.pid == outcome.agent_pid())
        .unwrap();
    assert_eq!(agent.pgid, agent.pid);
    assert_eq!(agent.sid, outcome.sentinel_pid());
    assert_eq!(agent.ppid, outcome.sentinel_pid());
}

/// The policy, priority (nice 0 is 120) and time slice in `/proc/<pid>/sched` text.
fn sched_of(text: &str) -> (u64, u64, u64) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    (field("policy"), field("prio"), field("se.slice"))
}

fn sched_file(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/sched")).expect("a sched file")
}

/// The sentinel runs with a short time slice (it must wake at once on a CPU a starting
/// agent keeps busy), which the agent must not inherit: it gets the caller's policy,
/// nice value and slice, as from `Command`, however its sentinel started (a new one,
/// forked or exec'd, or an idle one reused), and from a thread with another nice value.
#[rstest::rstest]
fn the_agent_gets_the_callers_scheduling_not_the_sentinels(
    #[values(SentinelStart::Fork, SentinelStart::Exec, SentinelStart::Auto)] start: SentinelStart,
) {
    let run = move || {
        let caller = sched_of(&sched_file("thread-self"));
        let mut seen = Vec::new();
        // Twice: with `Auto` the second runs on the first one's idle sentinel.
        for _ in 0..2 {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "cat /proc/$$/sched; echo ready; exec sleep 1000"]);
            let outcome = Scenario::new(cmd)
                .sentinel_start(start)
                .ready_when(Ready::stdout_line("ready"))
                .run()
                .unwrap();
            let agent = sched_of(&outcome.stdout().to_string());
            let sentinel = sched_of(&sched_file(&outcome.sentinel_pid().to_string()));
            seen.push((agent, sentinel));
        }
        (caller, seen)
    };
    let nicer = move || {
        // SAFETY: setpriority with PRIO_PROCESS and 0 sets this new thread's nice value
        // on Linux; raising it needs no privilege.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 7) };
        run()
    };
    for (caller, seen) in [run(), std::thread::spawn(nicer).join().unwrap()] {
        for (agent, sentinel) in seen {
            assert_eq!(
                agent, caller,
                "{start:?}: the agent's (policy, priority, slice)"
            );
            assert_eq!(sentinel.1, caller.1, "{start:?}: the sentinel's priority");
            assert!(
                sentinel.2 < caller.2,
                "{start:?}: the sentinel's slice {} is the short one (the caller's {})",
                sentinel.2,
                caller.2
            );
        }
    }
}

#[test]
fn the_agent_is_born_in_its_own_cgroup_with_no_signal_ignored_or_blocked() {
    // The agent's clone into its cgroup: it must start in the scenario's cgroup, in its
    // own group, with the dispositions and mask of a shell's child, whatever the test
    // process ignores (this one ignores SIGPIPE, as Rust does, and signal 32, which
    // glibc's `sigaction` refuses to reset).
    if orphan_check::scenario::cgroup_root().is_none() {
        eprintln!("skipped: no writable cgroup v2");
        return;
    }
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "s=/proc/$$/status; echo \"ready $(grep SigIgn $s | cut -f2) $(grep SigBlk $s | cut -f2) $(grep ^0:: /proc/$$/cgroup)\"; exec sleep 1000",
    ]);
    let outcome = Scenario::new(cmd)
        .cgroup(orphan_check::scenario::CgroupMode::Required)
        .ready_when(Ready::stdout_line("ready"))
        .run()
        .unwrap();
    let line = outcome.stdout().lines().next().unwrap().to_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{line}");
    assert_eq!(u64::from_str_radix(words[1], 16), Ok(0), "ignored: {line}");
    assert_eq!(u64::from_str_radix(words[2], 16), Ok(0), "blocked: {line}");
    let dir: String = outcome
        .run_id()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    assert!(
        words[3].ends_with(&format!("/orphan-check-{dir}")),
        "{line}"
    );
    let agent = outcome
        .tree_before_kill()
        .iter()
        .find(|p| p.pid == outcome.agent_pid())
        .unwrap();
    assert_eq!(agent.pgid, agent.pid);
    assert_eq!(agent.ppid, outcome.sentinel_pid());
    outcome.assert_no_survivors(Duration::from_secs(2));
}
