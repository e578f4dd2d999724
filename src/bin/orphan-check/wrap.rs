//! `orphan-check wrap [--deadline D] -- CMD [ARGS…]`: a leak gate around a test process
//! or a whole suite (`pytest`, `npm test`, a test binary under a nextest wrapper script).
//!
//! CMD is the agent, and it ends by itself ([`KillPlan::own_exit`]). It gets this
//! process's own stdin, stdout and stderr (inherited descriptors, not captured copies, so
//! `isatty` answers as it would without the wrapper), and the signals this process
//! receives (SIGTERM, SIGINT, SIGHUP, SIGQUIT: a runner's timeout, Ctrl-C) are forwarded
//! to CMD's process group, which CMD leads: what a runner's group kill or a terminal's
//! Ctrl-C would have reached without the wrapper. When CMD has exited, every process it started must be gone within
//! `--deadline`; the wrapper then ends as CMD ended (the same exit code, or the same
//! signal). When something outlives it, the report goes to stderr, the survivors are
//! killed, and the exit code is 1 if CMD itself succeeded (CMD's own failure status is
//! kept otherwise: the run fails either way, and the report says why).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use orphan_check::kill::SignalForwarder;
use orphan_check::signal::Signal;
use orphan_check::{KillPlan, Scenario};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::output;
use crate::parse;
use crate::{Fatal, Verdict};

/// The exit codes, as `orphan-check wrap --help` states them.
pub const EXIT_CODES: &str = "\
Exit codes:
  CMD's own  nothing CMD started outlived it: CMD's exit code, or CMD's signal
             (the wrapper kills itself with the same signal)
  1          CMD exited 0, but a process it started was still alive --deadline after
             it (or CMD was still running at --exit-timeout); the report is on stderr
             and the survivors are killed. If CMD itself failed, its status is kept.
  2          the wrapper could not run CMD (not found, not executable); one line on
             stderr: `orphan-check: error: ...`";

/// Options of `orphan-check wrap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long a process CMD started may outlive CMD before it counts as a leak.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse::positive_duration)]
    deadline: Duration,

    /// The longest CMD may run; past it, its tree is killed and the run fails ("did not
    /// finish"). Set the runner's own timeout below it: the runner's signal is forwarded.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse::positive_duration)]
    exit_timeout: Duration,

    /// Also write the report as JSON (schema orphan-check/report, version 1) to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The signals a runner uses to stop a test, forwarded to CMD.
const FORWARDED: [(i32, Signal); 4] = [
    (SIGTERM, Signal::Term),
    (SIGINT, Signal::Int),
    (SIGHUP, Signal::Hup),
    (SIGQUIT, Signal::Quit),
];

/// Runs the subcommand.
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    let forwarder = SignalForwarder::new();
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED.map(|(raw, _)| raw))
        .map_err(|e| Fatal(format!("could not catch the signals to forward: {e}")))?;
    let handle = signals.handle();
    let thread_forwarder = forwarder.clone();
    let forwarding = std::thread::Builder::new()
        .name("orphan-check-forward".into())
        .spawn(move || {
            for raw in signals.forever() {
                if let Some((_, signal)) = FORWARDED.iter().find(|(r, _)| *r == raw) {
                    thread_forwarder.forward(*signal);
                }
            }
        })
        .map_err(|e| Fatal(format!("could not start the signal thread: {e}")))?;

    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let outcome = Scenario::new(command)
        .kill(KillPlan::own_exit())
        .exit_timeout(args.exit_timeout)
        .inherit_stdio()
        .forward_signals(&forwarder)
        .run()?;
    let survivors = outcome.survivors_after(args.deadline);
    // An agent that did not finish was killed by the harness: that is not its status.
    let exit = outcome.agent_exit().filter(|_| !outcome.did_not_finish());
    let failed = outcome.did_not_finish() || !survivors.is_empty();
    // A clean run under a runner's wrapper script is the common case, once per test:
    // it builds no report nobody reads.
    if failed || args.json.is_some() {
        let report = outcome.report();
        if failed {
            output::print_report(&report);
            outcome.kill_remaining(Duration::from_secs(10));
        }
        if let Some(path) = &args.json {
            output::write_file(path, &(report.to_json() + "\n"))?;
        }
    }
    drop(outcome);
    // The clean run's sentinel waits idle for another scenario this process will never
    // run: end it now, so that nothing of the harness outlives this process, whichever
    // way it ends below (dying by CMD's signal runs no `atexit` handler).
    orphan_check::end_idle_sentinels();
    // Nothing is forwarded from now on. The thread is not waited for: this process
    // exits in a moment, and a runner's signal arriving in between finds CMD gone, as
    // it would a moment later. Ending with CMD's signal below does not depend on it
    // (`emulate_default_handler` restores the default action first).
    handle.close();
    drop(forwarding);

    match exit {
        Some(exit) if exit.code == Some(0) || exit.code.is_none() && exit.signal.is_none() => {
            Ok(if failed {
                Verdict::Leak
            } else {
                Verdict::Clean
            })
        }
        Some(exit) => {
            if let Some(raw) = exit.signal_number {
                // End the way CMD ended, so the runner sees "killed by SIGSEGV".
                let _ = signal_hook::low_level::emulate_default_handler(raw);
                return Ok(Verdict::Code(128u8.saturating_add(raw as u8)));
            }
            Ok(Verdict::Code(exit.code.unwrap_or(1).clamp(0, 255) as u8))
        }
        // Still running at the exit timeout: its tree was killed.
        None => Ok(Verdict::Leak),
    }
}
