//! How an agent repository tests its cleanup under every kill plan with rstest: one
//! generated test per plan, each stating what must hold. (The agent here is the
//! `managed_subprocess` fix from `fixtures/agents/`; put your own command in its place.)

use std::time::Duration;

use orphan_check::fixture::ExampleAgent;
use orphan_check::{free_port, KillPlan, Ready, Scenario};
use rstest::rstest;

#[rstest]
fn managed_subprocess_cleans_up_unless_sigkilled(
    // rstest reads each name with `KillPlan`'s `FromStr`, the CLI's `--kill` parser.
    #[values(
        "sigkill",
        "sigterm",
        "term-then-kill=10s",
        "int-group",
        "kill-group",
        "hup-group"
    )]
    plan: KillPlan,
) {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let p = free_port();
    let mut agent = ExampleAgent::FixManagedSubprocess.command();
    agent.args(["--port", &p.to_string()]);
    let outcome = Scenario::new(agent)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(20))
        .kill(plan)
        .watch_port(p)
        .run()
        .expect("the agent starts");

    // The fix holds whenever the agent gets to run its `finally`: SIGTERM and Ctrl-C.
    // SIGKILL runs nothing, and start_new_session=True puts the server out of reach of
    // a kill of the agent's group; SIGHUP has no handler, so no `finally` either.
    let holds = matches!(
        plan.name().as_str(),
        "sigterm" | "term-then-kill=10s" | "int-group"
    );
    // A deadline is an upper bound: a clean tree answers the moment it is empty, so where
    // the fix holds give the agent's cleanup and exit all a loaded CI machine may need.
    // Where it fails the server lives until the harness kills it: a second shows that.
    let deadline = Duration::from_secs(if holds { 10 } else { 1 });
    let verdict = outcome
        .check_no_survivors(deadline)
        .and_then(|o| o.check_port_free(p, deadline));
    assert_eq!(verdict.is_ok(), holds, "{}", outcome.report());
}
