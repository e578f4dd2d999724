//! The agent's captured output: the first lines and the last lines, never all of it.
//!
//! Capture must never stall the agent, so the harness reads the pipes continuously and
//! keeps a bounded head and tail; whatever falls between is counted and reported as
//! omitted.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;

const HEAD_LINES: usize = 10;
const TAIL_LINES: usize = 40;
const MAX_LINE: usize = 400;
/// A line longer than this without a newline is cut and stored as it is.
const MAX_PENDING: usize = 4096;

/// The head and tail of one output stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutputTail {
    head: Vec<String>,
    tail: VecDeque<String>,
    omitted: usize,
    #[serde(skip)]
    pending: Vec<u8>,
    total_lines: usize,
}

impl OutputTail {
    /// Feeds raw bytes; calls `on_line` for every complete line.
    pub(crate) fn feed(&mut self, bytes: &[u8], mut on_line: impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' || self.pending.len() >= MAX_PENDING {
                let line = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                on_line(&line);
                self.push(line);
                if b == b'\n' {
                    continue;
                }
            }
            self.pending.push(b);
        }
    }

    /// Stores a final line without a newline, at end of file.
    pub(crate) fn finish(&mut self, on_line: impl FnOnce(&str)) {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            on_line(&line);
            self.push(line);
        }
    }

    fn push(&mut self, mut line: String) {
        self.total_lines += 1;
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        if self.head.len() < HEAD_LINES {
            self.head.push(line);
            return;
        }
        self.tail.push_back(line);
        if self.tail.len() > TAIL_LINES {
            self.tail.pop_front();
            self.omitted += 1;
        }
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.total_lines == 0 && self.pending.is_empty()
    }

    /// Every kept line, in order, with no omission marker.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.head
            .iter()
            .chain(self.tail.iter())
            .map(String::as_str)
            .chain(
                std::iter::once(&self.pending)
                    .filter(|p| !p.is_empty())
                    .map(|p| std::str::from_utf8(p).unwrap_or("<partial line>")),
            )
    }

    /// How many lines were dropped between head and tail.
    pub fn omitted(&self) -> usize {
        self.omitted
    }
}

impl fmt::Display for OutputTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.head {
            writeln!(f, "{line}")?;
        }
        if self.omitted > 0 {
            writeln!(f, "… {} lines omitted …", self.omitted)?;
        }
        for line in &self.tail {
            writeln!(f, "{line}")?;
        }
        if !self.pending.is_empty() {
            writeln!(f, "{}", String::from_utf8_lossy(&self.pending))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_rest() {
        let mut out = OutputTail::default();
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let mut seen = 0;
        out.feed(text.as_bytes(), |_| seen += 1);
        assert_eq!(seen, 100);
        assert_eq!(out.omitted(), 100 - HEAD_LINES - TAIL_LINES);
        let rendered = out.to_string();
        assert!(rendered.starts_with("line 0\n"));
        assert!(rendered.contains("… 50 lines omitted …\nline 60\n"));
        assert!(rendered.ends_with("line 99\n"));
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut out = OutputTail::default();
        let mut lines = Vec::new();
        out.feed(b"rea", |l| lines.push(l.to_string()));
        out.feed(b"dy pid=1\npartial", |l| lines.push(l.to_string()));
        assert_eq!(lines, ["ready pid=1"]);
        out.finish(|l| lines.push(l.to_string()));
        assert_eq!(lines, ["ready pid=1", "partial"]);
    }

    #[test]
    fn endless_lines_are_cut_not_buffered_forever() {
        let mut out = OutputTail::default();
        let mut n = 0;
        out.feed(&vec![b'x'; MAX_PENDING * 3], |_| n += 1);
        assert_eq!(n, 2);
        assert!(out.lines().all(|l| l.chars().count() <= MAX_PENDING + 1));
    }
}
