//! The report: what happened, for people (`Display`, [`Report::coloured`]), for
//! machines (`Serialize`, [`Report::to_json`]) and as one page ([`Report::to_html`]).
//!
//! The text form is the verdict and the facts of the run, a tree of the agent's
//! descendants with fixed-width status words (`SURVIVED`, `EXITED`, `NEEDED SIGKILL`,
//! `ZOMBIE`, `STOPPED`, `GONE`), each survivor's escape and a `hint:`, the watched ports
//! (`PORT HELD`), files written after the kill, and the tail of the agent's output.
//!
//! # JSON schema, version 1
//!
//! The serialized [`Report`] is an object with these members (times in milliseconds,
//! as numbers; absent values are `null`):
//!
//! | member | type | meaning |
//! | --- | --- | --- |
//! | `schema` | string | always `"orphan-check/report"` |
//! | `schema_version` | integer | `1`; bumped on any incompatible change |
//! | `verdict` | `"clean"` \| `"leak"` \| `"did_not_finish"` | leak when anything survived, a port is held, or files were written; `did_not_finish` when the `own-exit` plan's agent was still running at the exit timeout |
//! | `command`, `run_id`, `ready` | string | what ran, its `ORPHAN_CHECK_RUN`, the readiness condition |
//! | `plan` | object | `name` (CLI token), `does`, `simulates` |
//! | `agent_pid` | integer | the agent's pid |
//! | `ready_ms`, `killed_ms` | number | since the start |
//! | `kill_after_ms` | integer | the delay asked for between readiness and the kill |
//! | `deadline_ms` | integer \| null | the deadline of the last survivor verdict asked (null when none was) |
//! | `oracles` | array of string | `subreaper`, `cgroup`, `env-marker`: what was used |
//! | `survivors` | array | process fields (`pid`, `ppid`, `pgid`, `sid`, `state`, `comm`, `cmdline`, `start_ticks`, `uid`, `sig_ignored`, `sig_caught`, `sig_blocked`, `sig_pending`, `pid_in_namespace`) plus `ports`, `original_parent`, `env_marker`, `escapes` (objects tagged by `kind`; every reason that applies, most decisive first), `missed_by`, `hints` (one per escape, same order), `holds_pipes` |
//! | `ports` | array | every watched port, as the report (or the failed verdict) saw it: `port`, `free`, `checked_after_kill_ms`, `holders` (`pid`, `command`, `descendant`), `first_held_ms` (when it was first seen held, since the start, or null) |
//! | `ports_at_ready` | array | every watched port at readiness: `port`, `held_by_tree`, `holders` (`pid`, `command`, `descendant`) |
//! | `files` | array | every file written after the kill under any watched directory: `path`, `change`, `writers` |
//! | `signals` | array | `signal`, `target`, `to`, `at_ms`, `delivered` |
//! | `agent_needed_sigkill` | bool | the agent outlived SIGTERM's grace |
//! | `timeline` | array | `pid`, `command`, `original_parent`, `pgid`, `sid`, `first_seen_ms`, `exit` (`at_ms`, `how`) or null, `reaped_by`, `needed_sigkill`, `survived` |
//! | `timeline_omitted` | integer | entries left out of a very large tree |
//! | `quiet_after_kill_ms` | number \| null | when the tree was empty, after the kill |
//! | `cost` | object \| null | `cpu_usec`, `memory_bytes` of the scenario's cgroup |
//! | `stdout`, `stderr` | object | `head`, `tail` (arrays of lines), `omitted` |
//! | `agent_exit` | object \| null | how the agent itself ended: `at_ms`, `how`, `code` (integer \| null), `signal` (string \| null), `signal_number` (integer \| null), `before_ready` (bool: a launcher that exited while its tree lived on) |
//! | `exit_timeout_ms` | integer \| null | `own-exit` plan only: how long the agent was given to exit by itself |
//! | `stdin` | string | the agent's stdin: `null`, `pipe` or `inherited` |
//! | `stdin_closed_ms` | number \| null | when the harness closed the stdin pipe |
//!
//! Members present only when they apply (absent otherwise, so older readers see the same
//! objects):
//!
//! | member | type | meaning |
//! | --- | --- | --- |
//! | `wrapper` | object | the process started in the agent's place: `role` (`launcher` for the parent-death plan, `init` for `--init`), `pid`, `command` |
//! | `container` | object | container mode: `pid1`, `pid1_command`, `pid1_catches_sigterm`, `pid1_end` (string or null), `stop` (one sentence), `stop_took_whole_grace`, `escape` (`{"kind": "container_init"}`, cause 6, or null), `stop_failed` (a graceful plan whose stop was not graceful), `processes` (`pid`, `pid_in_namespace`, `command`, `end` (string, `alive`, or null when the kernel cannot tell), `killed_by_namespace`) |
//! | `touched` | object | the file changed after the kill: `path`, `mode` (`rewrite`, `append`), `at_ms`, `after_kill_ms`, `error` (string or null) |
//! | `timeline[].pid_in_namespace` | integer | its pid inside its PID namespace, when that is not the harness's (container mode) |
//!
//! In container mode the verdict is also `leak` when a graceful stop (SIGTERM first) was
//! not graceful: PID 1 needed the grace's SIGKILL, or a process inside died by the
//! namespace's SIGKILL.
//!
//! Added within version 1 (absent from older reports): `agent_exit`, `exit_timeout_ms`,
//! `stdin`, `stdin_closed_ms`, the survivors' `holds_pipes` (array of `stdin`, `stdout`,
//! `stderr`: the agent's pipes it still holds), the `verdict` values `did_not_finish` and
//! `lost_track`, the
//! plan names `own-exit`, `close-stdin`, `close-stdin-then-kill=5s`, the signal target
//! `forwarded`, and the escape kinds `launcher_exited` (`agent_status`) and
//! `stdin_eof_ignored`.

