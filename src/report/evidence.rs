//! The text report's sections after the tree: the watched ports, the container's stop,
//! the files written after the kill and the agent's output.

use std::fmt;

use super::style::Palette;
use super::text::{ms, truncate};
use super::tree::short_command;
use super::Report;
use crate::ports::PortAtReady;

impl Report {
    /// Every watched port the tree never held at readiness, then each as it was after
    /// the kill.
    pub(super) fn write_ports(&self, f: &mut fmt::Formatter<'_>, paint: Palette) -> fmt::Result {
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
                        "    {} {:>5}  by a process that cannot be read",
                        paint.word("PORT HELD", 10),
                        p.port
                    )?;
                } else {
                    for h in &p.holders {
                        writeln!(
                            f,
                            "    {} {:>5}  by pid {} `{}` ({})",
                            paint.word("PORT HELD", 10),
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
        Ok(())
    }

    /// The container's stop and how each process inside ended.
    pub(super) fn write_container(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Ok(())
    }

    /// The files written after the kill, at most 20 of them.
    pub(super) fn write_files(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Ok(())
    }

    /// The head and tail of the agent's stdout and stderr.
    pub(super) fn write_output(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
