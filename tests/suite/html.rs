//! The picture of a run (`Report::to_html`): its structure, its escaping, the data it
//! draws (when each port was first seen held, when each process was first seen), and
//! how a real browser renders it.
//!
//! The browser tests run Debian's headless chromium (`apt-get install chromium`) and
//! skip, saying why, when it is not installed; `OC_REQUIRE_CHROMIUM=1` makes a missing
//! browser a failure instead (CI sets it), and `OC_HTML_OUT=DIR` keeps the pages and
//! their screenshots there. Chromium runs as the agent of a scenario of its own, so the
//! processes it leaves behind (crash handlers, zygotes) are the sentinel's to end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orphan_check::fixture::fixture_dir;
use orphan_check::scenario::CgroupMode;
use orphan_check::{Fixture, KillPlan, Outcome, Ready, Report, Scenario};

use crate::common::{run_with_port, DEADLINE};

/// Text that would be markup if it reached the page unescaped: it closes the elements
/// it may land in, opens a script, an image with a handler and a marked element.
const HOSTILE: &str = r#"</title></code>"'><script>document.body.dataset.injected='1'</script><img src=x onerror=alert(1)><b id="injected">"#;

/// The survivor bars' colour (`--surv` in the page's CSS), used for nothing else.
const SURVIVOR_RED: [u8; 3] = [0xd6, 0x28, 0x39];

/// `sh -c` starting two listeners in the background, every argument and the first line
/// of output carrying [`HOSTILE`]. SIGTERM to the shell ends only the shell: both
/// listeners survive (`shell=True`), the second one holding the watched port.
fn hostile_shell_tree(port: u16) -> Scenario {
    let listener = fixture_dir().join("listener");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"printf '%s\n' "$2"; "$0" --quiet "$2" & "$0" --port "$1" --await-sibling "$!" "$2" & wait"#)
        .arg(listener)
        .arg(port.to_string())
        .arg(HOSTILE);
    Scenario::new(cmd)
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .watch_port(port)
        .cgroup(CgroupMode::Off)
}

/// The leak: two survivors, the port held.
fn leak_report() -> (Outcome, Report) {
    let (outcome, port) = run_with_port(hostile_shell_tree);
    assert_eq!(outcome.survivors_after(DEADLINE).len(), 2);
    assert!(!outcome.port_verdict(port, Duration::from_millis(100)).free);
    let report = outcome.report();
    (outcome, report)
}

/// The clean run: a listener that SIGTERM ends, ready when its port listens.
fn clean_report() -> (Outcome, Report) {
    let (outcome, port) = run_with_port(|p| {
        let mut cmd = Fixture::Listener.command();
        cmd.args(["--port", &p.to_string()]);
        Scenario::new(cmd)
            .ready_when(Ready::port(p))
            .kill(KillPlan::sigterm())
    });
    outcome.assert_no_survivors(DEADLINE);
    assert!(outcome.port_verdict(port, DEADLINE).free);
    let report = outcome.report();
    (outcome, report)
}

fn count(page: &str, needle: &str) -> usize {
    page.matches(needle).count()
}

/// The elements and attributes the page is made of: anything else in a page (or in the
/// DOM a browser built from it) came from the run's text, unescaped.
const ELEMENTS: &[&str] = &[
    "!doctype", "html", "head", "meta", "title", "style", "body", "main", "header", "footer",
    "section", "article", "details", "summary", "h1", "h2", "h3", "p", "div", "span", "code",
    "pre", "b", "i", "br", "dl", "dt", "dd", "ul", "li", "table", "tbody", "tr", "th", "td", "svg",
    "line", "circle",
];
const ATTRIBUTES: &[&str] = &[
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "class",
    "style",
    "title",
    "id",
    "data-verdict",
    "data-pid",
    "data-port",
    "width",
    "height",
    "aria-hidden",
    "x1",
    "x2",
    "y1",
    "y2",
    "cx",
    "cy",
    "r",
    // `<!DOCTYPE html>`, read as a tag.
    "html",
];

/// Every tag of an HTML text, as (name, attribute names, attribute values). Attribute
/// values are double-quoted (the page writes them so, and a browser serializes them so);
/// outside them, a `<` opens a tag.
fn tags(html: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        rest = rest.strip_prefix('/').unwrap_or(rest);
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_lowercase();
        rest = &rest[name_end..];
        let (mut names, mut values) = (Vec::new(), Vec::new());
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if rest.is_empty() || rest.starts_with('>') {
                rest = rest.get(1..).unwrap_or("");
                break;
            }
            let key_end = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .unwrap_or(rest.len());
            names.push(rest[..key_end].to_lowercase());
            rest = &rest[key_end..];
            if let Some(v) = rest.strip_prefix("=\"") {
                let close = v.find('"').expect("a closed attribute value");
                values.push(v[..close].to_string());
                rest = &v[close + 1..];
            } else if let Some(v) = rest.strip_prefix('=') {
                let end = v
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(v.len());
                values.push(v[..end].to_string());
                rest = &v[end..];
            }
        }
        out.push((name, names, values));
    }
    out
}

