//! The picture of a run: one self-contained HTML page drawn from a [`Report`].
//!
//! The page is a CI artifact: it must open anywhere, offline, long after the run, and
//! show at a glance what ran, when it was killed, and what lived on. So everything is
//! inline (CSS, one SVG overlay), nothing is loaded and nothing runs: the page declares a
//! content security policy of `default-src 'none'` with inline styles only, so even
//! markup that slipped past the escaping could neither run a script nor reach the
//! network. Every text that comes from the run (command lines, output, paths) goes
//! through [`esc`].
//!
//! The time axis runs from the start to the verdict. The moments that matter are often
//! milliseconds apart near the start (readiness, the kill, the first exits) and a second
//! away from the end (the deadline a survivor outlived), so a linear axis would crush
//! the beginning into a few pixels. The axis is piecewise linear between the run's
//! moments instead, each stretch drawn as wide as the logarithm of its length (and the
//! start-up before the first moment no wider than an eighth): order is kept, long waits
//! still look long, close moments stay apart, and every label gives the exact time.
//!
//! Rows have fixed heights (the constants below, which the CSS repeats), so the overlay
//! that draws the marker lines and the parent links places them in pixels, and the time
//! in percent of the track's width.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::diagnosis::Escape;
use crate::kill::Recipient;
use crate::report::{truncate, Report, Survivor, TimelineEntry, Verdict};

/// Height of a process or port row, px.
const ROW: u32 = 28;
/// Height of one line of a survivor's details, px.
const LINE: u32 = 18;
/// Vertical padding of a survivor's details, px.
const DETAIL_PAD: u32 = 8;
/// Height of one lane of marker labels above the rows, px.
const LANE: u32 = 17;
/// Height of the heading row of the ports, px.
const HEADING: u32 = 26;
/// The part of the track (percent) the axis uses; the rest leaves room for arrowheads.
const SPAN: (f64, f64) = (1.0, 96.0);
/// Survivors described in full below the timeline; the JSON has the rest.
const MAX_CARDS: usize = 50;
/// The embedded JSON is left out beyond this size (a fork storm's report).
const MAX_JSON: usize = 2 << 20;

/// Renders the page.
pub(crate) fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let verdict = match report.verdict {
        Verdict::Clean => "clean",
        Verdict::Leak | Verdict::LostTrack | Verdict::DidNotFinish => "leak",
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"orphan-check {version}\">\n\
         <title>orphan-check: {word} · {command}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<main class=\"report\" data-verdict=\"{verdict}\">\n",
        version = env!("CARGO_PKG_VERSION"),
        word = verdict.to_uppercase(),
        command = esc(&truncate(&report.command, 80)),
    );
    header(&mut page, report);
    facts(&mut page, report);
    timeline(&mut page, report);
    survivors(&mut page, report);
    files(&mut page, report);
    output(&mut page, report);
    json(&mut page, report);
    let _ = write!(
        page,
        "<footer>orphan-check {} · report schema {} v{}</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(report.schema),
        report.schema_version
    );
    page
}

/// The verdict banner: LEAK or CLEAN, what leaked, and the plan.
fn header(page: &mut String, report: &Report) {
    let (word, class) = match report.verdict {
        Verdict::Clean => ("CLEAN", "clean"),
        Verdict::Leak => ("LEAK", "leak"),
        Verdict::LostTrack => ("LOST TRACK", "leak"),
        Verdict::DidNotFinish => ("DID NOT FINISH", "leak"),
    };
    let mut what = Vec::new();
    let n = report.survivors.len();
    if n > 0 {
        what.push(format!(
            "{n} process{} survived{}",
            if n == 1 { "" } else { "es" },
            report
                .deadline_ms
                .map(|d| format!(" the {} deadline", duration(d as f64)))
                .unwrap_or_default()
        ));
    }
    for p in report.ports.iter().filter(|p| !p.free) {
        what.push(format!("port {} still held", p.port));
    }
    if !report.files.is_empty() {
        what.push(format!(
            "{} file{} written after the kill",
            report.files.len(),
            if report.files.len() == 1 { "" } else { "s" }
        ));
    }
    let title = match report.verdict {
        Verdict::Clean => "Nothing survived".to_string(),
        Verdict::Leak if what.is_empty() => "Something leaked".to_string(),
        Verdict::Leak => what.join(" · "),
        Verdict::DidNotFinish => {
            "The agent did not exit by itself within its exit timeout; its tree was killed"
                .to_string()
        }
        Verdict::LostTrack => format!(
            "The sentinel died before its tree was empty: nothing proves it clean{}",
            if what.is_empty() {
                String::new()
            } else {
                format!(" · {}", what.join(" · "))
            }
        ),
    };
    let _ = writeln!(
        page,
        "<header class=\"verdict {class}\"><div class=\"word\">{word}</div><div>\
         <h1>{}</h1><p>after {} <span class=\"muted\">— simulates {}</span></p></div></header>",
        esc(&title),
        esc(&report.plan.does),
        esc(report.plan.simulates),
    );
}

