//! The example agents (Python and Node, `fixtures/agents/`) under every kill plan.
//!
//! Each cell states how many processes survive, whether the agent itself is among them,
//! and whether the dev server's port is still held. The reasons, per agent (see also
//! `fixtures/agents/EXPECTED.md`):
//!
//! - cause 1, 2, `node_no_detached`: nothing stops the server; pid plans orphan it, group
//!   plans reach it (it shares the agent's group; a group outlives its leader).
//! - cause 3: cleanup in `finally`/atexit runs on SIGTERM, never on SIGKILL.
//! - cause 4: `shell=True`; SIGKILL leaves the shell and the server, `terminate()` on
//!   SIGTERM kills only the shell.
//! - cause 5: the server catches SIGTERM/SIGINT and holds its port (3 s by default, an
//!   hour here).
//! - cause 6: the launcher forwards SIGTERM to the namespace's PID 1, which has no
//!   handler and so ignores it; SIGKILL of the launcher orphans the whole namespace.
//! - `fix_managed_subprocess`: `start_new_session=True` moves the server out of the
//!   agent's group, so group kills miss it, and SIGHUP runs no `finally`.
//! - `fix_atexit_registry`: the article's SIGTERM lambda cleans up but does not exit the
//!   agent; the same group escape as above.
//! - `node_wrapper_chain`: `npm run dev` is node → npm → sh → node; npm forwards SIGTERM
//!   only to the shell.
//! - `forward_sigterm`: the agent forwards SIGTERM to its server and exits, but the
//!   server ignores SIGTERM; group SIGINT, SIGKILL and SIGHUP reach it directly.
//!
//! No verdict depends on the machine's speed. What a cell expects to survive lives until
//! the harness kills it (an orphan nobody signals, a shutdown or a stop timeout of an
//! hour), so one second after the kill shows it. What a cell expects to end (a handler's
//! cleanup, an interpreter's exit) is given `SETTLE` (common.rs), an upper bound on a loaded
//! machine that costs nothing when it ends sooner: each wait returns at its event.
//!
//! `term-then-kill` has docker stop's 10 s grace for the same reason (a 300 ms one ran
//! out under load, and the SIGKILL cut `fix_atexit_registry`'s cleanup short). The grace
//! ends when the agent exits, so it costs only `fix_atexit_registry`, whose handler
//! returns without exiting. Cause 6 keeps 300 ms: its launcher waits an hour for PID 1,
//! which ignores SIGTERM, so the SIGKILL finds the launcher however late it comes.

use std::time::Duration;

use orphan_check::fixture::ExampleAgent;
use orphan_check::{free_port, Error, KillPlan, Outcome, Ready, Scenario};
use rstest::rstest;

// SETTLE bounds what a cell expects to end (a Python agent's cleanup and exit): one
// second was not enough under load, a `KeyboardInterrupt` exit was still running then.
use crate::common::{expect_held_at_ready, plan, Watched, SETTLE};

/// How long a survivor must outlive the kill to count, for the cells that expect one.
const DEADLINE: Duration = Duration::from_secs(1);

/// Cause 5's server keeps its port an hour after SIGTERM or SIGINT, not 3 s: a slow
/// shutdown that outlasts every wait of the test by construction, so the verdict does
/// not depend on when the harness looks.
const SLOW_FOREVER: &[&str] = &["--slow-shutdown-ms", "3600000"];

/// Cause 6's launcher SIGKILLs the namespace's PID 1 an hour after forwarding SIGTERM or
/// SIGINT, not 10 s: its own timer never ends a cell.
const STOP_NEVER: &[&str] = &["--stop-timeout", "3600"];

