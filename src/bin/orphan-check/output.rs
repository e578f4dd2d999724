//! What the command line writes besides the library's report: whether the report gets
//! colour (the report styles its own status words), a progress bar, JUnit XML, and
//! files.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use orphan_check::Report;
use quick_junit::{NonSuccessKind, TestCaseStatus};

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

/// A JUnit XML document with one test suite, written by `quick-junit` (the writer
/// nextest uses), which escapes markup and drops ANSI escape sequences and the control
/// characters XML 1.0 cannot carry, as in an agent's raw output.
pub fn junit(suite: &str, cases: &[TestCase]) -> Result<String, Fatal> {
    let mut test_suite = quick_junit::TestSuite::new(xml_text(suite));
    let mut total = Duration::ZERO;
    for case in cases {
        let time = Duration::try_from_secs_f64(case.seconds).unwrap_or_default();
        total += time;
        let status = match &case.result {
            CaseResult::Passed => TestCaseStatus::success(),
            CaseResult::Failed { message, body } => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(xml_text(message))
                    .set_type("leak")
                    .set_description(xml_text(body));
                status
            }
            CaseResult::Error { message } => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(xml_text(message)).set_type("harness");
                status
            }
        };
        let mut test_case = quick_junit::TestCase::new(xml_text(&case.name), status);
        test_case.set_classname(xml_text(suite)).set_time(time);
        test_suite.add_test_case(test_case);
    }
    test_suite.set_time(total);
    let mut report = quick_junit::Report::new(xml_text(suite));
    report.add_test_suite(test_suite).set_time(total);
    report
        .to_string()
        .map_err(|e| Fatal(format!("could not write the JUnit report: {e}")))
}

/// Text without the two noncharacters XML 1.0 excludes besides the control characters
/// (U+FFFE, U+FFFF): `quick-junit` drops the control characters but keeps these, and
/// an agent can print them.
fn xml_text(text: &str) -> String {
    text.replace(['\u{FFFE}', '\u{FFFF}'], "")
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

    /// One element of a parsed document: its name, its attributes and its text, with
    /// the references resolved.
    #[derive(Debug)]
    struct Element {
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
    }

    impl Element {
        fn attr(&self, key: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Parses `xml` back, failing on anything not well-formed: a character XML 1.0
    /// cannot carry (which the reader itself lets through), mismatched tags, unknown
    /// entities.
    fn parse(xml: &str) -> Vec<Element> {
        use quick_xml::events::{BytesStart, Event};

        let bad = xml
            .chars()
            .find(|&c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..));
        assert_eq!(bad, None, "a character XML 1.0 cannot carry in {xml:?}");
        let element = |e: &BytesStart| Element {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    (
                        key,
                        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            text: String::new(),
        };
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let text = match reader.read_event().unwrap() {
                Event::Start(e) => {
                    open.push(elements.len());
                    elements.push(element(&e));
                    continue;
                }
                Event::Empty(e) => {
                    elements.push(element(&e));
                    continue;
                }
                Event::End(_) => {
                    open.pop();
                    continue;
                }
                Event::Text(t) => t.decode().unwrap().into_owned(),
                Event::CData(t) => t.decode().unwrap().into_owned(),
                Event::GeneralRef(r) => match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.decode().unwrap())
                        .expect("a predefined entity")
                        .to_string(),
                },
                Event::Eof => break,
                _ => continue,
            };
            if let Some(&i) = open.last() {
                elements[i].text.push_str(&text);
            }
        }
        assert!(open.is_empty(), "unclosed elements in {xml}");
        elements
    }

    fn case(name: &str, result: CaseResult) -> TestCase {
        TestCase {
            name: name.into(),
            seconds: 0.25,
            result,
        }
    }

    fn failed(body: &str) -> CaseResult {
        CaseResult::Failed {
            message: "2 survived".into(),
            body: body.into(),
        }
    }

    fn named<'a>(elements: &'a [Element], name: &str) -> Vec<&'a Element> {
        elements.iter().filter(|e| e.name == name).collect()
    }

    #[test]
    fn junit_counts_failures_and_errors() {
        let xml = junit(
            "s",
            &[
                case("ok", CaseResult::Passed),
                case("bad <1>", failed("x & y")),
                case(
                    "broken",
                    CaseResult::Error {
                        message: "could not spawn \"agent\"".into(),
                    },
                ),
            ],
        )
        .unwrap();
        let doc = parse(&xml);
        let suites = named(&doc, "testsuites");
        let suite = named(&doc, "testsuite");
        for counts in [suites[0], suite[0]] {
            assert_eq!(counts.attr("tests"), Some("3"), "{xml}");
            assert_eq!(counts.attr("failures"), Some("1"), "{xml}");
            assert_eq!(counts.attr("errors"), Some("1"), "{xml}");
            assert_eq!(counts.attr("time"), Some("0.750"), "{xml}");
        }
        assert_eq!(suite[0].attr("name"), Some("s"));
        let cases = named(&doc, "testcase");
        let names: Vec<_> = cases.iter().map(|c| c.attr("name").unwrap()).collect();
        assert_eq!(names, ["ok", "bad <1>", "broken"]);
        assert!(cases.iter().all(|c| c.attr("classname") == Some("s")));
        assert!(cases.iter().all(|c| c.attr("time") == Some("0.250")));
        let failure = named(&doc, "failure");
        assert_eq!(failure.len(), 1, "{xml}");
        assert_eq!(failure[0].attr("message"), Some("2 survived"));
        assert_eq!(failure[0].attr("type"), Some("leak"));
        assert_eq!(failure[0].text, "x & y");
        let error = named(&doc, "error");
        assert_eq!(error.len(), 1, "{xml}");
        assert_eq!(error[0].attr("message"), Some("could not spawn \"agent\""));
        assert_eq!(error[0].attr("type"), Some("harness"));
    }

    #[test]
    fn junit_keeps_markup_in_the_output_as_text() {
        let body = "]]> <![CDATA[ x ]]> &amp; </failure> \"quoted\" 'single'\n";
        let xml = junit("s", &[case("c", failed(body))]).unwrap();
        assert_eq!(named(&parse(&xml), "failure")[0].text, body);
    }

    #[test]
    fn junit_drops_what_xml_cannot_carry_and_keeps_the_words() {
        // An agent's output as the report quotes it: colour codes, a NUL, a bell, a
        // noncharacter.
        let body = "\x1b[1;31mSURVIVED\x1b[0m pid 12\x00\x07\u{FFFE} listener\n";
        let xml = junit("s\x1b", &[case("c\x00", failed(body))]).unwrap();
        let doc = parse(&xml);
        assert_eq!(named(&doc, "failure")[0].text, "SURVIVED pid 12 listener\n");
        assert_eq!(named(&doc, "testcase")[0].attr("name"), Some("c"));
        assert_eq!(named(&doc, "testsuite")[0].attr("name"), Some("s"));
    }
}
