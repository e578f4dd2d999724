//! Times the crate's hand-written `/proc` reads against `procfs` doing the same, for the
//! choice documented in src/procs.rs, src/cgroup.rs and docs/benchmarks.md.
//! `cargo run --release --example procfs-cost`
//!
//! The hand-written side is the crate's own code, through `orphan_check::bench` (and,
//! for the `/proc` listing, the loop the crate had before it used procfs's); the other
//! side calls procfs 0.18 directly. Each pair is checked to give the same answer first.

use std::hint::black_box;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use orphan_check::process::ProcessInfo;
use orphan_check::{bench, Fixture, KillPlan, Ready, Scenario};
use procfs::process::{FDTarget, Process};

/// Median and minimum of `n` calls, after a tenth as many to warm up.
fn time(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        f();
    }
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort_unstable();
    (v[n / 2], v[0])
}

/// One comparison: the read by hand, then through procfs, and procfs's time over it.
fn row(what: &str, n: usize, by_hand: impl FnMut(), procfs: impl FnMut()) {
    let (a, a_min) = time(n, by_hand);
    let (b, b_min) = time(n, procfs);
    println!(
        "{what:<52} by hand {a:>9.1?} (min {a_min:>8.1?})  procfs {b:>9.1?} (min {b_min:>8.1?})  {:.2}×",
        b.as_secs_f64() / a.as_secs_f64()
    );
}

fn procfs_mount() -> Option<std::path::PathBuf> {
    let mounts = Process::myself().ok()?.mountinfo().ok()?;
    mounts
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
}

fn procfs_sockets(pid: i32) -> Vec<u64> {
    let Ok(fds) = Process::new(pid).and_then(|p| p.fd()) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect()
}

fn procfs_children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = Process::new(pid).and_then(|p| p.tasks()) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| t.children().ok())
        .flatten()
        .map(|c| c as i32)
        .collect()
}

fn procfs_walk(root: i32) -> Vec<i32> {
    let mut queue: std::collections::VecDeque<i32> = procfs_children(root).into();
    let mut out = Vec::new();
    while let Some(pid) = queue.pop_front() {
        queue.extend(procfs_children(pid));
        out.push(pid);
    }
    out
}

fn procfs_marker(pid: i32, run_id: &str) -> Option<bool> {
    let env = Process::new(pid).ok()?.environ().ok()?;
    Some(env.get(std::ffi::OsStr::new(orphan_check::RUN_ENV)) == Some(&run_id.into()))
}

/// The `/proc` listing as the crate read it before it used procfs's.
fn pids_by_hand() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn main() -> Result<(), orphan_check::Error> {
    let n = 2_000;
    let mountinfo = || std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let lines = mountinfo().lines().count();
    assert_eq!(bench::cgroup2_mount(&mountinfo()), procfs_mount());
    row(
        &format!("cgroup2 mount, /proc/self/mountinfo ({lines} lines)"),
        n,
        || drop(black_box(bench::cgroup2_mount(&mountinfo()))),
        || drop(black_box(procfs_mount())),
    );
    // A mount table the size of a container host's, parsed only.
    let mut big = String::new();
    for i in 0..500 {
        big.push_str(&format!(
            "{} 23 0:{i} / /var/lib/docker/overlay2/{i:064}/merged rw,relatime shared:{i} - overlay overlay rw,lowerdir=/a:/b,upperdir=/c,workdir=/d\n",
            100 + i
        ));
    }
    big.push_str("999 23 0:99 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n");
    row(
        "… parsing a 501-line table only",
        300,
        || drop(black_box(bench::cgroup2_mount(&big))),
        || {
            let m: procfs::process::MountInfos =
                procfs::FromBufRead::from_buf_read(big.as_bytes()).expect("parses");
            black_box(m.into_iter().find(|m| m.fs_type == "cgroup2"));
        },
    );

    let me = std::process::id() as i32;
    for (count, n) in [(3, n), (1_000, 200)] {
        let listeners: Vec<TcpListener> = (0..count)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        assert_eq!(bench::socket_inodes(me), procfs_sockets(me));
        row(
            &format!("socket inodes of a process with {fds} descriptors"),
            n,
            || drop(black_box(bench::socket_inodes(me))),
            || drop(black_box(procfs_sockets(me))),
        );
        drop(listeners);
    }

    // The bench's tree: a shell's two listeners, left behind by a SIGTERM to the shell.
    let outcome = Scenario::new(Fixture::ShellForkTree.command())
        .ready_when(Ready::stdout_line("ready"))
        .kill(KillPlan::sigterm())
        .run()?;
    let survivors = outcome.survivors_after(Duration::from_millis(200));
    let root = outcome.sentinel_pid();
    let mut ours = bench::subtree_pids(root);
    let mut theirs = procfs_walk(root);
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    row(
        &format!("tree walk, task/*/children ({} processes)", ours.len()),
        n,
        || drop(black_box(bench::subtree_pids(root))),
        || drop(black_box(procfs_walk(root))),
    );
    let survivor = survivors.first().expect("a survivor").pid();
    assert_eq!(
        ProcessInfo::read(survivor),
        bench::procfs_process_info(survivor)
    );
    row(
        "ProcessInfo of one process (stat, status, cmdline)",
        n,
        || drop(black_box(ProcessInfo::read(survivor))),
        || drop(black_box(bench::procfs_process_info(survivor))),
    );
    let run_id = outcome.run_id();
    assert_eq!(
        bench::carries_marker(survivor, run_id),
        procfs_marker(survivor, run_id)
    );
    row(
        "environment marker of one process",
        n,
        || {
            black_box(bench::carries_marker(survivor, run_id));
        },
        || {
            black_box(procfs_marker(survivor, run_id));
        },
    );
    drop(outcome);

    let procs = pids_by_hand().len();
    row(
        &format!("the /proc listing ({procs} processes)"),
        500,
        || drop(black_box(pids_by_hand())),
        || drop(black_box(bench::all_pids())),
    );
    Ok(())
}
