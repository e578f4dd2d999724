//! The timeline's processes in the order of the tree, each under its original parent,
//! with the branches (`├─`, `└─`) the text report draws.

use std::collections::{HashMap, HashSet};

use crate::report::{Report, Survivor, TimelineEntry};

/// How a process row is drawn.
pub(super) struct ProcessRow<'a> {
    pub(super) entry: &'a TimelineEntry,
    pub(super) survivor: Option<&'a Survivor>,
    /// Its branch of the tree (`│  └─ `).
    pub(super) branch: String,
    /// What continues the tree under it (`│     `), beside its details.
    pub(super) under: String,
    pub(super) parent_row: Option<usize>,
}

/// The timeline's entries in the order of the tree, each under its original parent, as
/// the text report draws them.
pub(super) fn process_rows(report: &Report) -> Vec<ProcessRow<'_>> {
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
