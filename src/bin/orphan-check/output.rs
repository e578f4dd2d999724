//! What the command line writes besides the library's report: whether the report gets
//! colour (the report styles its own status words), a progress bar, JUnit XML, and
//! files.

use std::io::{IsTerminal, Write};
use std::path::Path;

use orphan_check::Report;

use crate::Fatal;

/// Whether stderr gets colour: only on a terminal, and never with `NO_COLOR` set.
pub fn colour_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Whether stderr is a terminal (for the progress bar).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The report's text, its status words coloured when `colour` is on. The report styles
/// the words it writes itself as it writes them, so the agent's captured output and the
/// command lines are never coloured, whatever words they contain.
pub fn report_text(report: &Report, colour: bool) -> String {
    if colour {
        report.coloured().to_string()
    } else {
        report.to_string()
    }
}

/// Writes the report to stderr, coloured when [`colour_stderr`] says so.
pub fn print_report(report: &Report) {
    let text = report_text(report, colour_stderr());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Writes a whole file, or fails with a message naming it.
pub fn write_file(path: &Path, contents: &str) -> Result<(), Fatal> {
    std::fs::write(path, contents)
        .map_err(|e| Fatal(format!("could not write {}: {e}", path.display())))
}

/// A one-line progress bar on stderr, redrawn in place; silent when stderr is not a
/// terminal.
pub struct Progress {
    total: usize,
    shown: bool,
}

impl Progress {
    /// A bar for `total` steps; drawn only on a terminal and only for more than one step.
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            shown: total > 1 && stderr_is_terminal(),
        }
    }

    /// Redraws the bar: `done` steps finished, `leaks` of them leaked.
    pub fn update(&self, done: usize, leaks: usize) {
        if !self.shown {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * done / self.total.max(1);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K  [{}{}] {done}/{}  leaked: {leaks}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.total
        );
        let _ = err.flush();
    }

    /// Erases the bar so that other output starts on a clean line.
    pub fn clear(&self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// One JUnit test case.
pub struct TestCase {
    /// The case's name.
    pub name: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// What the case found.
    pub result: CaseResult,
}

/// How a JUnit test case ended.
pub enum CaseResult {
    /// Clean.
    Passed,
    /// A leak: a short message (the survivors) and the whole report.
    Failed { message: String, body: String },
    /// The harness could not run the scenario.
    Error { message: String },
}

/// The failure message for a leaking report: its survivors, held ports and files.
pub fn leak_message(report: &Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    if report.verdict == orphan_check::Verdict::DidNotFinish {
        parts.push(format!(
            "did not finish within {}ms",
            report.exit_timeout_ms.unwrap_or(0)
        ));
    }
    if !report.survivors.is_empty() {
        let list: Vec<String> = report
            .survivors
            .iter()
            .map(|s| {
                let escapes: Vec<String> = s.escapes.iter().map(ToString::to_string).collect();
                let how = if escapes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", escapes.join("; "))
                };
                format!("pid {} `{}`{how}", s.pid(), s.process.command())
            })
            .collect();
        parts.push(format!(
            "{} survived: {}",
            report.survivors.len(),
            list.join(", ")
        ));
    }
    for p in report.ports.iter().filter(|p| !p.free) {
        parts.push(format!("port {} held", p.port));
    }
    if !report.files.is_empty() {
        parts.push(format!(
            "{} file(s) written after the kill",
            report.files.len()
        ));
    }
    if parts.is_empty() {
        parts.push("leak".into());
    }
    parts.join("; ")
}

/// A JUnit XML document with one test suite.
pub fn junit(suite: &str, cases: &[TestCase]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Failed { .. }))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Error { .. }))
        .count();
    let total: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{total:.3}\">\n",
        cases.len()
    ));
    xml.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{total:.3}\">\n",
        xml_escape(suite),
        cases.len()
    ));
    for case in cases {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            xml_escape(&case.name),
            xml_escape(suite),
            case.seconds
        );
        match &case.result {
            CaseResult::Passed => xml.push_str(&format!("{open}/>\n")),
            CaseResult::Failed { message, body } => xml.push_str(&format!(
                "{open}>\n      <failure message=\"{}\" type=\"leak\">{}</failure>\n    </testcase>\n",
                xml_escape(message),
                xml_escape(body)
            )),
            CaseResult::Error { message } => xml.push_str(&format!(
                "{open}>\n      <error message=\"{}\" type=\"harness\"/>\n    </testcase>\n",
                xml_escape(message)
            )),
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Escapes text for an XML attribute or element, dropping the characters XML 1.0 cannot
/// carry at all (control characters other than tab, newline and carriage return, as in
/// an agent's raw output).
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_never_reaches_into_the_agent_output() {
        // The agent prints the report's own status words: only the report's are coloured.
        let mut agent = std::process::Command::new("sh");
        agent.args([
            "-c",
            "echo 'LEAK CLEAN SURVIVED PORT HELD ZOMBIE DID NOT FINISH'; echo ready; exec sleep 60",
        ]);
        let outcome = orphan_check::Scenario::new(agent)
            .ready_when(orphan_check::Ready::stdout_line("ready"))
            .kill(orphan_check::KillPlan::sigterm())
            .run()
            .expect("the scenario runs");
        outcome.assert_no_survivors(std::time::Duration::from_secs(5));
        let text = report_text(&outcome.report(), true);
        let headline = text.lines().next().unwrap_or_default();
        assert!(
            headline.contains("\u{1b}["),
            "the verdict is coloured: {text}"
        );
        let captured: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("| "))
            .collect();
        assert!(
            captured.iter().any(|l| l.contains("LEAK CLEAN SURVIVED")),
            "{text}"
        );
        for line in captured {
            assert!(
                !line.contains('\u{1b}'),
                "coloured inside the output: {line:?}"
            );
        }
        assert_eq!(
            report_text(&outcome.report(), false),
            outcome.report().to_string()
        );
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'\u{1b}[31m\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;[31m\n"
        );
    }

    #[test]
    fn junit_counts_failures_and_errors() {
        let xml = junit(
            "s",
            &[
                TestCase {
                    name: "ok".into(),
                    seconds: 0.1,
                    result: CaseResult::Passed,
                },
                TestCase {
                    name: "bad <1>".into(),
                    seconds: 0.2,
                    result: CaseResult::Failed {
                        message: "2 survived".into(),
                        body: "x & y".into(),
                    },
                },
            ],
        );
        assert!(xml.contains("<testsuite name=\"s\" tests=\"2\" failures=\"1\" errors=\"0\""));
        assert!(xml.contains("name=\"bad &lt;1&gt;\""));
        assert!(xml.contains("<failure message=\"2 survived\" type=\"leak\">x &amp; y</failure>"));
    }
}
