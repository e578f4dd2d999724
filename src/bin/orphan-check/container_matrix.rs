//! The matrix's container section: each wrapper as PID 1 of a container (as with
//! `docker run --init`), or no wrapper (the agent itself is PID 1, as without `--init`),
//! stopped by `docker-stop` and killed by `docker kill`.
//!
//! Nothing survives a container (when PID 1 dies the kernel SIGKILLs the namespace), so
//! a cell says how the stop went: `graceful` (PID 1 exited on SIGTERM and every process
//! inside exited on its own), `took the grace` (PID 1 ignored SIGTERM and only the
//! grace's SIGKILL ended it: cause 6), `N killed by ns` (processes the namespace's
//! SIGKILL took instead of exiting on their own), and for `docker kill` `only PID 1`
//! when there was nothing else inside.

use std::process::Command;
use std::time::Duration;

use orphan_check::fixture::ExampleAgent;
use orphan_check::{Error, Fixture, KillPlan, Ready, Scenario};

/// One agent of the container table.
struct Row {
    label: &'static str,
    command: fn(u16) -> Command,
    /// Ready by its stdout line (else by its port).
    line: bool,
}

const ROWS: [Row; 4] = [
    Row {
        label: "`listener`",
        command: |port| fixture(Fixture::Listener, &["--port", &port.to_string()]),
        line: true,
    },
    Row {
        label: "`agent --child listener`",
        command: |port| {
            fixture(
                Fixture::Agent,
                &["--child", "listener", "--", "--port", &port.to_string()],
            )
        },
        line: true,
    },
    Row {
        label: "`agent --child listener --on-term forward`",
        command: |port| {
            fixture(
                Fixture::Agent,
                &[
                    "--child",
                    "listener",
                    "--on-term",
                    "forward",
                    "--",
                    "--port",
                    &port.to_string(),
                ],
            )
        },
        line: true,
    },
    Row {
        label: "Python agent (`cause6_pid1.py --inner`: `Popen`, no handlers)",
        command: |port| {
            let mut c = ExampleAgent::Cause6Pid1.command();
            c.args(["--inner", "--port", &port.to_string()]);
            c
        },
        line: false,
    },
];

fn fixture(f: Fixture, args: &[&str]) -> Command {
    let mut c = f.command();
    c.args(args);
    c
}

/// The container section, in Markdown: one table, a row per agent, a column per
/// wrapper (as PID 1) and plan.
pub fn markdown(wrappers: &[Vec<String>], grace: Duration, deadline: Duration) -> String {
    let plans = [KillPlan::container_stop(grace), KillPlan::sigkill()];
    let mut out = String::from(
        "\n## Wrappers as PID 1 of a container\n\nThe same wrappers as PID 1 of a new PID \
         namespace (`orphan-check run --container --init WRAPPER`), with the agent under \
         them; `no wrapper`: the agent itself is PID 1. `docker-stop` is SIGTERM to PID 1, \
         the grace, then SIGKILL; `sigkill` is `docker kill`. `graceful`: PID 1 exited on \
         SIGTERM and everything inside exited on its own; `took the grace`: PID 1 ignored \
         SIGTERM (no handler: the kernel drops it) and only the grace's SIGKILL ended it \
         (cause 6); `N killed by ns`: processes the namespace's SIGKILL took instead of \
         exiting on their own (for `sigkill`, everything but PID 1; `only PID 1`: there was \
         nothing else).\n\n",
    );
    out.push_str("| agent |");
    for w in wrappers {
        for p in &plans {
            let label = if w.is_empty() {
                "no wrapper".to_string()
            } else {
                w.join(" ")
            };
            out.push_str(&format!(" {label}, {} |", p.name()));
        }
    }
    out.push_str("\n|---|");
    for _ in 0..wrappers.len() * plans.len() {
        out.push_str("---|");
    }
    out.push('\n');
    for row in &ROWS {
        out.push_str(&format!("| {} |", row.label));
        for w in wrappers {
            for p in &plans {
                out.push_str(&format!(" {} |", cell(row, w, *p, deadline)));
            }
        }
        out.push('\n');
    }
    out
}

/// One container scenario, as a cell's text.
fn cell(row: &Row, wrapper: &[String], plan: KillPlan, deadline: Duration) -> String {
    for _ in 0..5 {
        let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", 0)) else {
            return "error: no free port".into();
        };
        let port = listener.local_addr().map_or(0, |a| a.port());
        drop(listener);
        let mut s = Scenario::new((row.command)(port))
            .container()
            .ready_when(if row.line {
                Ready::stdout_line("ready")
            } else {
                Ready::port(port)
            })
            .watch_port(port)
            .kill(plan);
        if let Some((tool, rest)) = wrapper.split_first() {
            let mut init = Command::new(tool);
            init.args(rest);
            s = s.init(init);
        }
        let outcome = match s.run() {
            Ok(o) => o,
            Err(Error::PortBusy { .. }) => continue,
            Err(Error::ContainerUnavailable { reason }) => return format!("skipped: {reason}"),
            Err(e) => return format!("error: {e}"),
        };
        let _ = outcome.check_graceful_stop(deadline.max(plan.grace().unwrap_or_default() * 2));
        let Some(c) = outcome.container_report() else {
            return "error: no container report".into();
        };
        outcome.kill_remaining(Duration::from_secs(10));
        let mut words = Vec::new();
        if c.stop_took_whole_grace {
            words.push("took the grace".to_string());
        }
        let n = c.killed_by_namespace();
        if n > 0 {
            words.push(format!("{n} killed by ns"));
        }
        if words.is_empty() {
            // A SIGKILL of PID 1 is never graceful; it took only PID 1.
            words.push(if plan.grace().is_some() {
                "graceful".into()
            } else {
                "only PID 1".into()
            });
        }
        return words.join(", ");
    }
    "error: no free port after 5 tries".into()
}
