//! The report: what happened, for people (`Display`) and for machines (`Serialize`).
//!
//! The text form is a tree of the agent's descendants with fixed-width status words
//! (`SURVIVED`, `EXITED`, `NEEDED SIGKILL`, `ZOMBIE`, `STOPPED`, `GONE`), each survivor's
//! escape and a `hint:`, the watched ports (`PORT HELD`), files written after the kill,
//! and the tail of the agent's output.
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
//! | `deadline_ms` | integer \| null | the survivor deadline last checked |
//! | `oracles` | array of string | `subreaper`, `cgroup`, `env-marker`: what was used |
//! | `survivors` | array | process fields (`pid`, `ppid`, `pgid`, `sid`, `state`, `comm`, `cmdline`, `start_ticks`, `uid`, `sig_ignored`, `sig_caught`, `sig_blocked`, `sig_pending`, `pid_in_namespace`) plus `ports`, `original_parent`, `env_marker`, `escapes` (objects tagged by `kind`; every reason that applies, most decisive first), `missed_by`, `hints` (one per escape, same order), `holds_pipes` |
//! | `ports` | array | `port`, `free`, `checked_after_kill_ms`, `holders` (`pid`, `command`, `descendant`), `first_held_ms` (when it was first seen held, since the start, or null) |
//! | `ports_at_ready` | array | every watched port at readiness: `port`, `held_by_tree`, `holders` (`pid`, `command`, `descendant`) |
//! | `files` | array | `path`, `change`, `writers` |
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

use serde::Serialize;
use std::fmt;

use crate::container::ContainerReport;
use crate::diagnosis::{Cleanup, Escape};
use crate::files::FileChange;
use crate::kill::SentSignal;
use crate::output::OutputTail;
use crate::pipes::Stream;
use crate::ports::{PortAtReady, PortVerdict};
use crate::procs::ProcessInfo;
use crate::touch::TouchRecord;

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
            signal: signalled.then(|| crate::kill::signal_name(libc::WTERMSIG(status))),
            signal_number: signalled.then(|| libc::WTERMSIG(status)),
            before_ready,
        }
    }
}

/// The kill plan, as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
pub struct ExitRecord {
    /// Milliseconds since the start.
    pub at_ms: f64,
    /// "exit status 0", "killed by SIGTERM".
    pub how: String,
}

/// One process of the tree, from first sight to its end.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
pub struct Cost {
    /// CPU time of everything that ran in the cgroup, microseconds.
    pub cpu_usec: Option<u64>,
    /// Memory in use by the cgroup now, bytes (where the memory controller is enabled).
    pub memory_bytes: Option<u64>,
}

