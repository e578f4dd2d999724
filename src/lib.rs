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
mod container;
mod cost_trace;
mod diagnosis;
mod error;
mod exit_status;
mod files;
mod fixture;
mod free_port;
mod html;
mod kill;
mod lost;
mod netlink;
mod outcome;
mod output;
mod pipes;
mod plan_name;
mod ports;
mod procs;
mod ready;
mod report;
mod scenario;
mod sentinel;
pub mod sweep;
pub mod time;
mod touch;
mod tracker;

pub use cgroup::{writable_root as cgroup_root, CgroupMode};
pub use container::{ContainerReport, NamespacedProcess};
pub use diagnosis::{Cleanup, Escape};
pub use error::Error;
pub use exit_status::ExitStatus;
pub use files::FileChange;
pub use fixture::{fixture_dir, ExampleAgent, Fixture};
pub use free_port::{free_port, try_free_port};
pub use kill::{
    signal_name, KillPlan, PlanRecord, Recipient, SentSignal, Signal, SignalForwarder, Target,
};
pub use outcome::{Failure, FailureReason, Outcome};
pub use output::OutputTail;
pub use pipes::Stream;
pub use plan_name::ParsePlanError;
pub use ports::{PortAtReady, PortHolder, PortVerdict};
pub use procs::ProcessInfo;
pub use ready::Ready;
pub use report::{
    AgentExit, Cost, ExitRecord, PlanSummary, Report, Survivor, TimelineEntry, Verdict,
    SCHEMA_VERSION,
};
pub use scenario::{Scenario, Stdin};
pub use sentinel::SentinelStart;
pub use touch::{TouchMode, TouchRecord, TOUCH_LINE};

/// The environment variable every agent gets: `ORPHAN_CHECK_RUN=<unique id>`.
pub const RUN_ENV: &str = "ORPHAN_CHECK_RUN";

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
