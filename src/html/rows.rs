//! One row of the timeline: a process (its status, bar and end, with a tooltip of all
//! that is known about it, and a survivor's details under it) or a watched port.

use std::fmt::Write as _;

use super::axis::Axis;
use super::escape::esc;
use super::style::{DETAIL_PAD, LINE};
use super::tree::ProcessRow;
use super::words::{at, escape_name, short_command, whole_ms};
use crate::report::{truncate, Report, Survivor};

/// One process: its tree branch, status, pid and command; its bar; how it ended.
pub(super) fn process_row(
    page: &mut String,
    report: &Report,
    row: &ProcessRow<'_>,
    axis: &Axis,
    rows: &[ProcessRow<'_>],
    alive_until: f64,
) {
    let e = row.entry;
    let s = row.survivor;
    let (status, class) = match (s, &e.exit) {
        (Some(s), _) if s.process.is_zombie() => ("ZOMBIE", "surv"),
        (Some(_), _) => ("SURVIVED", "surv"),
        (None, _) if e.survived => ("SURVIVED", "surv"),
        (None, _) if e.needed_sigkill => ("NEEDED SIGKILL", "sigkill"),
        (None, Some(x)) if x.how.starts_with("killed") => ("EXITED", "killed"),
        (None, Some(_)) => ("EXITED", "exit"),
        (None, None) => ("GONE", "gone"),
    };
    let parent = row.parent_row.map(|p| rows[p].entry);
    let end = match &e.exit {
        Some(x) => x.at_ms,
        None if e.survived => alive_until,
        // Reaped by its own parent: it died before its parent did, when that is known.
        None => parent
            .and_then(|p| p.exit.as_ref().map(|x| x.at_ms))
            .unwrap_or(alive_until),
    };

    // The tooltip: everything known about it, in lines.
    let mut tip = format!(
        "pid {}{}{}\n",
        e.pid,
        e.pgid.map(|g| format!(" · group {g}")).unwrap_or_default(),
        e.sid.map(|g| format!(" · session {g}")).unwrap_or_default()
    );
    match (parent, e.original_parent) {
        (Some(p), _) => {
            let _ = writeln!(tip, "child of pid {} ({})", p.pid, truncate(&p.command, 60));
        }
        (None, _) if e.pid == report.agent_pid => {
            tip.push_str("the agent, started by the sentinel\n")
        }
        (None, Some(pp)) => {
            let _ = writeln!(tip, "child of pid {pp}");
        }
        (None, None) => {}
    }
    match e.first_seen_ms {
        Some(t) => {
            let _ = writeln!(tip, "first seen {}", at(t));
        }
        None => tip.push_str("never seen alive: known by its exit only\n"),
    }
    match (&e.exit, e.survived) {
        (Some(x), _) => {
            let _ = writeln!(
                tip,
                "{} {}{}",
                x.how,
                at(x.at_ms),
                if e.reaped_by == Some("sentinel") {
                    ", reaped by the sentinel"
                } else {
                    ""
                }
            );
        }
        (None, true) => {
            let _ = writeln!(tip, "alive at the verdict {}", at(alive_until));
        }
        (None, false) => {
            tip.push_str("gone: reaped by its own parent, the moment is not recorded\n")
        }
    }
    if let Some(s) = s {
        let _ = writeln!(
            tip,
            "now: state {}, parent {}, group {}, session {}",
            s.process.state, s.process.ppid, s.process.pgid, s.process.sid
        );
        for x in &s.escapes {
            let _ = writeln!(tip, "escaped: {x}");
        }
        for h in &s.hints {
            let _ = writeln!(tip, "hint: {h}");
        }
    }
    let _ = write!(tip, "{}", e.command);

    let _ = write!(
        page,
        "<div class=\"row proc {class}\" data-pid=\"{}\" title=\"{}\"><div class=\"lbl\">\
         <span class=\"st st-{class}\">{status}</span><span class=\"pid\">{}</span><span class=\"tree\">{}</span>{}<code>{}</code></div><div class=\"trk\">",
        e.pid,
        esc(&tip),
        e.pid,
        esc(&row.branch),
        if e.pid == report.agent_pid {
            "<span class=\"who\">agent</span>"
        } else {
            ""
        },
        esc(&short_command(&e.command)),
    );
    match e.first_seen_ms {
        Some(seen) => {
            // Born at some moment between its parent's first sighting and its own.
            let born_after = parent.and_then(|p| p.first_seen_ms).unwrap_or(0.0);
            if seen > born_after {
                let (x0, x1) = (axis.x(born_after), axis.x(seen));
                let _ = write!(
                    page,
                    "<i class=\"lead\" style=\"left:{x0:.3}%;width:{:.3}%\"></i>",
                    (x1 - x0).max(0.0)
                );
            }
            let (x0, x1) = (axis.x(seen), axis.x(end.max(seen)));
            let _ = write!(
                page,
                "<i class=\"bar b-{class}\" style=\"left:{x0:.3}%;width:{:.3}%\"></i>",
                (x1 - x0).max(0.5)
            );
            if e.survived {
                let _ = write!(page, "<i class=\"arrow\" style=\"left:{x1:.3}%\"></i>");
            } else if e.exit.is_some() {
                let _ = write!(
                    page,
                    "<i class=\"cap b-{class}\" style=\"left:{x1:.3}%\"></i>"
                );
            }
        }
        None => {
            let _ = write!(
                page,
                "<i class=\"dot b-{class}\" style=\"left:{:.3}%\"></i>",
                axis.x(end)
            );
        }
    }
    page.push_str("</div><div class=\"end\">");
    match (&e.exit, e.survived) {
        (_, true) => {
            let _ = write!(page, "<b class=\"bad\">alive</b> at {}", at(alive_until));
            if let Some(s) = s {
                for x in &s.escapes {
                    let _ = write!(page, " <span class=\"tag\">{}</span>", esc(&escape_name(x)));
                }
                if !s.ports.is_empty() {
                    let _ = write!(
                        page,
                        " <span class=\"tag\">port {}</span>",
                        s.ports
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        (Some(x), false) => {
            let _ = write!(page, "{} {}", esc(&x.how), at(x.at_ms));
        }
        (None, false) => page.push_str("<span class=\"muted\">gone, reaped by its parent</span>"),
    }
    page.push_str("</div></div>\n");
}

/// The lines under a survivor's row: how it escaped, which cleanups miss it, the hints,
/// beside the tree's branches that go on under it. Returns their height.
pub(super) fn survivor_details(
    page: &mut String,
    s: &Survivor,
    same_as: Option<i32>,
    tree: &str,
) -> u32 {
    let mut lines: Vec<(&str, String)> = Vec::new();
    match same_as {
        Some(pid) => {
            let names: Vec<String> = s.escapes.iter().map(escape_name).collect();
            lines.push((
                "escaped",
                format!(
                    "as pid {pid} above ({}), with the same hint",
                    names.join(", ")
                ),
            ));
        }
        None => {
            lines.extend(s.escapes.iter().map(|e| ("escaped", e.to_string())));
            if !s.missed_by.is_empty() {
                let m: Vec<String> = s.missed_by.iter().map(ToString::to_string).collect();
                lines.push(("missed by", m.join("; ")));
            }
            lines.extend(s.hints.iter().map(|h| ("hint", h.to_string())));
        }
    }
    if lines.is_empty() {
        return 0;
    }
    let height = DETAIL_PAD + LINE * lines.len() as u32;
    let _ = write!(page, "<div class=\"detail\" style=\"height:{height}px\">");
    for (name, text) in lines {
        let _ = write!(
            page,
            "<div title=\"{t}\"><span class=\"tree\">{}   </span><b>{name}</b> {t}</div>",
            esc(tree),
            t = esc(&text)
        );
    }
    page.push_str("</div>\n");
    height
}

/// One watched port: the interval it was seen held, and who held it at the verdict.
pub(super) fn port_row(
    page: &mut String,
    report: &Report,
    p: &crate::ports::PortVerdict,
    axis: &Axis,
    checked_at: f64,
) {
    let (status, class) = if p.free {
        ("FREE", "free")
    } else {
        ("PORT HELD", "held")
    };
    let holders: Vec<String> = p
        .holders
        .iter()
        .map(|h| {
            format!(
                "pid {} {}{}",
                h.pid,
                short_command(&h.command),
                if h.descendant {
                    ""
                } else {
                    " (not a descendant)"
                }
            )
        })
        .collect();
    let mut tip = format!("port {}\n", p.port);
    match p.first_held {
        Some(d) => {
            let _ = writeln!(tip, "first seen held {}", at(d.as_secs_f64() * 1000.0));
        }
        None => tip.push_str("never seen held\n"),
    }
    if p.free {
        let _ = write!(
            tip,
            "free {} after the kill",
            whole_ms(p.checked_after_kill_ms)
        );
    } else {
        let _ = write!(
            tip,
            "still held {} after the kill by {}",
            whole_ms(p.checked_after_kill_ms),
            if holders.is_empty() {
                "a process that cannot be read".to_string()
            } else {
                holders.join(", ")
            }
        );
    }
    let _ = write!(
        page,
        "<div class=\"row port {class}\" data-port=\"{}\" title=\"{}\"><div class=\"lbl\">\
         <span class=\"st st-{class}\">{status}</span><span class=\"pid\">:{}</span><code>{}</code></div><div class=\"trk\">",
        p.port,
        esc(&tip),
        p.port,
        esc(&holders.first().cloned().unwrap_or_default()),
    );
    if let Some(from) = p.first_held {
        let from = from.as_secs_f64() * 1000.0;
        let (x0, x1) = (axis.x(from), axis.x(checked_at.max(from)));
        let _ = write!(
            page,
            "<i class=\"bar p-{class}\" style=\"left:{x0:.3}%;width:{:.3}%\"></i>",
            (x1 - x0).max(0.5)
        );
        if !p.free {
            let _ = write!(page, "<i class=\"arrow port\" style=\"left:{x1:.3}%\"></i>");
        }
    }
    page.push_str("</div><div class=\"end\">");
    match (p.free, p.first_held) {
        (true, None) => page.push_str("<span class=\"muted\">never seen held</span>"),
        (true, Some(_)) => {
            let _ = write!(
                page,
                "free {} after the kill",
                whole_ms(p.checked_after_kill_ms)
            );
        }
        (false, _) => {
            let _ = write!(
                page,
                "<b class=\"bad\">held</b> at {}{}",
                at(report.killed_ms + p.checked_after_kill_ms as f64),
                if p.holders.iter().any(|h| !h.descendant) {
                    " <span class=\"tag\">not a descendant</span>"
                } else {
                    ""
                }
            );
        }
    }
    page.push_str("</div></div>\n");
}