// This file holds the report's types and the JSON schema they serialize to; `build.rs`
// builds a report from the run's evidence, `text.rs` renders the text form, with the
// tree in `tree.rs` and the sections after it in `evidence.rs`; `style.rs` colours the
// status words, as they are written, when colour is asked for. The page is `html/`.

mod build;
mod evidence;
mod style;
mod text;
mod tree;

pub(crate) use build::{build, Evidence};
pub(crate) use text::truncate;

pub use crate::files::FileChange;
pub use crate::output::OutputTail;
pub use crate::pipes::Stream;
pub use crate::touch::TouchRecord;

use serde::Serialize;

use crate::container::ContainerReport;
use crate::diagnosis::{Cleanup, Escape};
use crate::kill::SentSignal;
use crate::ports::{PortAtReady, PortVerdict};
use crate::procs::ProcessInfo;

/// The schema version of the JSON form.
pub const SCHEMA_VERSION: u32 = 1;

/// Clean or leak (or, for an agent that had to end by itself, did not finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Nothing survived, every watched port is free, no file was written.
    Clean,
    /// Something survived, a port is held, or a file was written after the kill.
    Leak,
    /// The sentinel died before its tree was empty (something killed it: `kill -9` of
    /// its pid from inside the tree, a broad `pkill`, the OOM killer), so nothing can
    /// prove the tree empty. Never clean. The survivors listed are what the cgroup and
    /// the `ORPHAN_CHECK_RUN` marker still find.
    LostTrack,
    /// [`KillPlan::own_exit`](crate::KillPlan::own_exit): the agent did not exit by
    /// itself within the exit timeout, so nothing could be judged; its tree was killed.
    /// Never clean.
    DidNotFinish,
}

/// How the agent itself ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AgentExit {
    /// When the sentinel reaped it, ms since the start.
    pub at_ms: f64,
    /// "exit status 0", "killed by SIGTERM".
    pub how: String,
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did: `SIGTERM`, …
    pub signal: Option<&'static str>,
    /// The raw number of that signal.
    pub signal_number: Option<i32>,
    /// True when it exited before it was ready, while its tree lived on (a launcher).
    pub before_ready: bool,
}

impl AgentExit {
    pub(crate) fn new(status: i32, at_ms: f64, before_ready: bool) -> Self {
        let signalled = libc::WIFSIGNALED(status);
        AgentExit {
            at_ms,
            how: crate::exit_status::describe_status(status),
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: signalled.then(|| crate::signal::signal_name(libc::WTERMSIG(status))),
            signal_number: signalled.then(|| libc::WTERMSIG(status)),
            before_ready,
        }
    }
}

/// The kill plan, as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanSummary {
    /// CLI token: `sigkill`, `term-then-kill=5s`…
    pub name: String,
    /// "SIGKILL to the agent's pid".
    pub does: String,
    /// "the OOM killer, a budget kill, kill -9".
    pub simulates: &'static str,
}

/// A descendant of the agent still alive at the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Survivor {
    /// What the kernel says about it.
    #[serde(flatten)]
    pub process: ProcessInfo,
    /// TCP ports it listens on.
    pub ports: Vec<u16>,
    /// Its parent when it was first seen (before reparenting).
    pub original_parent: Option<i32>,
    /// Whether its environment still carries `ORPHAN_CHECK_RUN` (`None`: unreadable).
    pub env_marker: Option<bool>,
    /// How it escaped.
    pub escapes: Vec<Escape>,
    /// Which common cleanups would have missed it.
    pub missed_by: Vec<Cleanup>,
    /// One line toward the fix per escape.
    pub hints: Vec<&'static str>,
    /// The agent's stdio pipes it still holds.
    pub holds_pipes: Vec<Stream>,
}

impl Survivor {
    /// The survivor's pid.
    pub fn pid(&self) -> i32 {
        self.process.pid
    }
}

/// How a process of the tree ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExitRecord {
    /// Milliseconds since the start.
    pub at_ms: f64,
    /// "exit status 0", "killed by SIGTERM".
    pub how: String,
}

