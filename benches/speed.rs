//! Benchmarks, side by side with what a user would otherwise run.
//!
//! `cargo bench --bench speed` measures, in one run:
//!
//! 1. a clean scenario against `std::process::Command` spawn + ready line + kill + wait,
//!    at the bench's own RSS and again with 1 GiB allocated and touched (the sentinel is
//!    forked from the calling process);
//! 2. the verdict latency (plan finished → `survivors_after` returns empty) against a
//!    psutil-style loop polling `/proc` every 100 ms;
//! 3. a subtree snapshot with 0 and 5 000 unrelated processes, and psutil's
//!    `children(recursive=True)` (scripts/bench/psutil_children.py) on the same tree,
//!    and where the snapshot's time goes;
//! 4. naming a port's holder against `ss -ltnp` and `lsof -i`, with and without 1 000
//!    extra listening sockets, and the port lookups alone (sock_diag for one port, the
//!    whole LISTEN table, the `/proc/net/tcp` fallback);
//! 5. killing a 1 000-process tree: the sentinel's loop against `cgroup.kill`;
//! 6. the fixture × kill plan matrix of the test suite, in-process on 8 threads.
//!
//! Every figure is a median over repeated runs (plain `Instant`), printed with its
//! baseline and the ratio; a Markdown table of all of them closes the output (it is what
//! docs/benchmarks.md shows). Nothing here asserts a time. Every process the bench starts
//! itself is killed by pid from a guard, also on panic; the scenarios' trees are the
//! library's to clean up (dropping an `Outcome`).
//!
//! The figures below the public API (the bare walk, the port lookups, the per-survivor
//! reads, the diagnosis) call the crate's own functions through `orphan_check::bench`,
//! thin wrappers kept for this bench, so they time the code a verdict runs and not a
//! copy of it.
//!
//! `BENCH_QUICK=1` runs fewer repetitions.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{cgroup_kill_and_wait, human, ratio, scenario_cgroup, Stat};
use orphan_check::bench;
use orphan_check::scenario::CgroupMode;
use orphan_check::{Error, Fixture, KillPlan, Outcome, Ready, Scenario};

// ---------------------------------------------------------------------------------
// Measurement helpers.

