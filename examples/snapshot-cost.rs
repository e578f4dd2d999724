//! The diagnosed snapshot alone, the figure of section 3 of benches/speed.rs without its
//! 5 000 other processes: `cargo run --release --example snapshot-cost [N]` runs
//! `shell-fork-tree` killed with SIGTERM (its two children survive, each listening on a
//! port) and times `survivors_after(0)` N times (median and minimum). Every survivor is
//! read and diagnosed on each call; the outcome's drop ends them.
//! `SNAPSHOT_COST_LISTENERS=1000` opens that many other listening sockets first (in
//! this process, outside the tree), to see whether the snapshot grows with them.

use orphan_check::{Fixture, KillPlan, Ready, Scenario};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let others: usize = std::env::var("SNAPSHOT_COST_LISTENERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _others: Vec<std::net::TcpListener> = (0..others)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let outcome = Scenario::new(Fixture::ShellForkTree.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()
        .expect("scenario");
    assert_eq!(outcome.survivors_after(Duration::from_millis(200)).len(), 2);
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(outcome.survivors_after(Duration::ZERO));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "survivors_after(0): median {:?}, min {:?}",
        times[n / 2],
        times[0]
    );
}