/// Only the page's own elements and attributes; no id but a survivor card's.
fn assert_only_own_markup(html: &str) {
    for (name, attributes, values) in tags(html) {
        assert!(
            ELEMENTS.contains(&name.as_str()),
            "element <{name}> in the page"
        );
        for a in &attributes {
            assert!(
                ATTRIBUTES.contains(&a.as_str()),
                "attribute {a} on <{name}>"
            );
        }
        if let Some(i) = attributes.iter().position(|a| a == "id") {
            assert!(values[i].starts_with("survivor-"), "id {:?}", values[i]);
        }
    }
}

/// Nothing in the page can reach the network or run code.
fn assert_self_contained(page: &str) {
    assert!(page.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">"#
    ));
    assert_only_own_markup(page);
    let style = &page[page.find("<style>").unwrap()..page.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"));
}

#[test]
fn the_page_of_a_leak_draws_every_process_and_each_survivor_in_red_with_its_escape() {
    let (_outcome, report) = leak_report();
    let page = report.to_html();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<main class="report" data-verdict="leak">"#));
    assert!(page.contains("<div class=\"word\">LEAK</div>"));
    assert_self_contained(&page);
    // One row per process of the timeline; the survivors' rows are red.
    assert_eq!(
        count(&page, "<div class=\"row proc "),
        report.timeline.len()
    );
    assert_eq!(count(&page, "<div class=\"row proc surv\""), 2, "{page}");
    for s in &report.survivors {
        assert!(
            page.contains(&format!(
                "<div class=\"row proc surv\" data-pid=\"{}\"",
                s.pid()
            )),
            "no red row for survivor {}",
            s.pid()
        );
        // Its escape and its hint beside it (escaped as the page escapes everything).
        let escape = s.escapes[0].to_string();
        assert!(escape.starts_with("shell=True"), "{escape}");
        assert!(page.contains(&escape), "{escape}");
        assert!(page.contains(s.hints[0]));
        assert!(page.contains(&format!("id=\"survivor-{}\"", s.pid())));
    }
    // The shell the plan killed: its row, and its exit.
    let shell = report
        .timeline
        .iter()
        .find(|e| e.pid == report.agent_pid)
        .unwrap();
    assert!(page.contains(&format!(
        "<div class=\"row proc killed\" data-pid=\"{}\"",
        shell.pid
    )));
    assert!(page.contains("killed by SIGTERM"));
    // The moments: readiness, the signal, the deadline the survivors outlived.
    assert!(page.contains("ready +"));
    assert!(page.contains("SIGTERM → agent +"));
    assert!(page.contains("deadline: kill + 500ms"));
    // The parent links: each listener hangs under the shell.
    assert_eq!(count(&page, "<line class=\"link"), 2);
    assert!(page.contains("├─ ") && page.contains("└─ "));
    // The watched port: held, with its holder.
    let port = &report.ports[0];
    assert!(page.contains(&format!(
        "<div class=\"row port held\" data-port=\"{}\"",
        port.port
    )));
    assert!(page.contains("<i class=\"bar p-held\""));
}