/// Everything a verdict is based on.
#[derive(Debug, Clone, Serialize)]
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
    /// The survivor deadline last checked, in ms.
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

    /// The report as one self-contained HTML page, a picture of the run for a CI
    /// artifact: every process on a time axis from its first sighting to its exit, the
    /// readiness and kill moments, each watched port's interval held, survivors in red
    /// with their escape and hint. No script and no external asset: the page's own
    /// content security policy forbids both.
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    /// use std::time::Duration;
    ///
    /// let outcome = Scenario::new(Fixture::ShellForkTree.command())
    ///     .ready_when(Ready::stdout_line("ready"))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?;
    /// outcome.survivors_after(Duration::from_millis(300));
    /// let page = outcome.report().to_html();
    /// assert!(page.starts_with("<!DOCTYPE html>"));
    /// assert!(page.contains(r#"data-verdict="leak""#));
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        crate::html::render(self)
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

    fn headline(&self) -> String {
        let mut parts = Vec::new();
        if !self.survivors.is_empty() {
            let n = self.survivors.len();
            parts.push(format!(
                "{n} process{} survived{}",
                if n == 1 { "" } else { "es" },
                self.deadline_ms
                    .map(|d| format!(
                        " {}",
                        crate::time::format_duration(std::time::Duration::from_millis(d))
                    ))
                    .unwrap_or_default()
            ));
        }
        let held: Vec<String> = self
            .ports
            .iter()
            .filter(|p| !p.free)
            .map(|p| p.port.to_string())
            .collect();
        if !held.is_empty() {
            parts.push(format!("port {} still held", held.join(", ")));
        }
        if !self.files.is_empty() {
            parts.push(format!("{} file(s) written", self.files.len()));
        }
        if let Some(c) = &self.container {
            if c.stop_took_whole_grace {
                parts.push("PID 1 was stopped only by the grace period's SIGKILL (cause 6)".into());
            }
            let n = c.killed_by_namespace();
            if n > 0 && c.stop_failed {
                parts.push(format!(
                    "{n} process{} died by the namespace's SIGKILL",
                    if n == 1 { "" } else { "es" }
                ));
            }
        }
        match self.verdict {
            Verdict::DidNotFinish => format!(
                "orphan-check: DID NOT FINISH: the agent did not exit by itself within {}; its tree was killed, nothing could be judged",
                crate::time::format_duration(std::time::Duration::from_millis(
                    self.exit_timeout_ms.unwrap_or(0)
                ))
            ),
            Verdict::Clean => format!(
                "orphan-check: CLEAN: nothing survived {} ({})",
                self.plan.does, self.plan.simulates
            ),
            Verdict::Leak => format!(
                "orphan-check: LEAK: {} after {} ({})",
                parts.join("; "),
                self.plan.does,
                self.plan.simulates
            ),
            Verdict::LostTrack => format!(
                "orphan-check: LOST TRACK: the sentinel died before the tree was empty, so \
                 nothing proves it clean; {} found by the other oracles after {} ({})",
                if parts.is_empty() {
                    "nothing".to_string()
                } else {
                    parts.join("; ")
                },
                self.plan.does,
                self.plan.simulates
            ),
        }
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        writeln!(f, "  command  {}", self.command)?;
        writeln!(f, "  run      ORPHAN_CHECK_RUN={}", self.run_id)?;
        if let Some(exit) = self.agent_exit.as_ref().filter(|e| e.before_ready) {
            writeln!(
                f,
                "  exited   the agent itself at +{} ({}), before it was ready; its tree lived on",
                ms(exit.at_ms),
                exit.how
            )?;
        }
        writeln!(f, "  ready    at +{} ({})", ms(self.ready_ms), self.ready)?;
        if let Some(closed) = self.stdin_closed_ms {
            writeln!(f, "  stdin    closed at +{}", ms(closed))?;
        }
        let by_member = self.signals.iter().any(|s| s.target == "member");
        let sent: Vec<String> = self
            .signals
            .iter()
            .map(|s| {
                format!(
                    "{} to {} {} at +{}{}",
                    s.signal,
                    s.target,
                    s.to.abs(),
                    ms(s.at_ms),
                    match (s.delivered, s.target) {
                        (true, _) => "",
                        (false, "group" | "forwarded") if by_member => {
                            " (its leader is gone: signalled member by member)"
                        }
                        (false, "group") => " (no process left in that group)",
                        (false, "agent")
                            if self.agent_exit.as_ref().is_some_and(|e| e.at_ms <= s.at_ms) =>
                        {
                            " (already gone: the agent had exited, nothing to signal)"
                        }
                        (false, _) => " (already gone)",
                    }
                )
            })
            .collect();
        let unsent = match (&self.agent_exit, self.exit_timeout_ms) {
            (_, Some(_)) if self.verdict == Verdict::DidNotFinish => {
                "no signal: still running at the exit timeout".to_string()
            }
            (Some(exit), Some(_)) => {
                format!(
                    "no signal: the agent exited by itself at +{} ({})",
                    ms(exit.at_ms),
                    exit.how
                )
            }
            _ if self.stdin_closed_ms.is_some() => "no signal: its stdin was closed".to_string(),
            _ => "no signal could be sent".to_string(),
        };
        writeln!(
            f,
            "  killed   {}",
            if sent.is_empty() {
                unsent
            } else {
                sent.join(", ")
            }
        )?;
        match self.quiet_after_kill_ms {
            Some(q) => writeln!(f, "  quiet    tree empty {} after the kill", ms(q))?,
            None => writeln!(f, "  quiet    never: the tree was not empty at the verdict")?,
        }
        writeln!(f, "  oracles  {}", self.oracles.join(", "))?;
        if let Some(w) = &self.wrapper {
            writeln!(
                f,
                "  {:<8} pid {} `{}`; the agent is pid {}",
                w.role,
                w.pid,
                truncate(&short_command(&w.command), 60),
                self.agent_pid
            )?;
        }
        if let Some(t) = &self.touched {
            writeln!(
                f,
                "  touched  {} ({}) at +{}, {} after the kill{}",
                t.path.display(),
                t.mode,
                ms(t.at_ms),
                ms(t.after_kill_ms),
                t.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(": FAILED: {e}"))
            )?;
        }
        if let Some(cost) = &self.cost {
            let cpu = cost
                .cpu_usec
                .map_or("n/a".into(), |u| format!("{:.1}ms CPU", u as f64 / 1000.0));
            let mem = cost.memory_bytes.map_or("memory n/a".into(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            });
            writeln!(f, "  cost     {cpu}, {mem}")?;
        }

        writeln!(f)?;
        writeln!(
            f,
            "  {:<14}  {:>7}  {:>7}  {:>7}  {:>7}  COMMAND",
            "STATUS", "PID", "PPID", "PGID", "SID"
        )?;
        self.write_tree(f)?;
        if self.timeline_omitted > 0 {
            writeln!(f, "  … {} more processes omitted", self.timeline_omitted)?;
        }

        let never_held: Vec<&PortAtReady> = self
            .ports_at_ready
            .iter()
            .filter(|p| !p.held_by_tree)
            .collect();
        if !self.ports.is_empty() || !never_held.is_empty() {
            writeln!(f)?;
            writeln!(f, "  ports")?;
            for p in never_held {
                let by: Vec<String> = p
                    .holders
                    .iter()
                    .map(|h| format!(" (pid {} `{}` did: NOT a descendant)", h.pid, h.command))
                    .collect();
                writeln!(
                    f,
                    "    {:<10} {:>5}  no process of the tree listened on it at readiness{}",
                    "NOT HELD",
                    p.port,
                    by.concat()
                )?;
            }
            for p in &self.ports {
                if p.free {
                    writeln!(
                        f,
                        "    {:<10} {:>5}  free {} after the kill",
                        "free",
                        p.port,
                        ms(p.checked_after_kill_ms as f64)
                    )?;
                } else if p.holders.is_empty() {
                    writeln!(
                        f,
                        "    {:<10} {:>5}  by a process that cannot be read",
                        "PORT HELD", p.port
                    )?;
                } else {
                    for h in &p.holders {
                        writeln!(
                            f,
                            "    {:<10} {:>5}  by pid {} `{}` ({})",
                            "PORT HELD",
                            p.port,
                            h.pid,
                            h.command,
                            if h.descendant {
                                "a descendant of the agent"
                            } else {
                                "NOT a descendant: someone else's process"
                            }
                        )?;
                    }
                }
            }
        }
        if let Some(c) = &self.container {
            writeln!(f)?;
            writeln!(
                f,
                "  container  PID 1 is pid {} on the host `{}`",
                c.pid1,
                truncate(&short_command(&c.pid1_command), 60)
            )?;
            writeln!(f, "    stop     {}", c.stop)?;
            if let Some(e) = &c.escape {
                writeln!(f, "    hint: {}", e.hint())?;
            }
            for p in &c.processes {
                let word = if p.killed_by_namespace {
                    "NS SIGKILL"
                } else {
                    match p.end.as_deref() {
                        Some("alive") => "ALIVE",
                        Some(_) => "EXITED",
                        None => "UNKNOWN",
                    }
                };
                writeln!(
                    f,
                    "    {:<10} {:>7} (ns {:>4})  {}   {}",
                    word,
                    p.pid,
                    p.pid_in_namespace.map_or("?".into(), |n| n.to_string()),
                    truncate(&short_command(&p.command), 50),
                    match (p.killed_by_namespace, p.end.as_deref()) {
                        (true, _) =>
                            "did not exit on its own: the namespace's SIGKILL took it".to_string(),
                        (false, Some("alive")) => String::new(),
                        (false, Some(how)) => format!("ended on its own: {how}"),
                        (false, None) => "how it ended is unknown (kernel before 6.15)".into(),
                    }
                )?;
            }
        }
        if !self.files.is_empty() {
            writeln!(f)?;
            writeln!(f, "  files written after the kill")?;
            for c in self.files.iter().take(20) {
                let writers = if c.writers.is_empty() {
                    String::new()
                } else {
                    format!(
                        "  (by pid {})",
                        c.writers
                            .iter()
                            .map(i32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                writeln!(f, "    {:<9} {}{}", c.change, c.path.display(), writers)?;
            }
            if self.files.len() > 20 {
                writeln!(f, "    … {} more", self.files.len() - 20)?;
            }
        }
        for (name, out) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !out.is_empty() {
                writeln!(f)?;
                writeln!(f, "  {name}")?;
                for line in out.to_string().lines() {
                    writeln!(f, "    | {line}")?;
                }
            }
        }
        Ok(())
    }
}

