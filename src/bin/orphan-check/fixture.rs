//! `orphan-check fixture NAME [ARGS…]`: replaces this process with a fixture program, so
//! any shell or CI job can run the misbehaving programs without knowing where the build
//! put them. `--list` names them all, with the example agents.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use orphan_check::fixture::ExampleAgent;
use orphan_check::Fixture;

use crate::{Fatal, Verdict};

/// Options of `orphan-check fixture`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List the fixtures (name and what each reproduces) and the example agents.
    #[arg(long, conflicts_with = "name")]
    list: bool,

    /// The fixture to run, e.g. `listener`, `shell-fork-tree`.
    #[arg(required_unless_present = "list")]
    name: Option<String>,

    /// Arguments for the fixture, e.g. `--port 3000`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Runs the subcommand; returns only on error (or after `--list`).
pub fn main(args: Args) -> Result<Verdict, Fatal> {
    if args.list {
        print!("{}", listing());
        return Ok(Verdict::Clean);
    }
    let name = args.name.unwrap_or_default();
    let fixture = Fixture::from_name(&name).ok_or_else(|| {
        Fatal(format!(
            "unknown fixture {name:?} (`orphan-check fixture --list` names them all)"
        ))
    })?;
    let path = fixture.path();
    let error = Command::new(&path).args(&args.args).exec();
    Err(Fatal(format!(
        "could not run fixture {name:?} ({}): {error}",
        path.display()
    )))
}

/// The text of `--list`.
fn listing() -> String {
    let width = Fixture::ALL
        .iter()
        .map(|f| f.name().len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("fixtures (orphan-check fixture NAME [ARGS...]):\n");
    for f in Fixture::ALL {
        out.push_str(&format!("  {:<width$}  {}\n", f.name(), f.summary()));
    }
    out.push_str("\nexample agents (python3 or node PATH --port N):\n");
    let width = ExampleAgent::ALL
        .iter()
        .map(|a| a.file().len())
        .max()
        .unwrap_or(0);
    for a in ExampleAgent::ALL {
        out.push_str(&format!("  {:<width$}  {}\n", a.file(), a.path().display()));
    }
    out
}
