//! The timeline section: the marker labels in lanes above the rows, one row per process
//! and per watched port, and the SVG overlay with the marker lines and the parent links.
//!
//! Rows have fixed heights (`style`'s constants, which the CSS repeats), so the overlay
//! places the marker lines and the parent links in pixels, and the time in percent of
//! the track's width (`axis`).

use std::fmt::Write as _;

use super::axis::Axis;
use super::escape::esc;
use super::rows::{port_row, process_row, survivor_details};
use super::style::{HEADING, LANE, ROW};
use super::tree::process_rows;
use super::words::{at, duration};
use crate::report::{Report, Survivor};

/// A vertical line across the timeline, with its label above the rows.
struct Marker {
    at: f64,
    label: String,
    class: &'static str,
}

/// The timeline: marker labels, one row per process (survivors with their details), one
/// per watched port, and the overlay with the marker lines and parent links.
pub(super) fn timeline(page: &mut String, report: &Report) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
