//! The fixture × kill plan × start matrix, one named test per cell.
//!
//! Each cell states what survives, derived from how the kernel and the shell behave:
//!
//! - SIGKILL cannot be caught; a signal to a pid reaches that process only; a signal to
//!   a process group reaches every member, and only members.
//! - `sigterm-ignorer` ignores SIGTERM (SIGINT and SIGHUP kill it).
//! - `slow-port-holder` catches SIGTERM and SIGINT and keeps its port until killed
//!   (`--hold-ms forever`: it waits for an event that never comes, so it outlasts the
//!   grace and the deadline by construction, not by a margin). SIGHUP kills it.
//! - `shell-fork-tree` is `sh -c 'listener & listener & wait'`: a non-interactive shell
//!   starts background commands with SIGINT and SIGQUIT ignored, so Ctrl-C to the group
//!   kills the shell and leaves both listeners; SIGTERM or SIGKILL to the shell's pid
//!   leaves them too. SIGHUP kills all three.
//! - Started by the driver `agent` (default dispositions): `plain` keeps the child in the
//!   agent's group, so group plans reach it and pid plans do not; `group` (its own
//!   process group) and `session` (setsid) are out of reach of every plan, which only
//!   ever targets the agent or the agent's group.
//!
//! Every listener holds the cell's port, so "the port is held" exactly when something
//! survives. The plan `term_then_kill` has a 300 ms grace; the agent needs the SIGKILL
//! only when it outlives SIGTERM (`sigterm-ignorer`, `slow-port-holder` started
//! directly). No cell cleans up in a handler, so no cell's verdict depends on the grace
//! being long enough: each agent dies of SIGTERM at once, or never exits on it. Nor on
//! the machine's speed: every expected survivor lives until the harness kills it, and
//! what a cell expects to end is waited for (up to `SETTLE`, each exit ending the wait)
//! before the verdict.

use orphan_check::{free_port, Fixture, Ready, Scenario, RUN_ENV};
use rstest::rstest;

use crate::common::{
    expect_held_at_ready, pids_with_env, plan, survivor_names, Watched, DEADLINE, SETTLE,
};

#[derive(Debug, Clone, Copy)]
enum How {
    /// The fixture is the agent.
    Direct,
    /// `agent --how plain`: the child stays in the agent's group.
    Plain,
    /// `agent --how group`: the child leads its own group.
    Group,
    /// `agent --how session`: the child calls setsid().
    Session,
}

fn command(fixture: Fixture, how: How, port: u16) -> std::process::Command {
    let mut child_args = vec!["--port".to_string(), port.to_string()];
    if fixture == Fixture::SlowPortHolder {
        child_args.extend(["--hold-ms".into(), "forever".into()]);
    }
    let how = match how {
        How::Direct => {
            let mut c = fixture.command();
            c.args(&child_args);
            return c;
        }
        How::Plain => "plain",
        How::Group => "group",
        How::Session => "session",
    };
    let mut c = Fixture::Agent.command();
    c.args(["--child", fixture.name(), "--how", how, "--"])
        .args(&child_args);
    c
}

