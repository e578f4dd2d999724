//! The `orphan-check` command line.
//!
//! ```text
//! orphan-check run [OPTIONS] -- COMMAND [ARGS...]   launch, kill by plan, report
//! orphan-check fixture NAME [ARGS...]               run a fixture (or --list them)
//! orphan-check sweep [--run PREFIX] [--kill]        find (and end) leftovers of runs
//! orphan-check matrix [--wrapper W]...              every fixture x wrapper x plan
//! orphan-check wrap [--deadline D] -- CMD [ARGS...]  run CMD as is; fail if it leaks
//! ```
//!
//! `wrap` passes CMD's exit status through; its own codes are in `wrap --help`.
//!
//! # Exit codes
//!
//! - `0`: clean. Nothing survived, every watched port is free, no watched file was
//!   written after the kill (`sweep`: nothing left, or all of it ended; `matrix`: the
//!   table was made).
//! - `1`: a leak. A descendant survived the deadline, a port was still held, or files
//!   were written after the kill (`sweep`: leftovers found and not all ended). Also the
//!   verdict "did not finish": with `--kill own-exit` the agent was still running at
//!   `--exit-timeout` (its tree is killed; never clean).
//! - `2`: the harness could not do its job: bad arguments, the agent missing or not
//!   executable, never ready, a watched port busy before the start. One line on stderr
//!   says why: `orphan-check: error: …`.

mod container_matrix;
mod fixture;
mod matrix;
mod output;
mod parse;
mod rng;
mod run;
mod sweep;
mod wrap;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The exit codes, as `--help` states them.
const EXIT_CODES: &str = "\
Exit codes:
  0  clean: nothing survived, no port held, no file written after the kill
  1  leak: a survivor, a held port, or files written after the kill; or, with
     --kill own-exit, the agent did not finish within --exit-timeout
  2  the harness could not do its job (bad arguments, agent missing, never ready,
     port busy before the start), or it lost track of the tree (the sentinel was
     killed before the tree was empty: never clean); stderr says why in one line:
     `orphan-check: error: ...`";

/// Prove a program cleans up after itself: launch it under a subreaper, kill it the way
/// real life does, and report every descendant that survived.
#[derive(Debug, Parser)]
#[command(name = "orphan-check", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Launch COMMAND, wait until it is ready, kill it by plan, report what survived.
    #[command(after_help = EXIT_CODES)]
    Run(Box<run::Args>),
    /// Run one of the misbehaving fixture programs (replaces this process), or list them.
    Fixture(fixture::Args),
    /// Find processes left by earlier runs (they carry ORPHAN_CHECK_RUN) and end them.
    #[command(after_help = sweep::EXIT_CODES)]
    Sweep(sweep::Args),
    /// Run every escape fixture under each wrapper and kill plan; print what survived.
    Matrix(matrix::Args),
    /// Run CMD with its stdio and exit status passed through; fail when a process it
    /// started outlives it (a leak gate for test suites and nextest wrapper scripts).
    #[command(after_help = wrap::EXIT_CODES)]
    Wrap(wrap::Args),
}

/// How a subcommand ended, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 0: nothing leaked.
    Clean,
    /// 1: something leaked.
    Leak,
    /// Another code: `wrap` passing on its command's exit status.
    Code(u8),
}

/// The harness could not do its job (exit code 2); the message is one line.
#[derive(Debug)]
pub struct Fatal(pub String);

impl From<orphan_check::Error> for Fatal {
    fn from(e: orphan_check::Error) -> Fatal {
        Fatal(e.to_string())
    }
}

/// Exit code 2: the harness could not do its job.
const HARNESS_FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Cmd::Run(args) => run::main(*args),
        Cmd::Fixture(args) => fixture::main(args),
        Cmd::Sweep(args) => sweep::main(args),
        Cmd::Matrix(args) => matrix::main(args),
        Cmd::Wrap(args) => wrap::main(args),
    };
    match result {
        Ok(Verdict::Clean) => ExitCode::SUCCESS,
        Ok(Verdict::Leak) => ExitCode::from(1),
        Ok(Verdict::Code(code)) => ExitCode::from(code),
        Err(Fatal(message)) => {
            eprintln!("orphan-check: error: {message}");
            ExitCode::from(HARNESS_FAILED)
        }
    }
}

/// Prints clap's message in our form (`orphan-check: error: …`), or help and version as
/// they are.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(HARNESS_FAILED)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("orphan-check: error: {text}");
    if !text.ends_with('\n') {
        eprintln!();
    }
    ExitCode::from(HARNESS_FAILED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