/// One process of the tree, from first sight to its end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TimelineEntry {
    /// Its pid.
    pub pid: i32,
    /// Its command line, when it was seen alive.
    pub command: String,
    /// Its parent when first seen.
    pub original_parent: Option<i32>,
    /// Its process group when first seen.
    pub pgid: Option<i32>,
    /// Its session when first seen.
    pub sid: Option<i32>,
    /// When it was first seen (snapshots happen at readiness, at the kill and at
    /// verdicts; a process that lived between two of them is known by its exit only).
    pub first_seen_ms: Option<f64>,
    /// How it ended, when the sentinel reaped it.
    pub exit: Option<ExitRecord>,
    /// `sentinel` when the sentinel reaped it, `parent` when it is gone but its own
    /// parent reaped it, `null` while it is alive.
    pub reaped_by: Option<&'static str>,
    /// True when only SIGKILL ended it (the plan's second signal or the cleanup).
    pub needed_sigkill: bool,
    /// True when it was alive at the last verdict.
    pub survived: bool,
    /// Its pid inside its PID namespace, when that is not the harness's (container
    /// mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_in_namespace: Option<i32>,
}

/// The process the harness started in the agent's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WrapperSummary {
    /// `launcher` (the parent-death plan's) or `init` (container mode's `--init`).
    pub role: &'static str,
    /// Its pid (on the host).
    pub pid: i32,
    /// Its command line.
    pub command: String,
}

/// What a leak costs, from the scenario's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cost {
    /// CPU time of everything that ran in the cgroup, microseconds.
    pub cpu_usec: Option<u64>,
    /// Memory in use by the cgroup now, bytes (where the memory controller is enabled).
    pub memory_bytes: Option<u64>,
}

/// Everything a verdict is based on.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Always `orphan-check/report`.
    pub schema: &'static str,
    /// See [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Clean or leak.
    pub verdict: Verdict,
    /// The agent's command line.
    pub command: String,
    /// Its `ORPHAN_CHECK_RUN`.
    pub run_id: String,
    /// The kill plan.
    pub plan: PlanSummary,
    /// The readiness condition.
    pub ready: String,
    /// The agent's pid.
    pub agent_pid: i32,
    /// When it was ready, ms since the start.
    pub ready_ms: f64,
    /// The extra delay between readiness and the kill, ms.
    pub kill_after_ms: u64,
    /// When the plan finished, ms since the start.
    pub killed_ms: f64,
    /// The deadline of the last survivor verdict asked, in ms (`None` when none was).
    pub deadline_ms: Option<u64>,
    /// Which oracles were active.
    pub oracles: Vec<&'static str>,
    /// Descendants alive at the deadline.
    pub survivors: Vec<Survivor>,
    /// Watched ports.
    pub ports: Vec<PortVerdict>,
    /// Watched ports at readiness, before the kill.
    pub ports_at_ready: Vec<PortAtReady>,
    /// Files written after the kill.
    pub files: Vec<FileChange>,
    /// Signals the plan sent.
    pub signals: Vec<SentSignal>,
    /// The agent outlived SIGTERM's grace.
    pub agent_needed_sigkill: bool,
    /// Every process of the tree the harness saw.
    pub timeline: Vec<TimelineEntry>,
    /// Entries left out of the timeline.
    pub timeline_omitted: usize,
    /// When the tree was empty, ms after the kill.
    pub quiet_after_kill_ms: Option<f64>,
    /// What the tree cost, when a cgroup was used.
    pub cost: Option<Cost>,
    /// The agent's stdout.
    pub stdout: OutputTail,
    /// The agent's stderr.
    pub stderr: OutputTail,
    /// The launcher or init started in the agent's place, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<WrapperSummary>,
    /// Container mode: how the stop went, how each process inside ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerReport>,
    /// The file changed after the kill to provoke a watcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touched: Option<TouchRecord>,
    /// How the agent itself ended, when it did.
    pub agent_exit: Option<AgentExit>,
    /// [`KillPlan::own_exit`](crate::KillPlan::own_exit): how long the agent was given
    /// to exit by itself, ms.
    pub exit_timeout_ms: Option<u64>,
    /// The agent's stdin: `null`, `pipe` or `inherited`.
    pub stdin: &'static str,
    /// When the harness closed the agent's stdin pipe, ms since the start.
    pub stdin_closed_ms: Option<f64>,
}

impl Report {
    /// The report as pretty JSON (schema above).
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    ///
    /// let outcome = Scenario::new(Fixture::Listener.command())
    ///     .ready_when(Ready::stdout_line("ready"))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?;
    /// outcome.assert_no_survivors(std::time::Duration::from_secs(2));
    /// let json: serde_json::Value = serde_json::from_str(&outcome.report().to_json()).unwrap();
    /// assert_eq!(json["schema_version"], 1);
    /// assert_eq!(json["verdict"], "clean");
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// True for every verdict but clean (a leak, lost track, an agent that did not
    /// finish): each fails.
    pub fn is_leak(&self) -> bool {
        self.verdict != Verdict::Clean
    }

    /// True when the harness lost track of the tree (see [`Verdict::LostTrack`]).
    pub fn lost_track(&self) -> bool {
        self.verdict == Verdict::LostTrack
    }
}
