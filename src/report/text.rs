//! The text form of the report: a verdict line, the facts of the run, the tree with
//! fixed-width status words (drawn by `tree.rs`), then the ports, the container, the
//! files and the agent's output (written by `evidence.rs`).

use std::fmt;

use super::style::Palette;
use super::tree::short_command;
use super::{Report, Verdict};
use crate::signal::Recipient;

impl Report {
    /// The text form with its status words in colour (ANSI escape codes): the verdict
    /// (`CLEAN` green; `LEAK`, `DID NOT FINISH`, `LOST TRACK` red) and the statuses
    /// `SURVIVED`, `ZOMBIE` and `PORT HELD` (red). Only the words the report writes are
    /// styled, never the agent's captured output or a command line; without the escape
    /// codes the text is exactly [`Display`](fmt::Display)'s.
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    ///
    /// let outcome = Scenario::new(Fixture::Listener.command())
    ///     .ready_when(Ready::stdout_line("ready"))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?;
    /// let report = outcome.report();
    /// let coloured = report.coloured().to_string();
    /// assert!(coloured.contains("\u{1b}["));
    /// assert!(!report.to_string().contains('\u{1b}'));
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    pub fn coloured(&self) -> impl fmt::Display + '_ {
        Coloured(self)
    }

    fn headline(&self, paint: Palette) -> String {
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
                "orphan-check: {}: the agent did not exit by itself within {}; its tree was killed, nothing could be judged",
                paint.word("DID NOT FINISH", 0),
                crate::time::format_duration(std::time::Duration::from_millis(
                    self.exit_timeout_ms.unwrap_or(0)
                ))
            ),
            Verdict::Clean => format!(
                "orphan-check: {}: nothing survived {} ({})",
                paint.word("CLEAN", 0),
                self.plan.does,
                self.plan.simulates
            ),
            Verdict::Leak => format!(
                "orphan-check: {}: {} after {} ({})",
                paint.word("LEAK", 0),
                parts.join("; "),
                self.plan.does,
                self.plan.simulates
            ),
            Verdict::LostTrack => format!(
                "orphan-check: {}: the sentinel died before the tree was empty, so \
                 nothing proves it clean; {} found by the other oracles after {} ({})",
                paint.word("LOST TRACK", 0),
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

pub(super) fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

/// The report's text with its status words in colour.
struct Coloured<'a>(&'a Report);

impl fmt::Display for Coloured<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_text(f, Palette::Colour)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f, Palette::Plain)
    }
}

impl Report {
    /// The text form, its status words styled by `paint`.
    fn write_text(&self, f: &mut fmt::Formatter<'_>, paint: Palette) -> fmt::Result {
        writeln!(f, "{}", self.headline(paint))?;
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
        let by_member = self.signals.iter().any(|s| s.target == Recipient::Member);
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
                        (false, Recipient::Group | Recipient::Forwarded) if by_member => {
                            " (its leader is gone: signalled member by member)"
                        }
                        (false, Recipient::Group) => " (no process left in that group)",
                        (false, Recipient::Agent)
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
        self.write_tree(f, paint)?;
        if self.timeline_omitted > 0 {
            writeln!(f, "  … {} more processes omitted", self.timeline_omitted)?;
        }

        self.write_ports(f, paint)?;
        self.write_container(f)?;
        self.write_files(f)?;
        self.write_output(f)
    }
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
    use crate::output::OutputTail;
    use crate::ports::PortVerdict;
    use crate::procs::ProcessInfo;
    use crate::report::{PlanSummary, Survivor, TimelineEntry, SCHEMA_VERSION};

    /// A leak: the agent (pid 11) survived holding port 4000 and printed `said`.
    fn leak_that_said(said: &str) -> Report {
        let agent = ProcessInfo {
            pid: 11,
            ppid: 10,
            pgid: 11,
            sid: 10,
            state: 'S',
            comm: "agent".into(),
            cmdline: vec!["agent".into(), "--say".into(), said.into()],
            start_ticks: 1,
            uid: 0,
            sig_ignored: 0,
            sig_caught: 0,
            sig_blocked: 0,
            sig_pending: 0,
            pid_in_namespace: None,
        };
        let mut stdout = OutputTail::default();
        stdout.feed(format!("{said}\n").as_bytes(), |_| {});
        Report {
            schema: "orphan-check/report",
            schema_version: SCHEMA_VERSION,
            verdict: Verdict::Leak,
            command: format!("agent --say '{said}'"),
            run_id: "oc-1".into(),
            plan: PlanSummary {
                name: "sigterm".into(),
                does: "SIGTERM to the agent's pid".into(),
                simulates: "kill",
            },
            ready: "exec".into(),
            agent_pid: 11,
            ready_ms: 1.0,
            kill_after_ms: 0,
            killed_ms: 2.0,
            deadline_ms: Some(500),
            oracles: vec!["subreaper"],
            survivors: vec![Survivor {
                process: agent.clone(),
                ports: vec![4000],
                original_parent: Some(10),
                env_marker: Some(true),
                escapes: Vec::new(),
                missed_by: Vec::new(),
                hints: Vec::new(),
                holds_pipes: Vec::new(),
            }],
            ports: vec![PortVerdict {
                port: 4000,
                free: false,
                checked_after_kill_ms: 500,
                holders: Vec::new(),
                first_held: None,
            }],
            ports_at_ready: Vec::new(),
            files: Vec::new(),
            signals: Vec::new(),
            agent_needed_sigkill: false,
            timeline: vec![TimelineEntry {
                pid: 11,
                command: agent.command(),
                original_parent: None,
                pgid: Some(11),
                sid: Some(10),
                first_seen_ms: Some(0.0),
                exit: None,
                reaped_by: None,
                needed_sigkill: false,
                survived: true,
                pid_in_namespace: None,
            }],
            timeline_omitted: 0,
            quiet_after_kill_ms: None,
            cost: None,
            stdout,
            stderr: OutputTail::default(),
            wrapper: None,
            container: None,
            touched: None,
            agent_exit: None,
            exit_timeout_ms: None,
            stdin: "null",
            stdin_closed_ms: None,
        }
    }

    /// `text` without its ANSI escape codes.
    fn plain(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn colour_styles_the_status_words_and_nothing_the_agent_wrote() {
        let said = "LEAK CLEAN SURVIVED PORT HELD ZOMBIE";
        let report = leak_that_said(said);
        let coloured = report.coloured().to_string();
        for line in coloured.lines() {
            let bare = plain(line);
            if bare.starts_with("orphan-check: LEAK")
                || bare.trim_start().starts_with("SURVIVED")
                || bare.trim_start().starts_with("PORT HELD")
            {
                assert!(line.contains('\u{1b}'), "not coloured: {line:?}");
            }
            if bare.contains(said) {
                // The command line in the facts and the tree, and the captured stdout:
                // the agent's words, never styled.
                assert!(line.contains(said), "styled inside: {line:?}");
            }
        }
        let captured = coloured
            .lines()
            .find(|l| l.trim_start().starts_with("| "))
            .expect("the stdout section");
        assert!(!captured.contains('\u{1b}'), "{captured:?}");
        // Without its escape codes, the coloured text is the plain text.
        assert_eq!(plain(&coloured), report.to_string());
        assert!(!report.to_string().contains('\u{1b}'));
    }
}