#[rstest]
#[case::listener_direct_sigkill(Fixture::Listener, How::Direct, "sigkill", &[], false)]
#[case::listener_direct_sigterm(Fixture::Listener, How::Direct, "sigterm", &[], false)]
#[case::listener_direct_term_then_kill(Fixture::Listener, How::Direct, "term-then-kill=300ms", &[], false)]
#[case::listener_direct_int_group(Fixture::Listener, How::Direct, "int-group", &[], false)]
#[case::listener_direct_kill_group(Fixture::Listener, How::Direct, "kill-group", &[], false)]
#[case::listener_direct_hup_group(Fixture::Listener, How::Direct, "hup-group", &[], false)]
#[case::sigterm_ignorer_direct_sigkill(Fixture::SigtermIgnorer, How::Direct, "sigkill", &[], false)]
#[case::sigterm_ignorer_direct_sigterm(Fixture::SigtermIgnorer, How::Direct, "sigterm", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_direct_term_then_kill(Fixture::SigtermIgnorer, How::Direct, "term-then-kill=300ms", &[], true)]
#[case::sigterm_ignorer_direct_int_group(Fixture::SigtermIgnorer, How::Direct, "int-group", &[], false)]
#[case::sigterm_ignorer_direct_kill_group(Fixture::SigtermIgnorer, How::Direct, "kill-group", &[], false)]
#[case::sigterm_ignorer_direct_hup_group(Fixture::SigtermIgnorer, How::Direct, "hup-group", &[], false)]
#[case::shell_fork_tree_direct_sigkill(Fixture::ShellForkTree, How::Direct, "sigkill", &["listener", "listener"], false)]
#[case::shell_fork_tree_direct_sigterm(Fixture::ShellForkTree, How::Direct, "sigterm", &["listener", "listener"], false)]
#[case::shell_fork_tree_direct_term_then_kill(Fixture::ShellForkTree, How::Direct, "term-then-kill=300ms", &["listener", "listener"], false)]
#[case::shell_fork_tree_direct_int_group(Fixture::ShellForkTree, How::Direct, "int-group", &["listener", "listener"], false)]
#[case::shell_fork_tree_direct_kill_group(Fixture::ShellForkTree, How::Direct, "kill-group", &[], false)]
#[case::shell_fork_tree_direct_hup_group(Fixture::ShellForkTree, How::Direct, "hup-group", &[], false)]
#[case::slow_port_holder_direct_sigkill(Fixture::SlowPortHolder, How::Direct, "sigkill", &[], false)]
#[case::slow_port_holder_direct_sigterm(Fixture::SlowPortHolder, How::Direct, "sigterm", &["slow-port-holde"], false)]
#[case::slow_port_holder_direct_term_then_kill(Fixture::SlowPortHolder, How::Direct, "term-then-kill=300ms", &[], true)]
#[case::slow_port_holder_direct_int_group(Fixture::SlowPortHolder, How::Direct, "int-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_direct_kill_group(Fixture::SlowPortHolder, How::Direct, "kill-group", &[], false)]
#[case::slow_port_holder_direct_hup_group(Fixture::SlowPortHolder, How::Direct, "hup-group", &[], false)]
#[case::listener_plain_sigkill(Fixture::Listener, How::Plain, "sigkill", &["listener"], false)]
#[case::listener_plain_sigterm(Fixture::Listener, How::Plain, "sigterm", &["listener"], false)]
#[case::listener_plain_term_then_kill(Fixture::Listener, How::Plain, "term-then-kill=300ms", &["listener"], false)]
#[case::listener_plain_int_group(Fixture::Listener, How::Plain, "int-group", &[], false)]
#[case::listener_plain_kill_group(Fixture::Listener, How::Plain, "kill-group", &[], false)]
#[case::listener_plain_hup_group(Fixture::Listener, How::Plain, "hup-group", &[], false)]
#[case::sigterm_ignorer_plain_sigkill(Fixture::SigtermIgnorer, How::Plain, "sigkill", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_plain_sigterm(Fixture::SigtermIgnorer, How::Plain, "sigterm", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_plain_term_then_kill(Fixture::SigtermIgnorer, How::Plain, "term-then-kill=300ms", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_plain_int_group(Fixture::SigtermIgnorer, How::Plain, "int-group", &[], false)]
#[case::sigterm_ignorer_plain_kill_group(Fixture::SigtermIgnorer, How::Plain, "kill-group", &[], false)]
#[case::sigterm_ignorer_plain_hup_group(Fixture::SigtermIgnorer, How::Plain, "hup-group", &[], false)]
#[case::shell_fork_tree_plain_sigkill(Fixture::ShellForkTree, How::Plain, "sigkill", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_plain_sigterm(Fixture::ShellForkTree, How::Plain, "sigterm", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_plain_term_then_kill(Fixture::ShellForkTree, How::Plain, "term-then-kill=300ms", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_plain_int_group(Fixture::ShellForkTree, How::Plain, "int-group", &["listener", "listener"], false)]
#[case::shell_fork_tree_plain_kill_group(Fixture::ShellForkTree, How::Plain, "kill-group", &[], false)]
#[case::shell_fork_tree_plain_hup_group(Fixture::ShellForkTree, How::Plain, "hup-group", &[], false)]
#[case::slow_port_holder_plain_sigkill(Fixture::SlowPortHolder, How::Plain, "sigkill", &["slow-port-holde"], false)]
#[case::slow_port_holder_plain_sigterm(Fixture::SlowPortHolder, How::Plain, "sigterm", &["slow-port-holde"], false)]
#[case::slow_port_holder_plain_term_then_kill(Fixture::SlowPortHolder, How::Plain, "term-then-kill=300ms", &["slow-port-holde"], false)]
#[case::slow_port_holder_plain_int_group(Fixture::SlowPortHolder, How::Plain, "int-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_plain_kill_group(Fixture::SlowPortHolder, How::Plain, "kill-group", &[], false)]
#[case::slow_port_holder_plain_hup_group(Fixture::SlowPortHolder, How::Plain, "hup-group", &[], false)]
#[case::listener_group_sigkill(Fixture::Listener, How::Group, "sigkill", &["listener"], false)]
#[case::listener_group_sigterm(Fixture::Listener, How::Group, "sigterm", &["listener"], false)]
#[case::listener_group_term_then_kill(Fixture::Listener, How::Group, "term-then-kill=300ms", &["listener"], false)]
#[case::listener_group_int_group(Fixture::Listener, How::Group, "int-group", &["listener"], false)]
#[case::listener_group_kill_group(Fixture::Listener, How::Group, "kill-group", &["listener"], false)]
#[case::listener_group_hup_group(Fixture::Listener, How::Group, "hup-group", &["listener"], false)]
#[case::sigterm_ignorer_group_sigkill(Fixture::SigtermIgnorer, How::Group, "sigkill", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_group_sigterm(Fixture::SigtermIgnorer, How::Group, "sigterm", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_group_term_then_kill(Fixture::SigtermIgnorer, How::Group, "term-then-kill=300ms", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_group_int_group(Fixture::SigtermIgnorer, How::Group, "int-group", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_group_kill_group(Fixture::SigtermIgnorer, How::Group, "kill-group", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_group_hup_group(Fixture::SigtermIgnorer, How::Group, "hup-group", &["sigterm-ignorer"], false)]
#[case::shell_fork_tree_group_sigkill(Fixture::ShellForkTree, How::Group, "sigkill", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_group_sigterm(Fixture::ShellForkTree, How::Group, "sigterm", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_group_term_then_kill(Fixture::ShellForkTree, How::Group, "term-then-kill=300ms", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_group_int_group(Fixture::ShellForkTree, How::Group, "int-group", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_group_kill_group(Fixture::ShellForkTree, How::Group, "kill-group", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_group_hup_group(Fixture::ShellForkTree, How::Group, "hup-group", &["listener", "listener", "sh"], false)]
#[case::slow_port_holder_group_sigkill(Fixture::SlowPortHolder, How::Group, "sigkill", &["slow-port-holde"], false)]
#[case::slow_port_holder_group_sigterm(Fixture::SlowPortHolder, How::Group, "sigterm", &["slow-port-holde"], false)]
#[case::slow_port_holder_group_term_then_kill(Fixture::SlowPortHolder, How::Group, "term-then-kill=300ms", &["slow-port-holde"], false)]
#[case::slow_port_holder_group_int_group(Fixture::SlowPortHolder, How::Group, "int-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_group_kill_group(Fixture::SlowPortHolder, How::Group, "kill-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_group_hup_group(Fixture::SlowPortHolder, How::Group, "hup-group", &["slow-port-holde"], false)]
#[case::listener_session_sigkill(Fixture::Listener, How::Session, "sigkill", &["listener"], false)]
#[case::listener_session_sigterm(Fixture::Listener, How::Session, "sigterm", &["listener"], false)]
#[case::listener_session_term_then_kill(Fixture::Listener, How::Session, "term-then-kill=300ms", &["listener"], false)]
#[case::listener_session_int_group(Fixture::Listener, How::Session, "int-group", &["listener"], false)]
#[case::listener_session_kill_group(Fixture::Listener, How::Session, "kill-group", &["listener"], false)]
#[case::listener_session_hup_group(Fixture::Listener, How::Session, "hup-group", &["listener"], false)]
#[case::sigterm_ignorer_session_sigkill(Fixture::SigtermIgnorer, How::Session, "sigkill", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_session_sigterm(Fixture::SigtermIgnorer, How::Session, "sigterm", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_session_term_then_kill(Fixture::SigtermIgnorer, How::Session, "term-then-kill=300ms", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_session_int_group(Fixture::SigtermIgnorer, How::Session, "int-group", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_session_kill_group(Fixture::SigtermIgnorer, How::Session, "kill-group", &["sigterm-ignorer"], false)]
#[case::sigterm_ignorer_session_hup_group(Fixture::SigtermIgnorer, How::Session, "hup-group", &["sigterm-ignorer"], false)]
#[case::shell_fork_tree_session_sigkill(Fixture::ShellForkTree, How::Session, "sigkill", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_session_sigterm(Fixture::ShellForkTree, How::Session, "sigterm", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_session_term_then_kill(Fixture::ShellForkTree, How::Session, "term-then-kill=300ms", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_session_int_group(Fixture::ShellForkTree, How::Session, "int-group", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_session_kill_group(Fixture::ShellForkTree, How::Session, "kill-group", &["listener", "listener", "sh"], false)]
#[case::shell_fork_tree_session_hup_group(Fixture::ShellForkTree, How::Session, "hup-group", &["listener", "listener", "sh"], false)]
#[case::slow_port_holder_session_sigkill(Fixture::SlowPortHolder, How::Session, "sigkill", &["slow-port-holde"], false)]
#[case::slow_port_holder_session_sigterm(Fixture::SlowPortHolder, How::Session, "sigterm", &["slow-port-holde"], false)]
#[case::slow_port_holder_session_term_then_kill(Fixture::SlowPortHolder, How::Session, "term-then-kill=300ms", &["slow-port-holde"], false)]
#[case::slow_port_holder_session_int_group(Fixture::SlowPortHolder, How::Session, "int-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_session_kill_group(Fixture::SlowPortHolder, How::Session, "kill-group", &["slow-port-holde"], false)]
#[case::slow_port_holder_session_hup_group(Fixture::SlowPortHolder, How::Session, "hup-group", &["slow-port-holde"], false)]
fn matrix(
    #[case] fixture: Fixture,
    #[case] how: How,
    #[case] plan_name: &str,
    #[case] expected: &[&str],
    #[case] agent_needed_sigkill: bool,
) {
    let port = free_port();
    let outcome = Scenario::new(command(fixture, how, port))
        .ready_when(Ready::stdout_line("ready"))
        .kill(plan(plan_name))
        .watch_port(port)
        .run()
        .expect("the scenario runs");
    expect_held_at_ready(&outcome, port);

    // What the cell expects to end (each process of the tree at readiness whose name is
    // not among the expected survivors) may take its time on a loaded machine: wait for
    // it, up to an upper bound that each exit ends early. What it expects to survive
    // lives until the harness kills it, so the deadline after the kill still shows it.
    let ending = outcome
        .tree_before_kill()
        .iter()
        .filter(|p| !expected.contains(&p.comm.as_str()))
        .map(|p| p.pid);
    Watched::new(ending).wait_all_gone(SETTLE);
    let survivors = survivor_names(&outcome);
    assert_eq!(survivors, expected, "survivors\n{}", outcome.report());

    let port_free = outcome.port_verdict(port, DEADLINE).free;
    assert_eq!(
        port_free,
        expected.is_empty(),
        "port {port}\n{}",
        outcome.report()
    );

    assert_eq!(
        outcome.plan_record().agent_needed_sigkill,
        agent_needed_sigkill,
        "{}",
        outcome.report()
    );

    let report = outcome.report();
    assert_eq!(report.is_leak(), !expected.is_empty());
    for s in &report.survivors {
        assert!(
            !s.escapes.is_empty(),
            "survivor {} has no diagnosis\n{report}",
            s.process.pid
        );
        assert_eq!(s.hints.len(), s.escapes.len());
    }
    if expected.is_empty() {
        assert!(
            report.quiet_after_kill_ms.is_some(),
            "a clean tree is reported quiet\n{report}"
        );
    }
    // Dropping the outcome must leave nothing of the run: every survivor is gone (and
    // reaped) by the time drop returns, and no process carries the run's marker. The
    // sentinel of a leak is gone too; the sentinel of a clean tree (reported empty) may
    // wait idle for another scenario, holding nothing of this one.
    let mut pids: Vec<i32> = report.survivors.iter().map(|s| s.process.pid).collect();
    if !expected.is_empty() {
        pids.push(outcome.sentinel_pid());
    }
    let run_id = outcome.run_id().to_owned();
    drop(outcome);
    for pid in pids {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_err(),
            "pid {pid} outlived the outcome"
        );
    }
    let left = pids_with_env(RUN_ENV, &run_id);
    assert!(
        left.is_empty(),
        "processes of the run outlived it: {left:?}"
    );
}