fn available(interpreter: &str) -> bool {
    std::process::Command::new(interpreter)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// (survivors, the agent among them, port held)
type Expect = (usize, bool, bool);
const LEAK: Expect = (1, false, true);
const CLEAN: Expect = (0, false, false);

#[rstest]
#[case::cause1_no_cleanup_sigkill(ExampleAgent::Cause1NoCleanup, &[], "sigkill", LEAK)]
#[case::cause1_no_cleanup_sigterm(ExampleAgent::Cause1NoCleanup, &[], "sigterm", LEAK)]
#[case::cause1_no_cleanup_term_then_kill(ExampleAgent::Cause1NoCleanup, &[], "term-then-kill=10s", LEAK)]
#[case::cause1_no_cleanup_int_group(ExampleAgent::Cause1NoCleanup, &[], "int-group", CLEAN)]
#[case::cause1_no_cleanup_kill_group(ExampleAgent::Cause1NoCleanup, &[], "kill-group", CLEAN)]
#[case::cause1_no_cleanup_hup_group(ExampleAgent::Cause1NoCleanup, &[], "hup-group", CLEAN)]
#[case::cause1_exits_sigkill(ExampleAgent::Cause1NoCleanup, &["--exit"], "sigkill", LEAK)]
#[case::cause1_exits_kill_group(ExampleAgent::Cause1NoCleanup, &["--exit"], "kill-group", CLEAN)]
#[case::cause2_exception_path_sigkill(ExampleAgent::Cause2ExceptionPath, &[], "sigkill", LEAK)]
#[case::cause2_exception_path_sigterm(ExampleAgent::Cause2ExceptionPath, &[], "sigterm", LEAK)]
#[case::cause2_exception_path_term_then_kill(ExampleAgent::Cause2ExceptionPath, &[], "term-then-kill=10s", LEAK)]
#[case::cause2_exception_path_int_group(ExampleAgent::Cause2ExceptionPath, &[], "int-group", CLEAN)]
#[case::cause2_exception_path_kill_group(ExampleAgent::Cause2ExceptionPath, &[], "kill-group", CLEAN)]
#[case::cause2_exception_path_hup_group(ExampleAgent::Cause2ExceptionPath, &[], "hup-group", CLEAN)]
#[case::cause3_sigkill_ungrouped_sigkill(ExampleAgent::Cause3SigkillUngrouped, &[], "sigkill", LEAK)]
#[case::cause3_sigkill_ungrouped_sigterm(ExampleAgent::Cause3SigkillUngrouped, &[], "sigterm", CLEAN)]
#[case::cause3_sigkill_ungrouped_term_then_kill(ExampleAgent::Cause3SigkillUngrouped, &[], "term-then-kill=10s", CLEAN)]
#[case::cause3_sigkill_ungrouped_int_group(ExampleAgent::Cause3SigkillUngrouped, &[], "int-group", CLEAN)]
#[case::cause3_sigkill_ungrouped_kill_group(ExampleAgent::Cause3SigkillUngrouped, &[], "kill-group", CLEAN)]
#[case::cause3_sigkill_ungrouped_hup_group(ExampleAgent::Cause3SigkillUngrouped, &[], "hup-group", CLEAN)]
#[case::cause4_shell_true_sigkill(ExampleAgent::Cause4ShellTrue, &[], "sigkill", (2, false, true))]
#[case::cause4_shell_true_sigterm(ExampleAgent::Cause4ShellTrue, &[], "sigterm", LEAK)]
#[case::cause4_shell_true_term_then_kill(ExampleAgent::Cause4ShellTrue, &[], "term-then-kill=10s", LEAK)]
#[case::cause4_shell_true_int_group(ExampleAgent::Cause4ShellTrue, &[], "int-group", CLEAN)]
#[case::cause4_shell_true_kill_group(ExampleAgent::Cause4ShellTrue, &[], "kill-group", CLEAN)]
#[case::cause4_shell_true_hup_group(ExampleAgent::Cause4ShellTrue, &[], "hup-group", CLEAN)]
#[case::cause5_slow_shutdown_sigkill(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "sigkill",
    LEAK
)]
#[case::cause5_slow_shutdown_sigterm(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "sigterm",
    LEAK
)]
#[case::cause5_slow_shutdown_term_then_kill(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "term-then-kill=10s",
    LEAK
)]
#[case::cause5_slow_shutdown_int_group(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "int-group",
    LEAK
)]
#[case::cause5_slow_shutdown_kill_group(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "kill-group",
    CLEAN
)]
#[case::cause5_slow_shutdown_hup_group(
    ExampleAgent::Cause5SlowShutdown,
    SLOW_FOREVER,
    "hup-group",
    CLEAN
)]
#[case::cause6_pid1_sigkill(ExampleAgent::Cause6Pid1, STOP_NEVER, "sigkill", (3, false, true))]
#[case::cause6_pid1_sigterm(ExampleAgent::Cause6Pid1, STOP_NEVER, "sigterm", (4, true, true))]
#[case::cause6_pid1_term_then_kill(ExampleAgent::Cause6Pid1, STOP_NEVER, "term-then-kill=300ms", (3, false, true))]
#[case::cause6_pid1_int_group(ExampleAgent::Cause6Pid1, STOP_NEVER, "int-group", CLEAN)]
#[case::cause6_pid1_kill_group(ExampleAgent::Cause6Pid1, STOP_NEVER, "kill-group", CLEAN)]
#[case::cause6_pid1_hup_group(ExampleAgent::Cause6Pid1, STOP_NEVER, "hup-group", CLEAN)]
#[case::fix_managed_subprocess_sigkill(ExampleAgent::FixManagedSubprocess, &[], "sigkill", LEAK)]
#[case::fix_managed_subprocess_sigterm(ExampleAgent::FixManagedSubprocess, &[], "sigterm", CLEAN)]
#[case::fix_managed_subprocess_term_then_kill(ExampleAgent::FixManagedSubprocess, &[], "term-then-kill=10s", CLEAN)]
#[case::fix_managed_subprocess_int_group(ExampleAgent::FixManagedSubprocess, &[], "int-group", CLEAN)]
#[case::fix_managed_subprocess_kill_group(ExampleAgent::FixManagedSubprocess, &[], "kill-group", LEAK)]
#[case::fix_managed_subprocess_hup_group(ExampleAgent::FixManagedSubprocess, &[], "hup-group", LEAK)]
#[case::fix_atexit_registry_sigkill(ExampleAgent::FixAtexitRegistry, &[], "sigkill", LEAK)]
#[case::fix_atexit_registry_sigterm(ExampleAgent::FixAtexitRegistry, &[], "sigterm", (1, true, false))]
#[case::fix_atexit_registry_term_then_kill(ExampleAgent::FixAtexitRegistry, &[], "term-then-kill=10s", CLEAN)]
#[case::fix_atexit_registry_int_group(ExampleAgent::FixAtexitRegistry, &[], "int-group", CLEAN)]
#[case::fix_atexit_registry_kill_group(ExampleAgent::FixAtexitRegistry, &[], "kill-group", LEAK)]
#[case::fix_atexit_registry_hup_group(ExampleAgent::FixAtexitRegistry, &[], "hup-group", LEAK)]
#[case::node_no_detached_sigkill(ExampleAgent::NodeNoDetached, &[], "sigkill", LEAK)]
#[case::node_no_detached_sigterm(ExampleAgent::NodeNoDetached, &[], "sigterm", LEAK)]
#[case::node_no_detached_term_then_kill(ExampleAgent::NodeNoDetached, &[], "term-then-kill=10s", LEAK)]
#[case::node_no_detached_int_group(ExampleAgent::NodeNoDetached, &[], "int-group", CLEAN)]
#[case::node_no_detached_kill_group(ExampleAgent::NodeNoDetached, &[], "kill-group", CLEAN)]
#[case::node_no_detached_hup_group(ExampleAgent::NodeNoDetached, &[], "hup-group", CLEAN)]
#[case::node_wrapper_chain_sigkill(ExampleAgent::NodeWrapperChain, &[], "sigkill", (3, false, true))]
#[case::node_wrapper_chain_sigterm(ExampleAgent::NodeWrapperChain, &[], "sigterm", (3, false, true))]
#[case::node_wrapper_chain_term_then_kill(ExampleAgent::NodeWrapperChain, &[], "term-then-kill=10s", (3, false, true))]
#[case::node_wrapper_chain_int_group(ExampleAgent::NodeWrapperChain, &[], "int-group", CLEAN)]
#[case::node_wrapper_chain_kill_group(ExampleAgent::NodeWrapperChain, &[], "kill-group", CLEAN)]
#[case::node_wrapper_chain_hup_group(ExampleAgent::NodeWrapperChain, &[], "hup-group", CLEAN)]
#[case::forward_sigterm_sigkill(ExampleAgent::ForwardSigterm, &[], "sigkill", LEAK)]
#[case::forward_sigterm_sigterm(ExampleAgent::ForwardSigterm, &[], "sigterm", LEAK)]
#[case::forward_sigterm_term_then_kill(ExampleAgent::ForwardSigterm, &[], "term-then-kill=10s", LEAK)]
#[case::forward_sigterm_int_group(ExampleAgent::ForwardSigterm, &[], "int-group", CLEAN)]
#[case::forward_sigterm_kill_group(ExampleAgent::ForwardSigterm, &[], "kill-group", CLEAN)]
#[case::forward_sigterm_hup_group(ExampleAgent::ForwardSigterm, &[], "hup-group", CLEAN)]
fn example_agent(
    #[case] agent: ExampleAgent,
    #[case] extra: &[&str],
    #[case] plan_name: &str,
    #[case] expected: Expect,
) {
    let interpreter = agent.command().get_program().to_string_lossy().into_owned();
    if !available(&interpreter) {
        eprintln!("skipped: {interpreter} is not installed");
        return;
    }
    let (count, agent_survives, port_held) = expected;
    let p = free_port();
    let mut cmd = agent.command();
    cmd.args(["--port", &p.to_string()]).args(extra);
    let run = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill(plan(plan_name))
        .watch_port(p)
        .run();
    let outcome = match run {
        Ok(o) => o,
        Err(Error::ExitedBeforeReady { status, stderr, .. }) if status == "exit status 77" => {
            eprintln!(
                "skipped: {}",
                stderr
                    .lines()
                    .find(|l| l.contains("skip"))
                    .unwrap_or("not permitted here")
            );
            return;
        }
        Err(e) => panic!("the agent runs: {e}"),
    };
    // The agents print `ready` once their dev server answers on the port.
    expect_held_at_ready(&outcome, p);
    // What the cell expects to end may take its time on a loaded machine: wait for it
    // (each wait returns at its event), then judge. The agent, unless it survives; the
    // server (the ready line's `child=`), when its port is to be free.
    if !agent_survives {
        Watched::new([outcome.agent_pid()]).wait_all_gone(SETTLE);
    }
    if !port_held {
        Watched::new(ready_child(&outcome)).wait_all_gone(SETTLE);
    }
    // A clean tree answers the moment it is empty.
    let survivors = outcome.survivors_after(if count == 0 { SETTLE } else { DEADLINE });
    let report = || outcome.report();
    assert_eq!(survivors.len(), count, "{}", report());
    assert_eq!(
        survivors
            .iter()
            .any(|s| s.process.pid == outcome.agent_pid()),
        agent_survives,
        "{}",
        report()
    );
    assert_eq!(
        !outcome.port_verdict(p, DEADLINE).free,
        port_held,
        "{}",
        report()
    );
    for s in &survivors {
        assert!(
            !s.escapes.is_empty(),
            "survivor {} has no diagnosis\n{}",
            s.process.pid,
            report()
        );
    }
}

