//! Measures how the sentinel's fork cost grows with the calling process's memory.
//! `cargo run --release --example fork-cost`

use orphan_check::{Fixture, KillPlan, Ready, Scenario};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn scenario_ms() -> f64 {
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let o = Scenario::new(Fixture::Listener.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill())
            .run()
            .unwrap();
        o.assert_no_survivors(Duration::from_secs(5));
        drop(o);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(times)
}

fn main() {
    println!(
        "rss 0 MiB extra: {:.2} ms per clean scenario",
        scenario_ms()
    );
    for mib in [256usize, 1024] {
        let mut block = vec![0u8; mib << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        println!("rss +{mib} MiB: {:.2} ms per clean scenario", scenario_ms());
        std::hint::black_box(&block);
    }
}
