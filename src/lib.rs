//! orphan-check proves that a program cleans up after itself.
//!
//! It launches an *agent* (an AI coding agent, a dev-server launcher, any program that
//! starts subprocesses) under a *sentinel* that owns its whole process tree, kills it the
//! way real life does (SIGKILL from an OOM killer, SIGTERM, Ctrl-C to the group,
//! `docker stop`), and then shows with evidence whether any descendant survived, how it
//! escaped, and whether the ports and files the tree used went quiet within a deadline.
//!
//! ```
//! use orphan_check::{Fixture, KillPlan, Ready, Scenario};
//! use std::time::Duration;
//!
//! // `shell-fork-tree` is what `Popen("a & b & wait", shell=True)` makes. Killing the
//! // shell with SIGTERM leaves its two children running: a leak, with evidence.
//! let outcome = Scenario::new(Fixture::ShellForkTree.command())
//!     .ready_when(Ready::stdout_line("ready"))
//!     .kill(KillPlan::sigterm())
//!     .run()?;
//! let failure = outcome.check_no_survivors(Duration::from_millis(300)).unwrap_err();
//! assert_eq!(failure.report.survivors.len(), 2);
//! assert!(failure.to_string().contains("shell=True"));
//!
//! // A group kill reaches the whole job: clean.
//! Scenario::new(Fixture::ShellForkTree.command())
//!     .ready_when(Ready::stdout_line("ready"))
//!     .kill(KillPlan::sigkill_group())
//!     .run()?
//!     .assert_no_survivors(Duration::from_secs(2));
//! # Ok::<(), orphan_check::Error>(())
//! ```
//!
//! The flow, one way: [`Scenario`] → sentinel → [`KillPlan`] → observe → [`Outcome`] →
//! [`Report`]. Dropping the [`Outcome`] kills whatever is left; so does the sentinel on
//! its own when the test process dies, so the harness never leaks what it looks for.
//!
//! Linux only: it relies on `PR_SET_CHILD_SUBREAPER`, `/proc`, pidfds and (optionally)
//! cgroup v2.
//!
//! # Where things are
//!
//! The flow's types are at the root; everything else is in the module of its concept,
//! in the flow's order: [`scenario`] (the builder, readiness, stdin, the cgroup layer),
//! [`kill`] (the plans, what they sent, forwarding a caller's signals) with
//! [`signal`], [`outcome`] (the verdicts and the [`Failure`] they return), [`report`]
//! (the report and what it holds), with [`diagnosis`] (how a survivor escaped),
//! [`ports`], [`container`] and [`process`] for the evidence; then [`fixture`] (the
//! programs that misbehave on purpose), [`sweep`] (what runs left behind) and [`time`]
//! (durations as people write them).
//!
//! # Features
//!
//! - **`cli`** (default): the `orphan-check` command and what only it needs (clap, the
//!   JUnit writer, signal forwarding). A crate that uses the library in its tests turns
//!   it off, and its `cargo test` compiles the library alone:
//!
//! ```toml
//! [dev-dependencies]
//! orphan-check = { version = "0.1", default-features = false }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "orphan-check works on Linux only: it needs PR_SET_CHILD_SUBREAPER, /proc and pidfds"
);

// Wrappers of internal functions for benches/speed.rs: not part of the API.
#[doc(hidden)]
pub mod bench;
mod cgroup;
pub mod container;
mod cost_trace;
pub mod diagnosis;
mod error;
mod exit_status;
mod files;
pub mod fixture;
mod html;
pub mod kill;
mod lost;
mod netlink;
pub mod outcome;
mod output;
mod pipes;
pub mod ports;
mod procs;
mod ready;
pub mod report;
mod run;
pub mod scenario;
mod sentinel;
pub mod signal;
pub mod sweep;
pub mod time;
mod touch;
mod tracker;

/// Processes as `/proc` shows them, and how one ended.
pub mod process {
    pub use crate::exit_status::ExitStatus;
    pub use crate::procs::ProcessInfo;
}

// The flow's types, the ones a first test names; everything else is in the module of
// its concept.
pub use diagnosis::Escape;
pub use error::Error;
pub use fixture::Fixture;
pub use kill::KillPlan;
pub use outcome::{Failure, Outcome};
pub use ports::free_port;
pub use report::{Report, Survivor, Verdict};
pub use scenario::{Ready, Scenario};
pub use sentinel::end_idle_sentinels;

/// The environment variable every agent gets: `ORPHAN_CHECK_RUN=<unique id>`.
pub const RUN_ENV: &str = "ORPHAN_CHECK_RUN";

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
