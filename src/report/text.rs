//! The text form of the report: a verdict line, the facts of the run, the tree with
//! fixed-width status words, the ports, the container, the files and the agent's output.

use std::fmt;

use super::{Report, TimelineEntry, Verdict};
use crate::kill::Recipient;
use crate::ports::PortAtReady;

impl Report {
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