/// The dev server's pid, from the agent's `ready pid=… port=… child=<pid>` line.
fn ready_child(outcome: &Outcome) -> Option<i32> {
    outcome
        .stdout()
        .lines()
        .find(|l| l.starts_with("ready "))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("child=")?.parse().ok())
}

#[test]
fn shell_true_is_named_with_its_cause_and_hint() {
    if !available("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let p = free_port();
    let mut cmd = ExampleAgent::Cause4ShellTrue.command();
    cmd.args(["--port", &p.to_string()]);
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill(KillPlan::sigterm())
        .watch_port(p)
        .run()
        .unwrap();
    let failure = outcome.check_port_free(p, DEADLINE).unwrap_err();
    let text = failure.to_string();
    assert!(
        text.contains("shell=True") && text.contains("(cause 4)"),
        "{text}"
    );
    assert!(text.contains("hint: avoid shell=True"), "{text}");
    assert!(text.contains(&format!("PORT HELD  {p}")), "{text}");
}

#[test]
fn an_exception_before_the_kill_is_named_cause_2() {
    if !available("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let p = free_port();
    let mut cmd = ExampleAgent::Cause2ExceptionPath.command();
    cmd.args(["--port", &p.to_string()]);
    // The agent raises right after its ready line; the kill comes after it has exited.
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill_after(Duration::from_millis(500))
        .kill(KillPlan::sigkill())
        .run()
        .unwrap();
    assert!(
        outcome.plan_record().agent_exited_before_kill,
        "{}",
        outcome.report()
    );
    let survivors = outcome.survivors_after(DEADLINE);
    assert_eq!(survivors.len(), 1, "{}", outcome.report());
    assert!(
        matches!(&survivors[0].escapes[..], [orphan_check::Escape::ExceptionPath { agent_status }] if agent_status == "exit status 1"),
        "{}",
        outcome.report()
    );
    assert!(outcome.stderr().lines().any(|l| l.contains("Traceback")));
}

#[test]
fn a_namespace_init_that_drops_sigterm_is_named_cause_6() {
    if !available("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let p = free_port();
    let mut cmd = ExampleAgent::Cause6Pid1.command();
    cmd.args(["--port", &p.to_string()]);
    let outcome = match Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill(KillPlan::sigterm())
        .run()
    {
        Ok(o) => o,
        Err(Error::ExitedBeforeReady { status, .. }) if status == "exit status 77" => {
            eprintln!("skipped: PID namespaces are not permitted here");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let survivors = outcome.survivors_after(DEADLINE);
    let init = survivors
        .iter()
        .find(|s| s.process.pid_in_namespace == Some(1))
        .expect("the namespace's init survives");
    assert!(
        init.escapes.contains(&orphan_check::Escape::ContainerInit),
        "{}",
        outcome.report()
    );
    assert_eq!(init.escapes.iter().find_map(|e| e.cause()), Some(6));
}