#[test]
fn the_page_of_a_clean_run_has_no_red_row() {
    let (_outcome, report) = clean_report();
    let page = report.to_html();
    assert!(page.contains(r#"<main class="report" data-verdict="clean">"#));
    assert!(page.contains("<div class=\"word\">CLEAN</div>"));
    assert_self_contained(&page);
    assert_eq!(
        count(&page, "<div class=\"row proc "),
        report.timeline.len()
    );
    assert_eq!(count(&page, "class=\"row proc surv\""), 0);
    assert!(!page.contains("b-surv\" style"));
    assert!(page.contains("tree empty +"));
    assert!(page.contains("<div class=\"row port free\""));
    assert!(!page.contains("<section class=\"survivors\">"));
}

#[test]
fn text_from_the_run_cannot_inject_markup_into_the_page() {
    // The leak, with a file written after the kill (by this test) in a watched directory.
    let dir = tempfile::tempdir().unwrap();
    let (outcome, _port) = run_with_port(|p| hostile_shell_tree(p).watch_dir(dir.path()));
    std::fs::write(dir.path().join("written-after-the-kill"), "x").unwrap();
    assert_eq!(outcome.survivors_after(DEADLINE).len(), 2);
    let mut report = outcome.report();
    // The run's own hostile text (command lines, output) is in the report already; put
    // it in every other text field a page shows too.
    report.command = HOSTILE.into();
    report.run_id = HOSTILE.into();
    report.ready = HOSTILE.into();
    report.plan.does = HOSTILE.into();
    for e in &mut report.timeline {
        assert!(e.command.contains("<script>") || e.command.starts_with('['));
        if let Some(exit) = &mut e.exit {
            exit.how = HOSTILE.into();
        }
    }
    for s in &mut report.survivors {
        s.process.comm = HOSTILE.into();
    }
    for p in &mut report.ports {
        for h in &mut p.holders {
            h.command = HOSTILE.into();
        }
    }
    assert_eq!(report.files.len(), 1, "{report}");
    report.files[0].path = PathBuf::from(format!("/tmp/{HOSTILE}"));
    assert!(report.stdout.lines().any(|l| l.contains("<script>")));
    let page = report.to_html();
    assert_self_contained(&page);
    assert!(!page.contains("id=\"injected\""));
    assert!(!page.contains("\"'>"), "an attribute could be closed");
    // Each text is there, as text.
    let escaped = "&lt;/title&gt;&lt;/code&gt;&quot;&#39;&gt;&lt;script&gt;";
    assert!(count(&page, escaped) > 10, "{page}");
    // The title (raw text in HTML's eyes) too.
    let title = &page[page.find("<title>").unwrap()..page.find("</title>").unwrap()];
    assert!(title.contains("&lt;/title&gt;"));
}

// ------------------------------------------------------------------- the data drawn

#[test]
fn a_port_is_first_seen_held_at_readiness_on_it_or_as_the_kill_begins() {
    // Ready on the port: its interval starts at readiness.
    let (_outcome, report) = clean_report();
    let first = report.ports[0].first_held.expect("seen held").as_secs_f64() * 1000.0;
    assert_eq!(first, report.ready_ms);
    // Ready on a line, the port watched: seen held by the check before the kill.
    let (_outcome, report) = leak_report();
    let first = report.ports[0].first_held.expect("seen held").as_secs_f64() * 1000.0;
    assert!(first >= report.ready_ms, "{first} < {}", report.ready_ms);
    assert!(first <= report.signals[0].at_ms, "{first} > the SIGTERM");
}

#[test]
fn a_watched_port_nobody_binds_is_never_seen_held() {
    let (outcome, port) = run_with_port(|p| {
        Scenario::new(Fixture::Listener.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .watch_port(p)
    });
    let verdict = outcome.port_verdict(port, DEADLINE);
    assert!(verdict.free);
    assert_eq!(verdict.first_held, None);
    let page = outcome.report().to_html();
    assert!(page.contains("never seen held"));
}

#[test]
fn processes_seen_at_readiness_are_first_seen_then_not_at_a_delayed_kill() {
    // The shell's two listeners exist at readiness (the ready line implies both); the
    // kill comes 300 ms later.
    let outcome = Scenario::new(Fixture::ShellForkTree.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill_after(Duration::from_millis(300))
        .kill(KillPlan::sigkill_group())
        .run()
        .expect("the scenario runs");
    outcome.assert_no_survivors(DEADLINE);
    let report = outcome.report();
    let sigkill = report.signals[0].at_ms;
    assert!(sigkill - report.ready_ms >= 300.0);
    let children: Vec<_> = report
        .timeline
        .iter()
        .filter(|e| e.pid != report.agent_pid)
        .collect();
    assert_eq!(children.len(), 2, "{:#?}", report.timeline);
    for c in children {
        let seen = c.first_seen_ms.expect("seen alive");
        assert_eq!(seen, report.ready_ms, "{c:?}");
        // And the sentinel's reap of it is matched to it.
        assert!(
            c.exit
                .as_ref()
                .is_some_and(|x| x.how == "killed by SIGKILL"),
            "{c:?}"
        );
    }
}

// ---------------------------------------------------------------- in a real browser

/// What chromium made of a page.
struct Rendered {
    /// The DOM after parsing, as `--dump-dom` prints it.
    dom: String,
    /// Every console message (script errors, refused loads, policy violations).
    console: Vec<String>,
    /// The screenshot.
    png: PathBuf,
}

/// The browser, or `None` (with the reason printed) when the test should skip.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("OC_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("OC_REQUIRE_CHROMIUM").is_none(),
            "OC_REQUIRE_CHROMIUM is set but no chromium was found (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium at /usr/bin/chromium (apt-get install chromium, or set OC_CHROMIUM)");
    }
    found
}

/// Renders `page` headless, 1400×1000, with no network and a fresh profile.
fn render(chromium: &Path, page: &Path) -> Rendered {
    let dir = page.parent().unwrap();
    let (dom, log, png) = (
        dir.join("dom.html"),
        dir.join("chromium.log"),
        dir.join("shot.png"),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"out=$1 err=$2; shift 2; "$@" >"$out" 2>"$err"; echo "done $?""#)
        .arg("sh")
        .arg(&dom)
        .arg(&log)
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()));
    let outcome = Scenario::new(cmd)
        .ready_when(Ready::stdout_line("done"))
        .ready_timeout(Duration::from_secs(90))
        .kill(KillPlan::sigkill_group())
        .run()
        .expect("chromium runs to its end");
    let status = outcome
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("done ").map(str::to_owned));
    outcome.kill_remaining(Duration::from_secs(10));
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.as_deref(), Some("0"), "chromium failed:\n{log}");
    // Kept for people to look at, when asked (CI keeps them as artifacts).
    if let Some(keep) = std::env::var_os("OC_HTML_OUT") {
        let keep = Path::new(&keep);
        let name = page.file_stem().unwrap().to_string_lossy();
        std::fs::copy(page, keep.join(format!("{name}.html"))).expect("copy the page");
        std::fs::copy(&png, keep.join(format!("{name}.png"))).expect("copy the screenshot");
    }
    Rendered {
        dom: std::fs::read_to_string(&dom).expect("chromium dumped the DOM"),
        console: log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
        png,
    }
}

