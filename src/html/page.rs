//! The page's shell (the head with its content security policy, the footer) and its
//! top: the verdict banner and the facts of the run.

use std::fmt::Write as _;

use super::escape::esc;
use super::evidence::{files, json, output, survivors};
use super::style::CSS;
use super::timeline::timeline;
use super::words::{at, duration};
use crate::report::{truncate, Report, Verdict};

impl Report {
    /// The report as one self-contained HTML page, a picture of the run for a CI
    /// artifact: every process on a time axis from its first sighting to its exit, the
    /// readiness and kill moments, each watched port's interval held, survivors in red
    /// with their escape and hint. No script and no external asset: the page's own
    /// content security policy forbids both.
    ///
    /// ```
    /// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
    /// use std::time::Duration;
    ///
    /// let outcome = Scenario::new(Fixture::ShellForkTree.command())
    ///     .ready_when(Ready::stdout_line("ready"))
    ///     .kill(KillPlan::sigterm())
    ///     .run()?;
    /// outcome.survivors_after(Duration::from_millis(300));
    /// let page = outcome.report().to_html();
    /// assert!(page.starts_with("<!DOCTYPE html>"));
    /// assert!(page.contains(r#"data-verdict="leak""#));
    /// # Ok::<(), orphan_check::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        render(self)
    }
}

/// Renders the page.
fn render(report: &Report) -> String {
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
                    (false, crate::signal::Recipient::Group) =>
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