/// What ran, how it was judged ready, what the plan sent, when the tree went quiet.
fn facts(page: &mut String, report: &Report) {
    page.push_str("<section class=\"facts\"><dl>\n");
    let mut fact = |name: &str, html: String| {
        let _ = writeln!(page, "<dt>{}</dt><dd>{html}</dd>", esc(name));
    };
    fact(
        "command",
        format!(
            "<code class=\"wrap\">{}</code> <span class=\"muted\">agent pid {}</span>",
            esc(&report.command),
            report.agent_pid
        ),
    );
    fact(
        "ready",
        format!("at {} — {}", at(report.ready_ms), esc(&report.ready)),
    );
    let mut kill = format!(
        "<code>{}</code>: {}",
        esc(&report.plan.name),
        esc(&report.plan.does)
    );
    if report.kill_after_ms > 0 {
        let _ = write!(
            kill,
            ", {} after readiness",
            duration(report.kill_after_ms as f64)
        );
    }
    fact("kill", kill);
    let sent: Vec<String> = report
        .signals
        .iter()
        .map(|s| {
            format!(
                "{} to {} {} at {}{}",
                esc(s.signal.name()),
                esc(s.target.name()),
                s.to.abs(),
                at(s.at_ms),
                match (s.delivered, s.target) {
                    (true, _) => "",
                    (false, Recipient::Group) =>
                        " <span class=\"muted\">(no process left in that group)</span>",
                    (false, _) => " <span class=\"muted\">(already gone)</span>",
                }
            )
        })
        .collect();
    fact(
        "signals",
        if sent.is_empty() {
            "<span class=\"muted\">none could be sent</span>".into()
        } else {
            sent.join("<br>")
        },
    );
    fact(
        "quiet",
        match report.quiet_after_kill_ms {
            Some(q) => format!("the tree was empty {} after the kill", duration(q)),
            None => {
                "<span class=\"bad\">never: the tree was not empty at the verdict</span>".into()
            }
        },
    );
    if let Some(d) = report.deadline_ms {
        fact("deadline", format!("{} after the kill", duration(d as f64)));
    }
    fact(
        "run",
        format!("<code>ORPHAN_CHECK_RUN={}</code>", esc(&report.run_id)),
    );
    fact("oracles", esc(&report.oracles.join(", ")));
    if let Some(cost) = &report.cost {
        let cpu = cost.cpu_usec.map_or("CPU n/a".into(), |u| {
            format!("{} CPU", duration(u as f64 / 1000.0))
        });
        let mem = cost.memory_bytes.map_or("memory n/a".into(), |b| {
            format!("{:.1} MiB", b as f64 / 1_048_576.0)
        });
        fact("cost", format!("{cpu}, {mem}"));
    }
    page.push_str("</dl></section>\n");
}

/// Stretches of the axis are as wide as `ln(1 + length / RESOLUTION_MS)`.
const RESOLUTION_MS: f64 = 0.1;
/// The most of the axis the stretch before the first moment may take.
const START_SHARE: f64 = 0.12;

/// The time axis: piecewise linear between the run's moments, each stretch as wide as
/// the logarithm of its length (see the module docs).
#[derive(Debug)]
struct Axis {
    /// (time in ms, position in percent of the track), increasing in both.
    stops: Vec<(f64, f64)>,
}