/// The bands of pixel rows (top, bottom) where a run at least `min_run` pixels wide has
/// exactly the colour `rgb`.
fn bands_of(png: &Path, rgb: [u8; 3], min_run: usize) -> Vec<(u32, u32)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("one frame");
    let channels = info.color_type.samples();
    assert!(matches!(
        info.color_type,
        png::ColorType::Rgb | png::ColorType::Rgba
    ));
    let mut bands: Vec<(u32, u32)> = Vec::new();
    for y in 0..info.height {
        let row = &buf[y as usize * info.line_size..][..info.line_size];
        let (mut run, mut best) = (0, 0);
        for px in row.chunks(channels) {
            run = if px[..3] == rgb { run + 1 } else { 0 };
            best = best.max(run);
        }
        if best >= min_run {
            match bands.last_mut() {
                Some((_, bottom)) if *bottom + 1 == y => *bottom = y,
                _ => bands.push((y, y)),
            }
        }
    }
    bands
}

#[test]
fn chromium_renders_the_page_of_a_leak_without_errors_with_each_survivor_row_in_red() {
    let Some(chromium) = chromium() else { return };
    let (_outcome, report) = leak_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("leak.html");
    std::fs::write(&page, report.to_html()).unwrap();
    let shown = render(&chromium, &page);
    assert!(
        shown.console.is_empty(),
        "console messages: {:#?}",
        shown.console
    );
    // Parsed as written: the verdict, two red rows, and the hostile text as text only.
    assert!(shown.dom.contains(r#"data-verdict="leak""#));
    assert_eq!(count(&shown.dom, "class=\"row proc surv\""), 2);
    assert_only_own_markup(&shown.dom);
    assert!(!shown.dom.contains("data-injected="));
    assert!(shown
        .dom
        .contains("&lt;script&gt;document.body.dataset.injected"));
    // The screenshot shows both survivors' bars: two bands of the survivor red, each a
    // bar's height (12 px), in the upper part of the page.
    let bands = bands_of(&shown.png, SURVIVOR_RED, 60);
    assert_eq!(
        bands.len(),
        2,
        "red bands {bands:?} in {}",
        shown.png.display()
    );
    for (top, bottom) in bands {
        assert_eq!(bottom - top + 1, 12, "a bar is 12 px high: {top}..{bottom}");
        assert!(bottom < 1000);
    }
}

#[test]
fn chromium_renders_the_page_of_a_clean_run_without_errors_and_without_red() {
    let Some(chromium) = chromium() else { return };
    let (_outcome, report) = clean_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("clean.html");
    std::fs::write(&page, report.to_html()).unwrap();
    let shown = render(&chromium, &page);
    assert!(
        shown.console.is_empty(),
        "console messages: {:#?}",
        shown.console
    );
    assert!(shown.dom.contains(r#"data-verdict="clean""#));
    assert!(shown.dom.contains("class=\"row proc killed\""));
    // (The legend's swatch of the survivor red is 26 px wide.)
    assert_eq!(bands_of(&shown.png, SURVIVOR_RED, 60), vec![]);
    // The verdict banner is there: a wide band of its green.
    assert!(!bands_of(&shown.png, [0x1a, 0x7f, 0x37], 400).is_empty());
}
