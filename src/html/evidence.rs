//! The evidence below the timeline: a card per survivor, the files written after the
//! kill, the agent's output, and the whole report as JSON.

use std::fmt::Write as _;

use super::escape::esc;
use crate::report::Report;

/// Survivors described in full below the timeline; the JSON has the rest.
const MAX_CARDS: usize = 50;
/// The embedded JSON is left out beyond this size (a fork storm's report).
const MAX_JSON: usize = 2 << 20;

/// One card per survivor: everything the report knows about it.
pub(super) fn survivors(page: &mut String, report: &Report) {
    if report.survivors.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<section class=\"survivors\"><h2>Survivors <span class=\"count\">{}</span></h2>",
        report.survivors.len()
    );
    for s in report.survivors.iter().take(MAX_CARDS) {
        let p = &s.process;
        let _ = write!(
            page,
            "<article class=\"card\" id=\"survivor-{}\"><h3><span class=\"st st-surv\">{}</span> pid {} <code class=\"wrap\">{}</code></h3><dl>",
            p.pid,
            if p.is_zombie() { "ZOMBIE" } else { "SURVIVED" },
            p.pid,
            esc(&p.command())
        );
        let mut fact = |name: &str, html: String| {
            let _ = write!(page, "<dt>{name}</dt><dd>{html}</dd>");
        };
        fact(
            "now",
            format!(
                "state {}{}, parent {}, group {}, session {}",
                esc(&p.state.to_string()),
                if p.is_stopped() { " (stopped)" } else { "" },
                p.ppid,
                p.pgid,
                p.sid
            ),
        );
        if let Some(op) = s.original_parent {
            if op != p.ppid {
                fact("first parent", format!("pid {op} (it was reparented)"));
            }
        }
        if !s.ports.is_empty() {
            fact(
                "listens on",
                s.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        fact(
            "ORPHAN_CHECK_RUN",
            match s.env_marker {
                Some(true) => "still in its environment".into(),
                Some(false) => "<span class=\"bad\">gone from its environment</span>".into(),
                None => "<span class=\"muted\">unreadable</span>".into(),
            },
        );
        for e in &s.escapes {
            fact("escaped", esc(&e.to_string()));
        }
        if !s.missed_by.is_empty() {
            let m: Vec<String> = s.missed_by.iter().map(ToString::to_string).collect();
            fact("missed by", esc(&m.join("; ")));
        }
        for h in &s.hints {
            fact("hint", format!("<span class=\"hint\">{}</span>", esc(h)));
        }
        page.push_str("</dl></article>\n");
    }
    if report.survivors.len() > MAX_CARDS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… {} more survivors: the JSON below lists them all.</p>",
            report.survivors.len() - MAX_CARDS
        );
    }
    page.push_str("</section>\n");
}

/// Files written after the kill.
pub(super) fn files(page: &mut String, report: &Report) {
    if report.files.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<section class=\"files\"><h2>Files written after the kill <span class=\"count\">{}</span></h2><table>\
         <tr><th>change</th><th>path</th><th>by</th></tr>",
        report.files.len()
    );
    for f in report.files.iter().take(200) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><code class=\"wrap\">{}</code></td><td>{}</td></tr>",
            esc(f.change),
            esc(&f.path.display().to_string()),
            f.writers
                .iter()
                .map(|p| format!("pid {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    page.push_str("</table>");
    if report.files.len() > 200 {
        let _ = write!(
            page,
            "<p class=\"muted\">… {} more</p>",
            report.files.len() - 200
        );
    }
    page.push_str("</section>\n");
}

/// The agent's stdout and stderr, head and tail.
pub(super) fn output(page: &mut String, report: &Report) {
    if report.stdout.is_empty() && report.stderr.is_empty() {
        return;
    }
    page.push_str("<section class=\"output\"><h2>Output of the agent</h2>\n");
    for (name, out) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        if !out.is_empty() {
            let _ = writeln!(
                page,
                "<h3>{name}</h3><pre>{}</pre>",
                esc(out.to_string().trim_end())
            );
        }
    }
    page.push_str("</section>\n");
}

/// The whole report as JSON, folded: the page carries all the evidence.
pub(super) fn json(page: &mut String, report: &Report) {
    let json = report.to_json();
    if json.len() > MAX_JSON {
        let _ = writeln!(
            page,
            "<p class=\"muted\">The JSON report ({} MiB) is too large to embed; write it with --json.</p>",
            json.len() >> 20
        );
        return;
    }
    let _ = writeln!(
        page,
        "<details class=\"json\"><summary>The report as JSON (schema {} v{})</summary><pre>{}</pre></details>",
        esc(report.schema),
        report.schema_version,
        esc(&json)
    );
}