impl Axis {
    fn new(moments: impl IntoIterator<Item = f64>) -> Axis {
        let mut times: Vec<f64> = moments
            .into_iter()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .chain([0.0])
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
        let mut widths: Vec<f64> = times
            .windows(2)
            .map(|w| (1.0 + (w[1] - w[0]) / RESOLUTION_MS).ln())
            .collect();
        let total: f64 = widths.iter().sum();
        // The start-up, up to the first moment, is the least interesting stretch: at
        // most a fixed share of the width.
        if widths.len() > 1 && widths[0] > START_SHARE * total {
            let rest = total - widths[0];
            widths[0] = rest * START_SHARE / (1.0 - START_SHARE);
        }
        let total: f64 = widths.iter().sum();
        let mut stops = vec![(times[0], SPAN.0)];
        let mut sum = 0.0;
        for (i, w) in widths.iter().enumerate() {
            sum += w;
            stops.push((times[i + 1], SPAN.0 + (SPAN.1 - SPAN.0) * sum / total));
        }
        Axis { stops }
    }

    /// The last moment: the axis's right end.
    fn end(&self) -> f64 {
        self.stops.last().map_or(0.0, |s| s.0)
    }

    /// Where `t` (ms since the start) is, in percent of the track.
    fn x(&self, t: f64) -> f64 {
        let i = self.stops.partition_point(|s| s.0 <= t);
        if i == 0 {
            return SPAN.0;
        }
        if i == self.stops.len() {
            return self.stops[i - 1].1;
        }
        let ((t0, x0), (t1, x1)) = (self.stops[i - 1], self.stops[i]);
        x0 + (x1 - x0) * (t - t0) / (t1 - t0)
    }
}

/// A vertical line across the timeline, with its label above the rows.
struct Marker {
    at: f64,
    label: String,
    class: &'static str,
}

/// How a process row is drawn.
struct ProcessRow<'a> {
    entry: &'a TimelineEntry,
    survivor: Option<&'a Survivor>,
    /// Its branch of the tree (`│  └─ `).
    branch: String,
    /// What continues the tree under it (`│     `), beside its details.
    under: String,
    parent_row: Option<usize>,
}

