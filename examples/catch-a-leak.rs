//! The demo: a Python agent starts a dev server with `shell=True`, and on SIGTERM calls
//! `proc.terminate()`, which reaches only the shell. orphan-check kills the agent the way
//! `kill` does and catches the dev server still holding its port.
//!
//! `cargo run --example catch-a-leak` prints the report and exits 1 (a leak was caught).

use orphan_check::fixture::ExampleAgent;
use orphan_check::{free_port, KillPlan, Ready, Scenario};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = free_port();
    let mut agent = ExampleAgent::Cause4ShellTrue.command();
    agent.args(["--port", &port.to_string()]);

    let outcome = Scenario::new(agent)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .watch_port(port)
        .run()?;

    let survivors = outcome.check_no_survivors(Duration::from_secs(1));
    let port_free = outcome.check_port_free(port, Duration::from_secs(1));
    println!("{}", outcome.report());
    if survivors.is_err() || port_free.is_err() {
        // Dropping the outcome kills the leaked server; the exit status tells CI.
        drop(outcome);
        std::process::exit(1);
    }
    Ok(())
}