impl Report {
    /// Writes the tree: each entry under its original parent.
    fn write_tree(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<i32> = self.timeline.iter().map(|e| e.pid).collect();
        let roots: Vec<&TimelineEntry> = self
            .timeline
            .iter()
            .filter(|e| {
                e.original_parent
                    .is_none_or(|pp| !known.contains(&pp) || pp == e.pid)
            })
            .collect();
        for root in roots {
            self.write_node(f, root, "", true, true)?;
        }
        Ok(())
    }

    fn write_node(
        &self,
        f: &mut fmt::Formatter<'_>,
        entry: &TimelineEntry,
        prefix: &str,
        last: bool,
        top: bool,
    ) -> fmt::Result {
        let survivor = self.survivors.iter().find(|s| s.process.pid == entry.pid);
        // Inside a container a process's parent, not the sentinel, reaps it: its end
        // comes from the container report.
        let inside = self
            .container
            .as_ref()
            .and_then(|c| c.processes.iter().find(|p| p.pid == entry.pid));
        let ended_inside = inside.is_some_and(|p| p.end.as_deref().is_some_and(|e| e != "alive"));
        let status = match (survivor, &entry.exit) {
            (Some(s), _) if s.process.is_zombie() => "ZOMBIE",
            (None, None) if inside.is_some_and(|p| p.killed_by_namespace) => "NS SIGKILL",
            (None, None) if ended_inside => "EXITED",
            (Some(s), _) if s.process.is_stopped() => "SURVIVED",
            (Some(_), _) => "SURVIVED",
            (None, _) if entry.needed_sigkill => "NEEDED SIGKILL",
            (None, Some(_)) => "EXITED",
            (None, None) if entry.survived => "SURVIVED",
            (None, None) => "GONE",
        };
        let branch = if top {
            String::new()
        } else if last {
            format!("{prefix}└─ ")
        } else {
            format!("{prefix}├─ ")
        };
        let opt = |v: Option<i32>| v.map_or(String::new(), |v| v.to_string());
        let (ppid, pgid, sid) =
            survivor.map_or((String::new(), opt(entry.pgid), opt(entry.sid)), |s| {
                (
                    s.process.ppid.to_string(),
                    s.process.pgid.to_string(),
                    s.process.sid.to_string(),
                )
            });
        let mut extra = Vec::new();
        if let Some(s) = survivor {
            if s.process.is_stopped() {
                extra.push("STOPPED".to_string());
            }
            if !s.ports.is_empty() {
                extra.push(format!(
                    "PORT HELD {}",
                    s.ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
        } else if let Some(exit) = &entry.exit {
            extra.push(format!("{} at +{}", exit.how, ms(exit.at_ms)));
        } else if let Some(p) = inside {
            if p.killed_by_namespace {
                extra.push("killed by the namespace's SIGKILL".into());
            } else if let Some(how) = p.end.as_deref().filter(|h| *h != "alive") {
                extra.push(how.to_string());
            }
        }
        if let Some(ns) = entry.pid_in_namespace {
            extra.insert(0, format!("(ns pid {ns})"));
        }
        writeln!(
            f,
            "  {:<14}  {:>7}  {:>7}  {:>7}  {:>7}  {}{}{}",
            status,
            entry.pid,
            ppid,
            pgid,
            sid,
            branch,
            truncate(&short_command(&entry.command), 72),
            if extra.is_empty() {
                String::new()
            } else {
                format!("   {}", extra.join("  "))
            }
        )?;
        let child_prefix = if top {
            String::new()
        } else if last {
            format!("{prefix}   ")
        } else {
            format!("{prefix}│  ")
        };
        if let Some(s) = survivor {
            let pad = format!("{:<49}{child_prefix}", "");
            for e in &s.escapes {
                writeln!(f, "  {pad}   escaped: {e}")?;
            }
            if !s.missed_by.is_empty() {
                let m: Vec<String> = s.missed_by.iter().map(ToString::to_string).collect();
                writeln!(f, "  {pad}   missed by: {}", m.join("; "))?;
            }
            for stream in &s.holds_pipes {
                writeln!(f, "  {pad}   {}", stream.consequence())?;
            }
            for h in &s.hints {
                writeln!(f, "  {pad}   hint: {h}")?;
            }
        }
        let children: Vec<&TimelineEntry> = self
            .timeline
            .iter()
            .filter(|c| c.original_parent == Some(entry.pid) && c.pid != entry.pid)
            .collect();
        let n = children.len();
        for (i, c) in children.into_iter().enumerate() {
            self.write_node(f, c, &child_prefix, i + 1 == n, false)?;
        }
        Ok(())
    }
}

/// A command line for the tree: every word that is an absolute path (a fixture under
/// `target/`, an interpreter under `/usr/bin`) is cut to its file name.
fn short_command(command: &str) -> String {
    command
        .split_whitespace()
        .map(|word| {
            let quote = word.starts_with('\'') || word.starts_with('"');
            let bare = word.trim_start_matches(['\'', '"']);
            if bare.starts_with('/') && bare.len() > 1 {
                let name = bare.rsplit('/').next().unwrap_or(bare);
                if quote {
                    format!("{}{name}", &word[..1])
                } else {
                    name.to_string()
                }
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` cut to at most `max` characters, the last one an ellipsis when anything was cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_commands_show_file_names_not_paths() {
        assert_eq!(
            short_command("sh -c '/t/out/listener --quiet & /t/out/listener --port 1; wait'"),
            "sh -c 'listener --quiet & listener --port 1; wait'"
        );
        assert_eq!(
            short_command("/usr/bin/python3 /srv/a/dev_server.py --port 3000"),
            "python3 dev_server.py --port 3000"
        );
    }
}
