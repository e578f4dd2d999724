//! One clean scenario, repeated: `cargo run --release --example clean-scenario [N]`
//! prints the median time of start → ready → SIGKILL → verdict → drop.

use orphan_check::{Fixture, KillPlan, Ready, Scenario};
use std::time::{Duration, Instant};

fn main() -> Result<(), orphan_check::Error> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let outcome = Scenario::new(Fixture::Listener.command())
            .ready_when(Ready::stdout_line("ready"))
            .kill(KillPlan::sigkill())
            .run()?;
        outcome.assert_no_survivors(Duration::from_secs(5));
        drop(outcome);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "median {:?}, min {:?} over {n} clean scenarios",
        times[n / 2],
        times[0]
    );
    Ok(())
}