/// Times `f` `n` times.
fn time_n(n: usize, mut f: impl FnMut()) -> Stat {
    Stat::of(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Times `a` and `b` alternately, `n` times each, so that both see the same machine.
fn side_by_side(n: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Stat, Stat) {
    let (mut ta, mut tb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        a();
        ta.push(t.elapsed());
        let t = Instant::now();
        b();
        tb.push(t.elapsed());
    }
    (Stat::of(ta), Stat::of(tb))
}

fn reps(full: usize) -> usize {
    if std::env::var_os("BENCH_QUICK").is_some() {
        (full / 5).max(3)
    } else {
        full
    }
}

/// One line of the results table.
struct Row {
    figure: String,
    ours: String,
    baseline: String,
    ratio: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Results(Vec<Row>);

impl Results {
    fn add(
        &mut self,
        figure: impl Into<String>,
        ours: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        goal: impl Into<String>,
        met: Option<bool>,
    ) {
        let row = Row {
            figure: figure.into(),
            ours: ours.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            goal: goal.into(),
            met,
        };
        println!(
            "  => {}: {} | baseline: {} | ratio: {} | goal: {} | {}",
            row.figure,
            row.ours,
            row.baseline,
            row.ratio,
            row.goal,
            verdict(row.met)
        );
        self.0.push(row);
    }

    fn markdown(&self) -> String {
        let mut s = String::from(
            "| figure | orphan-check | baseline (what a user would otherwise do) | ratio | goal | met? |\n\
             | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in &self.0 {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.figure,
                r.ours,
                r.baseline,
                r.ratio,
                r.goal,
                verdict(r.met)
            );
        }
        s
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    }
}

fn vm_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------
// Process hygiene: everything the bench starts itself is killed by pid, on panic too.

/// Children of the bench: SIGKILLed by pid and reaped when dropped.
#[derive(Default)]
struct Kids(Vec<Child>);

impl Kids {
    fn push(&mut self, child: Child) -> &mut Child {
        self.0.push(child);
        self.0.last_mut().expect("just pushed")
    }
}

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// A `sleep` that also dies with the bench (PR_SET_PDEATHSIG through `setpriv`, when
/// installed) and by itself after 10 minutes, should everything else fail.
fn sleeper() -> Command {
    let mut c = if which("setpriv") {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--", "sleep", "600"]);
        c
    } else {
        let mut c = Command::new("sleep");
        c.arg("600");
        c
    };
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Runs a command to completion, output discarded; returns whether it ran.
fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .is_ok()
}

/// A port nobody listens on now (the scenario refuses a busy one; callers retry).
fn free_port() -> u16 {
    orphan_check::free_port()
}

/// Runs the scenario `build` makes for a free port, retrying when the port was taken.
fn on_free_port(build: impl Fn(u16) -> Scenario) -> (Outcome, u16) {
    for _ in 0..10 {
        let port = free_port();
        match build(port).run() {
            Ok(o) => return (o, port),
            Err(Error::PortBusy { .. }) => continue,
            Err(e) => panic!("scenario: {e}"),
        }
    }
    panic!("no free port after 10 tries");
}

// ---------------------------------------------------------------------------------
// 1. A clean scenario against Command.

fn clean_scenario(mode: CgroupMode) {
    let outcome = Scenario::new(Fixture::Listener.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigkill())
        .cgroup(mode)
        .run()
        .expect("clean scenario runs");
    outcome.assert_no_survivors(Duration::from_secs(10));
}

fn plain_command() {
    let mut kids = Kids::default();
    let child = kids.push(
        Fixture::Listener
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn listener"),
    );
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 || line.starts_with("ready") {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
}

fn bench_clean(results: &mut Results) {
    println!("\n## 1. clean scenario vs std::process::Command");
    // Warm up: the first fork, the fixture's page cache, the cgroup root lookup.
    clean_scenario(CgroupMode::Auto);
    plain_command();
    let n = reps(40);
    let rss = vm_rss();
    let (ours, base) = side_by_side(n, || clean_scenario(CgroupMode::Auto), plain_command);
    let cg = if orphan_check::scenario::cgroup_root().is_some() {
        "a cgroup per scenario"
    } else {
        "no writable cgroup"
    };
    let r = ratio(ours.median, base.median);
    results.add(
        format!("clean scenario: run + assert_no_survivors + drop (CgroupMode::Auto: {cg}; bench VmRSS {rss})"),
        ours.to_string(),
        format!("Command spawn + ready line + kill + wait: {base}"),
        format!("{r:.2}×"),
        "≤ 1.5×",
        Some(r <= 1.5),
    );
    let (off, base_off) = side_by_side(n, || clean_scenario(CgroupMode::Off), plain_command);
    let r = ratio(off.median, base_off.median);
    results.add(
        "clean scenario, CgroupMode::Off",
        off.to_string(),
        format!("Command: {base_off}"),
        format!("{r:.2}×"),
        "≤ 1.4×",
        Some(r <= 1.4),
    );
    let (run, assert, drop) = phases(n);
    results.add(
        "… where a clean scenario's time goes (Auto): run() / assert_no_survivors / drop",
        format!(
            "{} / {} / {}",
            human(run.median),
            human(assert.median),
            human(drop.median)
        ),
        "—",
        "—",
        "—",
        None,
    );
}

/// Medians of the three phases of a clean scenario.
fn phases(n: usize) -> (Stat, Stat, Stat) {
    let (mut run, mut assert, mut dropped) = (vec![], vec![], vec![]);
    for _ in 0..n {
        let t = Instant::now();
        let outcome = Scenario::new(Fixture::Listener.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill())
            .run()
            .expect("clean scenario runs");
        run.push(t.elapsed());
        let t = Instant::now();
        outcome.assert_no_survivors(Duration::from_secs(10));
        assert.push(t.elapsed());
        let t = Instant::now();
        drop(outcome);
        dropped.push(t.elapsed());
    }
    (Stat::of(run), Stat::of(assert), Stat::of(dropped))
}

fn bench_large_rss(results: &mut Results) {
    println!("\n## 1b. the sentinel's fork at a large RSS");
    const GIB: usize = 1 << 30;
    let mut ballast = vec![0u8; GIB];
    // Touch every page, so that the memory is really mapped (and its page tables
    // really exist for fork to copy).
    for i in (0..GIB).step_by(4096) {
        ballast[i] = 1;
    }
    std::hint::black_box(&ballast);
    let rss = vm_rss();
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    clean_scenario(CgroupMode::Auto);
    let n = reps(20);
    let (ours, base) = side_by_side(n, || clean_scenario(CgroupMode::Auto), plain_command);
    let r = ratio(ours.median, base.median);
    results.add(
        format!("clean scenario at bench VmRSS {rss} (1 GiB touched; THP {thp})"),
        ours.to_string(),
        format!("Command (posix_spawn, no page-table copy): {base}"),
        format!("{r:.2}×"),
        "≤ 2×",
        Some(r <= 2.0),
    );
    drop(ballast);
}

// ---------------------------------------------------------------------------------
// 2. Verdict latency.

fn bench_verdict(results: &mut Results) {
    println!("\n## 2. verdict latency");
    let n = reps(40);
    let mut plan_to_verdict = Vec::with_capacity(n);
    let mut reap_to_verdict = Vec::with_capacity(n);
    for _ in 0..n {
        let outcome = Scenario::new(Fixture::Listener.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill_group())
            .run()
            .expect("scenario");
        let t = Instant::now();
        let survivors = outcome.survivors_after(Duration::from_secs(10));
        let waited = t.elapsed();
        assert!(survivors.is_empty(), "a SIGKILLed group leaves nothing");
        plan_to_verdict.push(waited);
        // The sentinel's timestamp of the last reap, against the moment the verdict
        // returned (both as offsets from the scenario's start).
        let report = outcome.report();
        let last_exit_ms = report
            .timeline
            .iter()
            .filter_map(|t| t.exit.as_ref().map(|e| e.at_ms))
            .fold(0.0f64, f64::max);
        let verdict_ms = report.killed_ms + waited.as_secs_f64() * 1e3;
        reap_to_verdict.push(Duration::from_secs_f64(
            ((verdict_ms - last_exit_ms) / 1e3).max(0.0),
        ));
    }
    let ours = Stat::of(plan_to_verdict);
    let after_reap = Stat::of(reap_to_verdict);
    let base = psutil_style_poll(reps(12));
    let r = ratio(base.median, ours.median);
    results.add(
        "verdict latency: kill plan done → survivors_after(10 s) returns empty (kill-group)",
        ours.to_string(),
        format!("poll /proc every 100 ms until gone: {base}"),
        format!("{r:.0}× faster"),
        "≤ 0.5 ms median",
        Some(ours.median <= Duration::from_micros(500)),
    );
    results.add(
        "… of which: last reap (sentinel's timestamp) → verdict returned",
        after_reap.to_string(),
        "—",
        "—",
        "—",
        None,
    );
}

/// A psutil-style wait: a loop that looks at `/proc/<pid>` every 100 ms, started
/// independently of the kill (so the kill falls at a random point of its period).
fn psutil_style_poll(n: usize) -> Stat {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let mut kids = Kids::default();
        let child = kids.push(sleeper().spawn().expect("spawn sleep"));
        let pid = child.id();
        let poller = std::thread::spawn(move || loop {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        });
        // The kill lands at a spread of phases of the poller's period (not a
        // synchronisation: the poller does not wait for it).
        let phase = Duration::from_micros(((i as u64 * 7_919) % 100) * 1_000 + 500);
        std::thread::sleep(phase);
        let _ = child.kill();
        let _ = child.wait();
        let gone = Instant::now();
        let seen = poller.join().expect("poller");
        samples.push(seen.saturating_duration_since(gone));
    }
    Stat::of(samples)
}

// ---------------------------------------------------------------------------------
// 3. Subtree snapshot with 0 and 5 000 unrelated processes.

fn psutil_available() -> Result<(), String> {
    if !which("python3") {
        return Err("python3 not installed".into());
    }
    let ok = Command::new("python3")
        .args(["-c", "import psutil"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err("psutil not importable (pip install psutil)".into())
    }
}

/// psutil's `children(recursive=True)` on `pid`, timed by the script itself.
fn psutil_children(pid: i32, repeats: usize) -> Result<(Stat, usize, usize), String> {
    psutil_available()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/psutil_children.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([pid.to_string(), repeats.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        let at = text.find(&format!("\"{name}\": "))? + name.len() + 4;
        let rest = &text[at..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    let (Some(median), Some(min), Some(children), Some(procs)) = (
        field("median_us"),
        field("min_us"),
        field("children"),
        field("processes"),
    ) else {
        return Err(format!("unexpected output: {text}"));
    };
    Ok((
        Stat::from_micros(median, min, repeats),
        children as usize,
        procs as usize,
    ))
}

fn count_processes() -> usize {
    bench::all_pids().len()
}

/// The parts of a survivor snapshot, each through the crate's own functions: the walk
/// (pids only), the walk reading each process, the reads per survivor, the diagnosis.
fn snapshot_parts(outcome: &Outcome, n: usize) -> [Stat; 4] {
    let root = outcome.sentinel_pid();
    let alive = bench::subtree(root);
    assert_eq!(alive.len(), 2, "two survivors");
    let agent = outcome
        .tree_before_kill()
        .iter()
        .find(|p| p.pid == outcome.agent_pid())
        .expect("the agent at readiness");
    let plan = KillPlan::sigterm();
    let reads = bench::survivor_reads(&alive, outcome.run_id());
    let diagnosed = bench::diagnose(&plan, agent, outcome.tree_before_kill(), &reads, root);
    // The wrappers reach the verdict's own answer.
    let verdict = outcome.survivors_after(Duration::ZERO);
    for (survivor, (escapes, missed_by)) in verdict.iter().zip(&diagnosed) {
        assert_eq!(&survivor.escapes, escapes);
        assert_eq!(&survivor.missed_by, missed_by);
    }
    for (survivor, read) in verdict.iter().zip(&reads) {
        assert_eq!(survivor.ports, read.ports);
        assert_eq!(survivor.env_marker, read.marker);
    }
    let walk = time_n(n, || {
        std::hint::black_box(bench::subtree_pids(root));
    });
    let read = time_n(n, || {
        std::hint::black_box(bench::subtree(root));
    });
    let per_survivor = time_n(n, || {
        std::hint::black_box(bench::survivor_reads(&alive, outcome.run_id()));
    });
    let diagnosis = time_n(n, || {
        std::hint::black_box(bench::diagnose(
            &plan,
            agent,
            outcome.tree_before_kill(),
            &reads,
            root,
        ));
    });
    println!(
        "  parts: walk {walk}; walk reading each {read}; per-survivor reads {per_survivor}; diagnosis {diagnosis}"
    );
    [walk, read, per_survivor, diagnosis]
}

fn bench_snapshot(results: &mut Results) {
    println!("\n## 3. subtree snapshot");
    // `shell-fork-tree` killed with SIGTERM on the shell: two listeners survive.
    let outcome = Scenario::new(Fixture::ShellForkTree.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("scenario");
    let survivors = outcome.survivors_after(Duration::from_millis(200));
    assert_eq!(survivors.len(), 2, "two listeners survive");
    let root = outcome.sentinel_pid();
    let n = reps(300);

    let measure = |label: &str| {
        let snap = time_n(n, || {
            std::hint::black_box(outcome.survivors_after(Duration::ZERO));
        });
        let raw = time_n(n, || {
            std::hint::black_box(bench::subtree_pids(root));
        });
        println!("  {label}: survivors_after(0) {snap}; bare walk {raw}");
        (snap, raw)
    };

    let procs_before = count_processes();
    let (snap0, raw0) = measure("0 extra");
    let py0 = psutil_children(root, reps(20));
    let [walk, read, per_survivor, diagnosis] = snapshot_parts(&outcome, n);

    let mut kids = Kids::default();
    let spawn_started = Instant::now();
    for _ in 0..5_000 {
        kids.push(sleeper().spawn().expect("spawn sleep"));
    }
    println!(
        "  started 5 000 sleep processes in {}",
        human(spawn_started.elapsed())
    );
    let procs_after = count_processes();
    let (snap5k, raw5k) = measure("5 000 extra");
    let py5k = psutil_children(root, reps(20));
    drop(kids);

    let r = ratio(snap5k.median, snap0.median);
    results.add(
        format!(
            "subtree snapshot: survivors_after(0) on a tree of 2 survivors, {procs_after} processes on the machine"
        ),
        snap5k.to_string(),
        format!("the same with {procs_before} processes: {snap0}"),
        format!("{r:.2}×"),
        "≤ 1.2×",
        Some(r <= 1.2),
    );
    let rr = ratio(raw5k.median, raw0.median);
    results.add(
        "… the bare /proc/<pid>/task/*/children walk",
        raw5k.to_string(),
        format!("with {procs_before} processes: {raw0}"),
        format!("{rr:.2}×"),
        "—",
        None,
    );
    results.add(
        format!(
            "… where survivors_after(0) goes ({procs_before} processes): walk / walk reading each process / per-survivor reads (LISTEN table, ports, marker, pipes) / diagnosis"
        ),
        format!(
            "{} / {} / {} / {}",
            human(walk.median),
            human(read.median),
            human(per_survivor.median),
            human(diagnosis.median)
        ),
        "—",
        "—",
        "—",
        None,
    );
    match (py0, py5k) {
        (Ok((p0, c0, m0)), Ok((p5k, c5k, m5k))) => {
            let r = ratio(p5k.median, snap5k.median);
            results.add(
                format!("subtree snapshot vs psutil at {m5k} processes"),
                snap5k.to_string(),
                format!("psutil Process(sentinel).children(recursive=True) ({c5k} found): {p5k}"),
                format!("{r:.0}× faster"),
                "≥ 1000×",
                Some(r >= 1000.0),
            );
            let r = ratio(p5k.median, raw5k.median);
            results.add(
                format!(
                    "bare subtree walk vs psutil at {m5k} processes (like for like: pids only)"
                ),
                raw5k.to_string(),
                format!("psutil children(recursive=True): {p5k}"),
                format!("{r:.0}× faster"),
                "≥ 1000×",
                Some(r >= 1000.0),
            );
            let r = ratio(p0.median, snap0.median);
            results.add(
                format!("… survivors_after(0) vs psutil at {m0} processes"),
                snap0.to_string(),
                format!("psutil ({c0} found): {p0}"),
                format!("{r:.0}× faster"),
                "—",
                None,
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            println!("  psutil comparison skipped: {e}");
            results.add(
                "subtree snapshot vs psutil",
                snap5k.to_string(),
                format!("skipped: {e}"),
                "—",
                "≥ 1000×",
                None,
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// 4. Who holds a port.

fn bench_port_holder(results: &mut Results) {
    println!("\n## 4. port-holder lookup");
    // `sigterm-ignorer` ignores the SIGTERM: it survives, holding its port.
    let (outcome, port) = on_free_port(|port| {
        let mut c = Fixture::SigtermIgnorer.command();
        c.args(["--port", &port.to_string()]);
        Scenario::new(c)
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigterm())
            .watch_port(port)
    });
    let verdict = outcome.port_verdict(port, Duration::ZERO);
    assert!(!verdict.free, "the survivor holds the port");
    assert_eq!(verdict.holders.len(), 1, "one holder: {verdict:?}");
    assert!(verdict.holders[0].descendant);

    let ss = which("ss");
    let lsof = which("lsof");
    let ss_filter = format!("sport = :{port}");
    let lsof_arg = format!(":{port}");
    let measure = |label: &str, results: &mut Results| {
        let n = reps(200);
        let ours = time_n(n, || {
            let v = outcome.port_verdict(port, Duration::ZERO);
            assert!(!v.free && !v.holders.is_empty());
        });
        println!("  {label}: port_verdict {ours}");
        let fast = time_n(n, || {
            let holders = bench::port_holders_in_tree(port, outcome.sentinel_pid());
            assert_eq!(holders.expect("LISTEN sockets").len(), 1);
        });
        println!("  {label}: one-port sock_diag + tree walk {fast}");
        let lookup = |read: fn(u16) -> std::io::Result<Vec<u64>>| {
            time_n(n, || {
                assert!(!read(port).expect("LISTEN sockets").is_empty())
            })
        };
        let one = lookup(bench::listeners);
        let table = lookup(bench::listeners_from_full_table);
        let proc = lookup(bench::listeners_from_proc);
        println!("  {label}: lookup alone: one port {one}; whole table {table}; /proc {proc}");
        results.add(
            format!(
                "… port lookup alone ({label}): sock_diag one port / whole LISTEN table / /proc/net/tcp{{,6}} fallback"
            ),
            format!(
                "{} / {} / {}",
                human(one.median),
                human(table.median),
                human(proc.median)
            ),
            "—",
            "—",
            "—",
            None,
        );
        let with_ss = ss.then(|| {
            time_n(reps(30), || {
                assert!(run_quiet("ss", &["-ltnp", &ss_filter]))
            })
        });
        let with_lsof =
            lsof.then(|| time_n(reps(10), || assert!(run_quiet("lsof", &["-i", &lsof_arg]))));
        if let Some(s) = &with_ss {
            let r = ratio(s.median, fast.median);
            results.add(
                format!("port holder ({label}), one-port path (sock_diag sport)"),
                fast.to_string(),
                format!("`ss -ltnp 'sport = :PORT'`: {s}"),
                format!("{r:.0}× faster"),
                "≥ 30×",
                Some(r >= 30.0),
            );
        }
        match with_ss {
            Some(s) => {
                let r = ratio(s.median, ours.median);
                results.add(
                    format!(
                        "port holder ({label}): port_verdict(port, 0) → holder named, in the tree"
                    ),
                    ours.to_string(),
                    format!("`ss -ltnp 'sport = :PORT'`: {s}"),
                    format!("{r:.0}× faster"),
                    "≥ 30×",
                    Some(r >= 30.0),
                );
            }
            None => results.add(
                format!("port holder ({label})"),
                ours.to_string(),
                "skipped: ss not installed",
                "—",
                "≥ 30×",
                None,
            ),
        }
        match with_lsof {
            Some(s) => {
                let r = ratio(s.median, ours.median);
                results.add(
                    format!("… ({label}) vs lsof"),
                    ours.to_string(),
                    format!("`lsof -i :PORT`: {s}"),
                    format!("{r:.0}× faster"),
                    "≥ 30×",
                    Some(r >= 30.0),
                );
            }
            None => results.add(
                format!("… ({label}) vs lsof"),
                ours.to_string(),
                "skipped: lsof not installed",
                "—",
                "≥ 30×",
                None,
            ),
        }
        (ours, fast, one)
    };
    let (base, base_fast, base_one) = measure("no extra listeners", results);
    let extra: Vec<TcpListener> = (0..1_000)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an extra listener"))
        .collect();
    let (more, more_fast, more_one) = measure("1 000 extra listening sockets", results);
    drop(extra);
    let r = ratio(more.median, base.median);
    results.add(
        "port holder, port_verdict: 1 000 extra listeners vs none",
        more.to_string(),
        format!("no extra listeners: {base}"),
        format!("{r:.2}×"),
        "flat",
        Some(r <= 1.2),
    );
    let r = ratio(more_fast.median, base_fast.median);
    results.add(
        "port holder, one-port path: 1 000 extra listeners vs none",
        more_fast.to_string(),
        format!("no extra listeners: {base_fast}"),
        format!("{r:.2}×"),
        "flat",
        Some(r <= 1.2),
    );
    let r = ratio(more_one.median, base_one.median);
    results.add(
        "… the one-port sock_diag lookup alone: 1 000 extra listeners vs none",
        more_one.to_string(),
        format!("no extra listeners: {base_one}"),
        format!("{r:.2}×"),
        "—",
        None,
    );
}

// ---------------------------------------------------------------------------------
// 5. Killing a 1 000-process tree.

const TREE: &str =
    "i=0; while [ $i -lt 1000 ]; do sleep 600 & i=$((i+1)); done; echo ready; exec sleep 600";

fn tree_scenario(mode: CgroupMode) -> Outcome {
    let mut c = Command::new("sh");
    c.args(["-c", TREE]);
    // SIGTERM ends the agent (the `sleep` the shell became); its 1 000 siblings-turned-
    // orphans stay, children of the sentinel now.
    let outcome = Scenario::new(c)
        .ready_when(Ready::stdout_line("ready"))
        .ready_timeout(Duration::from_secs(120))
        .kill(KillPlan::sigterm())
        .cgroup(mode)
        .run()
        .expect("tree scenario");
    assert!(
        outcome.tree_before_kill().len() >= 1_000,
        "a 1 000-process tree"
    );
    outcome
}

fn bench_kill_tree(results: &mut Results) {
    println!("\n## 5. killing a 1 000-process tree");
    let n = reps(9);
    let mut sentinel = Vec::with_capacity(n);
    let mut with_cgroup = Vec::with_capacity(n);
    let mut bare_cgroup = Vec::with_capacity(n);
    let mut cgroup_reaped = Vec::with_capacity(n);
    let cgroup = orphan_check::scenario::cgroup_root();
    for _ in 0..n {
        let outcome = tree_scenario(CgroupMode::Off);
        let t = Instant::now();
        drop(outcome);
        sentinel.push(t.elapsed());
        if cgroup.is_some() {
            let outcome = tree_scenario(CgroupMode::Required);
            let t = Instant::now();
            drop(outcome);
            with_cgroup.push(t.elapsed());

            let outcome = tree_scenario(CgroupMode::Required);
            if let Some(dir) = scenario_cgroup(&outcome) {
                let t = Instant::now();
                if cgroup_kill_and_wait(&dir, Duration::from_secs(30)) {
                    bare_cgroup.push(t.elapsed());
                    // `populated 0` comes as the last process leaves the cgroup, early in
                    // its exit; the same processes still have to finish exiting and be
                    // reaped, which the sentinel's "empty" (ECHILD) says they have.
                    if outcome.survivors_after(Duration::from_secs(30)).is_empty() {
                        cgroup_reaped.push(t.elapsed());
                    }
                }
            }
            drop(outcome);
        }
    }
    let sentinel = Stat::of(sentinel);
    if bare_cgroup.is_empty() {
        results.add(
            "kill a 1 000-process tree: drop(Outcome), sentinel's SIGKILL-and-reap loop (CgroupMode::Off)",
            sentinel.to_string(),
            "skipped: no writable cgroup v2",
            "—",
            "≤ 1.2×",
            None,
        );
        return;
    }
    let bare = Stat::of(bare_cgroup);
    let with_cgroup = Stat::of(with_cgroup);
    let r = ratio(sentinel.median, bare.median);
    results.add(
        "kill a 1 000-process tree: drop(Outcome), sentinel's SIGKILL-and-reap loop (CgroupMode::Off)",
        sentinel.to_string(),
        format!("write cgroup.kill, wait for `populated 0`: {bare}"),
        format!("{r:.2}×"),
        "≤ 1.2×",
        Some(r <= 1.2),
    );
    if !cgroup_reaped.is_empty() {
        let reaped = Stat::of(cgroup_reaped);
        let r = ratio(sentinel.median, reaped.median);
        results.add(
            "… the same drop (CgroupMode::Off) vs cgroup.kill until every process is reaped (like for like: both end with the tree reaped)",
            sentinel.to_string(),
            format!("write cgroup.kill, wait for the sentinel's \"empty\": {reaped}"),
            format!("{r:.2}×"),
            "—",
            None,
        );
    }
    let r = ratio(with_cgroup.median, bare.median);
    results.add(
        "… drop(Outcome) with CgroupMode::Required (cgroup.kill, then the sentinel reaps)",
        with_cgroup.to_string(),
        format!("cgroup.kill alone: {bare}"),
        format!("{r:.2}×"),
        "—",
        None,
    );
}

// ---------------------------------------------------------------------------------
// 6. The matrix, in-process.

#[derive(Clone, Copy)]
enum How {
    Direct,
    Plain,
    Group,
    Session,
}

fn matrix_command(fixture: Fixture, how: How, port: u16) -> Command {
    let mut child_args = vec!["--port".to_string(), port.to_string()];
    if fixture == Fixture::SlowPortHolder {
        child_args.extend(["--hold-ms".into(), "5000".into()]);
    }
    let how = match how {
        How::Direct => {
            let mut c = fixture.command();
            c.args(&child_args);
            return c;
        }
        How::Plain => "plain",
        How::Group => "group",
        How::Session => "session",
    };
    let mut c = Fixture::Agent.command();
    c.args(["--child", fixture.name(), "--how", how, "--"])
        .args(&child_args);
    c
}

fn bench_matrix(results: &mut Results) {
    println!("\n## 6. the fixture × kill plan × start matrix, in-process, 8 threads");
    let deadline = Duration::from_millis(500);
    let mut cells = Vec::new();
    for fixture in [
        Fixture::Listener,
        Fixture::SigtermIgnorer,
        Fixture::ShellForkTree,
        Fixture::SlowPortHolder,
    ] {
        for how in [How::Direct, How::Plain, How::Group, How::Session] {
            for plan in KillPlan::all(Duration::from_millis(300)) {
                cells.push((fixture, how, plan));
            }
        }
    }
    let total = cells.len();
    let cells = Arc::new(Mutex::new(cells));
    let leaks = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cells = Arc::clone(&cells);
            let leaks = Arc::clone(&leaks);
            std::thread::spawn(move || loop {
                let Some((fixture, how, plan)) = cells.lock().expect("cells").pop() else {
                    return;
                };
                let (outcome, port) = on_free_port(|port| {
                    Scenario::new(matrix_command(fixture, how, port))
                        .ready_when(Ready::stdout_line("ready"))
                        .kill(plan)
                        .watch_port(port)
                });
                let survivors = outcome.survivors_after(deadline);
                let _ = outcome.port_verdict(port, deadline);
                if outcome.report().is_leak() || !survivors.is_empty() {
                    leaks.fetch_add(1, Ordering::Relaxed);
                }
                drop(outcome);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("matrix thread");
    }
    let wall = started.elapsed();
    results.add(
        format!(
            "fixture × kill plan × start matrix: {total} scenarios ({} leaks) on 8 threads, {} cores",
            leaks.load(Ordering::Relaxed),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        human(wall),
        "—",
        "—",
        "≤ 30 s on 2 cores",
        Some(wall <= Duration::from_secs(30)),
    );
}

// ---------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects sections by number.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "orphan-check speed: {cores} cores, kernel {kernel}, cgroup v2 root: {}",
        orphan_check::scenario::cgroup_root()
            .map_or_else(|| "none writable".into(), |p| p.display().to_string())
    );
    let mut results = Results::default();
    if run("1") {
        bench_clean(&mut results);
    }
    if run("2") {
        bench_verdict(&mut results);
    }
    if run("3") {
        bench_snapshot(&mut results);
    }
    if run("4") {
        bench_port_holder(&mut results);
    }
    if run("5") {
        bench_kill_tree(&mut results);
    }
    if run("6") {
        bench_matrix(&mut results);
    }
    if run("1b") || run("1") {
        bench_large_rss(&mut results);
    }
    println!("\n{}", results.markdown());
}
