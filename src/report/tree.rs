//! The process tree of the text report: each process under its original parent, with
//! its status word, ids, command, and for a survivor its escapes and hints.

use std::fmt;

use super::style::Palette;
use super::text::{ms, truncate};
use super::{Report, TimelineEntry};

impl Report {
    /// Writes the tree: each entry under its original parent.
    pub(super) fn write_tree(&self, f: &mut fmt::Formatter<'_>, paint: Palette) -> fmt::Result {
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
            self.write_node(f, paint, root, "", true, true)?;
        }
        Ok(())
    }

    fn write_node(
        &self,
        f: &mut fmt::Formatter<'_>,
        paint: Palette,
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
                    "{} {}",
                    paint.word("PORT HELD", 0),
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
            "  {}  {:>7}  {:>7}  {:>7}  {:>7}  {}{}{}",
            paint.word(status, 14),
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
            self.write_node(f, paint, c, &child_prefix, i + 1 == n, false)?;
        }
        Ok(())
    }
}

/// A command line for the tree: every word that is an absolute path (a fixture under
/// `target/`, an interpreter under `/usr/bin`) is cut to its file name.
pub(super) fn short_command(command: &str) -> String {
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