/// The timeline: marker labels, one row per process (survivors with their details), one
/// per watched port, and the overlay with the marker lines and parent links.
fn timeline(page: &mut String, report: &Report) {
    let verdict_at = (!report.survivors.is_empty())
        .then(|| report.deadline_ms.map(|d| report.killed_ms + d as f64))
        .flatten();
    let port_end =
        |p: &crate::ports::PortVerdict| report.killed_ms + p.checked_after_kill_ms as f64;
    let mut moments = vec![report.ready_ms, report.killed_ms];
    moments.extend(report.signals.iter().map(|s| s.at_ms));
    for e in &report.timeline {
        moments.extend(e.first_seen_ms);
        moments.extend(e.exit.as_ref().map(|x| x.at_ms));
    }
    for p in &report.ports {
        moments.extend(p.first_held.map(|d| d.as_secs_f64() * 1000.0));
        moments.push(port_end(p));
    }
    moments.extend(report.quiet_after_kill_ms.map(|q| report.killed_ms + q));
    moments.extend(verdict_at);
    let axis = Axis::new(moments);
    let alive_until = verdict_at.unwrap_or(axis.end());

    let markers = markers(report, verdict_at);
    let lanes = assign_lanes(&markers, &axis);
    let lane_count = lanes.iter().copied().max().map_or(1, |m| m + 1) as u32;
    let head = lane_count * LANE + 8;

    let rows = process_rows(report);

    page.push_str(
        "<section class=\"timeline\"><h2>Timeline</h2>\n<p class=\"muted note\">Each process from its \
         first sighting to its end, in the order of the tree (├─ a child under its parent). \
         The axis runs from the start to the verdict. It is not linear: each stretch between \
         two moments is drawn by the logarithm of its length, so that moments a fraction of a \
         millisecond apart stay apart next to a wait of seconds; the labels give the exact \
         times.</p>\n",
    );
    legend(page);
    page.push_str("<div class=\"tl\">\n");

    // The marker labels, in lanes so they do not overlap.
    let _ = write!(
        page,
        "<div class=\"row axis\" style=\"height:{head}px\"><div class=\"lbl muted\">process</div><div class=\"trk\">"
    );
    for (m, lane) in markers.iter().zip(&lanes) {
        let x = axis.x(m.at);
        let anchor = if x < 8.0 {
            "left"
        } else if x > 85.0 {
            "right"
        } else {
            "mid"
        };
        let _ = write!(
            page,
            "<span class=\"ml {} {anchor}\" style=\"left:{x:.3}%;top:{}px\">{}</span>",
            m.class,
            lane * LANE as usize + 2,
            esc(&m.label)
        );
    }
    page.push_str("</div><div class=\"end muted\">how it ended</div></div>\n");

    // Each process row's vertical centre, for the parent links.
    let mut centres: Vec<u32> = Vec::with_capacity(rows.len());
    let mut y = head;
    // A survivor diagnosed exactly as the one before it (a fork storm's children) gets
    // one line that says so.
    let mut described: Option<&Survivor> = None;
    for row in &rows {
        centres.push(y + ROW / 2);
        y += ROW;
        process_row(page, report, row, &axis, &rows, alive_until);
        if let Some(s) = row.survivor {
            let same = described.filter(|d| {
                d.escapes == s.escapes && d.missed_by == s.missed_by && d.hints == s.hints
            });
            y += survivor_details(page, s, same.map(Survivor::pid), &row.under);
            if same.is_none() {
                described = Some(s);
            }
        }
    }
    if report.timeline_omitted > 0 {
        let _ = writeln!(
            page,
            "<div class=\"row more\"><div class=\"lbl muted\">… {} more processes, left out of the report</div><div class=\"trk\"></div><div class=\"end\"></div></div>",
            report.timeline_omitted
        );
        y += ROW;
    }
    if !report.ports.is_empty() {
        page.push_str("<div class=\"row heading\"><div class=\"lbl\">watched ports</div><div class=\"trk\"></div><div class=\"end\"></div></div>\n");
        y += HEADING;
        for p in &report.ports {
            port_row(page, report, p, &axis, port_end(p));
            y += ROW;
        }
    }

    // The overlay: marker lines over every row, and a link from each parent's row down
    // to its child's, at the moment the child was first seen.
    let _ = write!(
        page,
        "<svg class=\"ovl\" width=\"100%\" height=\"{y}\" aria-hidden=\"true\">"
    );
    for (m, lane) in markers.iter().zip(&lanes) {
        let x = axis.x(m.at);
        let _ = write!(
            page,
            "<line class=\"{}\" x1=\"{x:.3}%\" x2=\"{x:.3}%\" y1=\"{}\" y2=\"{y}\"/>",
            m.class,
            (*lane as u32 + 1) * LANE + 2
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let (Some(p), Some(seen)) = (row.parent_row, row.entry.first_seen_ms) else {
            continue;
        };
        let x = axis.x(seen);
        let parent_gone = rows[p].entry.exit.as_ref().is_some_and(|e| e.at_ms < seen);
        let _ = write!(
            page,
            "<line class=\"link{}\" x1=\"{x:.3}%\" x2=\"{x:.3}%\" y1=\"{}\" y2=\"{}\"/><circle class=\"link\" cx=\"{x:.3}%\" cy=\"{}\" r=\"2.5\"/>",
            if parent_gone { " gone" } else { "" },
            centres[p],
            centres[i],
            centres[p],
        );
    }
    page.push_str("</svg>\n</div>\n</section>\n");
}

/// The moments drawn as vertical lines: readiness, each signal, the end of the plan,
/// the tree going quiet, the survivor deadline.
fn markers(report: &Report, verdict_at: Option<f64>) -> Vec<Marker> {
    let mut markers = vec![Marker {
        at: report.ready_ms,
        label: format!("ready {}", at(report.ready_ms)),
        class: "m-ready",
    }];
    for s in &report.signals {
        markers.push(Marker {
            at: s.at_ms,
            label: format!(
                "{} → {}{} {}",
                s.signal,
                s.target,
                if s.delivered { "" } else { " (gone)" },
                at(s.at_ms)
            ),
            class: "m-signal",
        });
    }
    // The plan's end (where the deadlines count from), when it waited after its last
    // signal (a grace the agent outlived, or its exit).
    let last_signal = report.signals.last().map(|s| s.at_ms);
    if last_signal.is_none_or(|s| report.killed_ms - s >= 1.0) {
        markers.push(Marker {
            at: report.killed_ms,
            label: format!("plan done {}", at(report.killed_ms)),
            class: "m-signal",
        });
    }
    if let Some(q) = report.quiet_after_kill_ms {
        markers.push(Marker {
            at: report.killed_ms + q,
            label: format!("tree empty {}", at(report.killed_ms + q)),
            class: "m-quiet",
        });
    }
    if let (Some(v), Some(d)) = (verdict_at, report.deadline_ms) {
        markers.push(Marker {
            at: v,
            label: format!("deadline: kill + {}", duration(d as f64)),
            class: "m-deadline",
        });
    }
    markers.sort_by(|a, b| a.at.total_cmp(&b.at));
    markers
}

/// A lane for each marker label so that none overlaps the one before it in its lane
/// (label widths estimated for a track about 640 px wide).
fn assign_lanes(markers: &[Marker], axis: &Axis) -> Vec<usize> {
    const PX_PER_CHAR: f64 = 6.4;
    const TRACK_PX: f64 = 640.0;
    let mut lane_ends: Vec<f64> = Vec::new();
    markers
        .iter()
        .map(|m| {
            let x = axis.x(m.at);
            let width = (m.label.chars().count() as f64 * PX_PER_CHAR + 20.0) / TRACK_PX * 100.0;
            let (from, to) = if x < 8.0 {
                (x, x + width)
            } else if x > 85.0 {
                (x - width, x)
            } else {
                (x - width / 2.0, x + width / 2.0)
            };
            let lane = lane_ends
                .iter()
                .position(|end| *end <= from)
                .unwrap_or(lane_ends.len());
            if lane == lane_ends.len() {
                lane_ends.push(to);
            } else {
                lane_ends[lane] = to;
            }
            lane
        })
        .collect()
}

/// The timeline's entries in the order of the tree, each under its original parent, as
/// the text report draws them.
fn process_rows(report: &Report) -> Vec<ProcessRow<'_>> {
    let survivors: HashMap<i32, &Survivor> =
        report.survivors.iter().map(|s| (s.pid(), s)).collect();
    let known: HashSet<i32> = report.timeline.iter().map(|e| e.pid).collect();
    let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, e) in report.timeline.iter().enumerate() {
        match e.original_parent {
            Some(pp) if pp != e.pid && known.contains(&pp) => {
                children.entry(pp).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let mut rows = Vec::with_capacity(report.timeline.len());
    let mut placed = vec![false; report.timeline.len()];
    // (entry, prefix of its children's branches, its own branch, parent row)
    let mut stack: Vec<(usize, String, String, Option<usize>)> = roots
        .iter()
        .rev()
        .map(|&i| (i, String::new(), String::new(), None))
        .collect();
    loop {
        while let Some((i, prefix, branch, parent_row)) = stack.pop() {
            if placed[i] {
                continue;
            }
            placed[i] = true;
            let entry = &report.timeline[i];
            let row = rows.len();
            let kids: Vec<usize> = children
                .get(&entry.pid)
                .map(|k| k.iter().copied().filter(|&k| !placed[k]).collect())
                .unwrap_or_default();
            let child_prefix = match branch.as_str() {
                "" => prefix.clone(),
                "└─ " => format!("{prefix}   "),
                _ => format!("{prefix}│  "),
            };
            rows.push(ProcessRow {
                entry,
                survivor: survivors
                    .get(&entry.pid)
                    .copied()
                    .filter(|_| entry.survived),
                branch: format!("{prefix}{branch}"),
                under: if kids.is_empty() {
                    child_prefix.clone()
                } else {
                    format!("{child_prefix}│")
                },
                parent_row,
            });
            let n = kids.len();
            for (j, k) in kids.into_iter().enumerate().rev() {
                let b = if j + 1 == n { "└─ " } else { "├─ " };
                stack.push((k, child_prefix.clone(), b.to_string(), Some(row)));
            }
        }
        // Entries no root reaches (a cycle through a reused pid): listed at the top level.
        match placed.iter().position(|p| !p) {
            Some(i) => stack.push((i, String::new(), String::new(), None)),
            None => break,
        }
    }
    rows
}

/// One process: its tree branch, status, pid and command; its bar; how it ended.
fn process_row(
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
fn survivor_details(page: &mut String, s: &Survivor, same_as: Option<i32>, tree: &str) -> u32 {
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
fn port_row(
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

/// What the bars, lines and links mean.
fn legend(page: &mut String) {
    page.push_str(
        "<ul class=\"legend\">\
         <li><i class=\"bar b-exit\"></i>alive, from its first sighting to its exit</li>\
         <li><i class=\"lead\"></i>born at some moment before its first sighting</li>\
         <li><i class=\"bar b-surv\"></i>survived: alive at the verdict</li>\
         <li><i class=\"bar b-sigkill\"></i>needed SIGKILL</li>\
         <li><i class=\"bar p-free\"></i>port held</li>\
         <li><i class=\"swatch m-ready\"></i>ready</li>\
         <li><i class=\"swatch m-signal\"></i>signal sent</li>\
         <li><i class=\"swatch m-quiet\"></i>tree empty</li>\
         <li><i class=\"swatch m-deadline\"></i>deadline</li>\
         </ul>\n",
    );
}

/// One card per survivor: everything the report knows about it.
fn survivors(page: &mut String, report: &Report) {
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
fn files(page: &mut String, report: &Report) {
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
fn output(page: &mut String, report: &Report) {
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
fn json(page: &mut String, report: &Report) {
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

/// Escapes text for HTML content and attribute values. Control characters (an agent's
/// colour codes, a NUL) become their visible pictures (`␛`), which HTML can carry.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            '\u{7f}' => out.push('\u{2421}'),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            c => out.push(c),
        }
    }
    out
}

/// `+12.5ms`, `+1.25s`: a moment since the start.
fn at(ms: f64) -> String {
    format!("+{}", duration(ms))
}

/// `0.04ms`, `12.5ms`, `250ms`, `1.25s`, `2s`.
fn duration(ms: f64) -> String {
    if ms >= 1000.0 {
        let s = format!("{:.2}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// A duration counted in whole milliseconds: `0` is "under 1ms".
fn whole_ms(ms: u64) -> String {
    if ms == 0 {
        "under 1ms".into()
    } else {
        duration(ms as f64)
    }
}

/// The name of an escape, for a tag beside the row: its description up to the colon
/// (`shell=True`, `new session`), or when it has none and is long, its kind in words
/// (`parent survived`).
fn escape_name(escape: &Escape) -> String {
    let description = escape.to_string();
    if let Some((name, _)) = description.split_once(": ") {
        return truncate(name, 32);
    }
    if description.chars().count() <= 28 {
        return description;
    }
    serde_json::to_value(escape)
        .ok()
        .and_then(|v| {
            v.get("kind")
                .and_then(|k| k.as_str())
                .map(|k| k.replace('_', " "))
        })
        .unwrap_or_else(|| truncate(&description, 28))
}

/// A command line for a row: paths cut to their file names.
fn short_command(command: &str) -> String {
    command
        .split_whitespace()
        .map(|word| {
            let quote = word.starts_with('\'') || word.starts_with('"');
            let bare = word.trim_start_matches(['\'', '"']);
            let path_like = bare.contains('/')
                && !bare.ends_with('/')
                && !bare.starts_with('-')
                && bare
                    .chars()
                    .all(|c| c.is_alphanumeric() || "/._-+@~:'\"".contains(c));
            if path_like {
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

/// The page's style. The row heights repeat [`ROW`], [`LINE`], [`DETAIL_PAD`], [`LANE`]
/// and [`HEADING`].
const CSS: &str = r#"
:root{--lbl:460px;--end:290px;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;
--surv:#d62839;--surv-bg:#fdeaec;--mono:ui-monospace,SFMono-Regular,"DejaVu Sans Mono",Menlo,Consolas,monospace}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif}
main{max-width:1480px;margin:0 auto;padding:20px 24px 40px}
code,pre{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.bad{color:#b3121f}
h2{font-size:17px;margin:0 0 6px}
h2 .count{display:inline-block;min-width:22px;padding:0 7px;border-radius:11px;background:#eaeef2;font-size:13px;text-align:center}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px}
.verdict{display:flex;gap:16px;align-items:center;border-radius:8px;padding:14px 18px;margin:0 0 16px;color:#fff}
.verdict.leak{background:#b3121f}
.verdict.clean{background:#1a7f37}
.verdict .word{font:700 26px/1 var(--mono);letter-spacing:1px;padding:10px 14px;border:2px solid rgba(255,255,255,.7);border-radius:6px}
.verdict h1{font-size:20px;margin:0 0 2px}
.verdict p{margin:0;opacity:.95}
.verdict .muted{color:inherit;opacity:.8}
.facts dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}
.facts dt{color:var(--muted)}
.facts dd{margin:0}
.wrap{white-space:pre-wrap;word-break:break-all}
.note{margin:0 0 8px;font-size:12.5px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:0 0 10px;font-size:12.5px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.legend .bar,.legend .lead{position:static;display:inline-block;width:26px;height:10px;margin:0}
.legend .swatch{display:inline-block;width:0;height:14px;border-left:2px dashed}
.tl{position:relative;font-size:13px;overflow:hidden}
.row{display:flex;align-items:center;height:28px;border-bottom:1px solid #eaeef2}
.row.axis{align-items:flex-end;border-bottom:1px solid var(--line)}
.row.heading{height:26px;background:#f6f8fa;font-weight:600;color:var(--muted);border-top:1px solid var(--line)}
.row:hover{background:#f3f6fb}
.row.surv,.row.held{background:var(--surv-bg)}
.row.surv:hover,.row.held:hover{background:#fbdadd}
.lbl{flex:none;width:var(--lbl);padding:0 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.trk{flex:1;position:relative;height:100%}
.end{flex:none;width:var(--end);padding:0 10px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-size:12.5px}
.tree{font-family:var(--mono);color:#8c959f;white-space:pre}
.pid{display:inline-block;min-width:58px;font-family:var(--mono);color:var(--muted);text-align:right;margin-right:8px}
.st{display:inline-block;min-width:106px;margin-right:6px;padding:1px 6px;border-radius:4px;font:600 11px/16px var(--mono);text-align:center;background:#eaeef2;color:#424a53}
.st-surv,.st-held{background:#b3121f;color:#fff}
.st-sigkill{background:#bc4c00;color:#fff}
.st-free{background:#dafbe1;color:#116329}
.st-gone{background:none;border:1px solid var(--line)}
.trk i{position:absolute;top:8px;height:12px;border-radius:2px}
i.bar{display:block}
.b-exit{background:#8c959f}
.b-killed{background:#57606a}
.b-gone{background:linear-gradient(90deg,#8c959f,rgba(140,149,159,0))}
.b-sigkill{background:#e16f24}
.b-surv{background:var(--surv);border-radius:2px 0 0 2px}
.p-free{background:#218bff}
.p-held{background:#218bff;border-radius:2px 0 0 2px}
i.lead{display:block;background:repeating-linear-gradient(135deg,#c5ccd3 0 2px,transparent 2px 5px);border-radius:0}
.trk i.cap{width:3px;margin-left:-2px;top:6px;height:16px;border-radius:1px}
.trk i.dot{width:10px;height:10px;top:9px;margin-left:-5px;border-radius:50%}
.trk i.arrow{width:0;height:0;top:6px;border-radius:0;border-top:8px solid transparent;border-bottom:8px solid transparent;border-left:10px solid var(--surv)}
.trk i.arrow.port{border-left-color:#218bff}
.who{display:inline-block;margin-right:6px;padding:0 5px;border-radius:3px;background:#ddf4ff;color:#0550ae;font-size:11px;line-height:16px}
.tag{display:inline-block;padding:0 6px;margin-left:2px;border-radius:9px;background:#fff;border:1px solid #f1aeb5;color:#b3121f;font-size:11.5px;line-height:16px}
.detail{position:relative;z-index:2;background:#fff6f7;border-bottom:1px solid #f5c2c7;padding:4px 0 0 188px;font-size:12.5px;color:#57181d}
.detail .tree{font-size:13px}
.detail div{height:18px;line-height:18px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-right:12px}
.detail b{display:inline-block;min-width:74px;color:#b3121f;font-weight:600}
.ml{position:absolute;z-index:3;white-space:nowrap;font-size:11.5px;line-height:15px;padding:0 3px;background:#fff;border-radius:3px}
.ml.mid{transform:translateX(-50%)}
.ml.right{transform:translateX(-100%)}
.ovl{position:absolute;top:0;left:var(--lbl);width:calc(100% - var(--lbl) - var(--end));pointer-events:none;z-index:1;overflow:visible}
.ovl line{stroke-width:1.5}
.ovl line.link{stroke:#afb8c1;stroke-width:1}
.ovl line.link.gone{stroke-dasharray:2 3}
.ovl circle.link{fill:#afb8c1}
.m-ready{color:#0969da;stroke:#0969da;stroke-dasharray:5 3}
.m-signal{color:#9a6700;stroke:#bf8700;stroke-dasharray:5 3}
.m-quiet{color:#1a7f37;stroke:#1a7f37;stroke-dasharray:2 3}
.m-deadline{color:#82071e;stroke:#82071e;stroke-dasharray:6 2 1 2}
.ml.m-ready,.ml.m-signal,.ml.m-quiet,.ml.m-deadline{border:1px solid currentColor}
.survivors .card{border:1px solid #f5c2c7;border-left:4px solid #e5534b;border-radius:6px;padding:8px 12px;margin:8px 0;background:#fffafa}
.card h3{font-size:14px;margin:0 0 4px;font-weight:600}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0;font-size:13px}
.card dt{color:var(--muted)}
.card dd{margin:0}
.hint{font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2}
pre{background:#f6f8fa;border:1px solid #eaeef2;border-radius:6px;padding:8px 10px;margin:4px 0 10px;white-space:pre-wrap;word-break:break-all;max-height:420px;overflow:auto}
.output h3{font-size:13px;margin:8px 0 0;color:var(--muted)}
details.json{margin:0 0 16px}
details.json summary{cursor:pointer;color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center}
@media (max-width:1280px){:root{--lbl:380px;--end:230px}}
@media (max-width:1000px){:root{--lbl:300px;--end:180px}.pid{min-width:48px}.st{min-width:92px}.detail{padding-left:160px}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("\u{1b}[31mred\u{0}\u{7f}"), "␛[31mred␀␡");
        assert_eq!(esc("tab\tand\nnewline"), "tab\tand\nnewline");
        assert_eq!(esc("plain ünïcode …"), "plain ünïcode …");
    }

    #[test]
    fn the_axis_keeps_order_and_ends_at_the_last_moment() {
        let axis = Axis::new([3.0, 3.4, 1003.4, 3.2]);
        assert_eq!(axis.end(), 1003.4);
        assert_eq!(axis.x(0.0), SPAN.0);
        assert_eq!(axis.x(1003.4), SPAN.1);
        assert_eq!(axis.x(5000.0), SPAN.1, "past the end stays at the end");
        let xs: Vec<f64> = [0.0, 1.0, 3.0, 3.2, 3.4, 100.0, 1003.4]
            .iter()
            .map(|&t| axis.x(t))
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
    }

    #[test]
    fn the_axis_keeps_close_moments_apart_where_a_linear_one_would_not() {
        // Readiness at 3 ms, the kill at 3.4 ms, the verdict a second later: linearly,
        // the kill would sit 0.04 % of the width right of readiness.
        let axis = Axis::new([3.0, 3.4, 1003.4]);
        let apart = axis.x(3.4) - axis.x(3.0);
        assert!(apart > 5.0, "{apart}");
        // The long wait still takes most of the width, and the start-up no more than
        // its share.
        let wait = axis.x(1003.4) - axis.x(3.4);
        assert!(wait > 60.0 && wait > 4.0 * apart, "{wait}");
        let start = axis.x(3.0) - axis.x(0.0);
        assert!(start <= START_SHARE * (SPAN.1 - SPAN.0) + 1e-9, "{start}");
    }

    #[test]
    fn a_run_of_one_moment_has_an_axis() {
        let axis = Axis::new([]);
        assert_eq!(axis.end(), 0.0);
        assert_eq!(axis.x(0.0), SPAN.0);
        assert_eq!(axis.x(f64::NAN), SPAN.0);
    }

    #[test]
    fn marker_labels_that_would_overlap_take_another_lane() {
        let axis = Axis::new([10.0, 10.1, 2000.0]);
        let m = |at: f64| Marker {
            at,
            label: "SIGTERM → agent +10.0ms".into(),
            class: "m-signal",
        };
        let lanes = assign_lanes(&[m(10.0), m(10.1), m(2000.0)], &axis);
        assert_eq!(lanes, [0, 1, 0]);
    }

    #[test]
    fn escape_names_are_short() {
        assert_eq!(
            escape_name(&Escape::ShellTrue { shell_pid: 3 }),
            "shell=True"
        );
        assert_eq!(
            escape_name(&Escape::SignalIgnored {
                signal: crate::Signal::Term
            }),
            "SIGTERM ignored (SigIgn)"
        );
        assert_eq!(
            escape_name(&Escape::ParentSurvived { parent: 12345 }),
            "parent survived"
        );
    }
}
