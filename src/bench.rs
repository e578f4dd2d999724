//! The crate's internal functions, for its benchmarks: **not part of the API**.
//!
//! benches/speed.rs (and `examples/procfs-cost.rs`) time the very code a verdict runs:
//! the subtree walk, the port lookups, the per-survivor reads and the diagnosis. Those
//! are crate-private, so this module wraps them, each in a line or two that adds no
//! work of its own. It is hidden from the documentation and outside semantic
//! versioning: anything here may change or go in any release.
//!
//! A hidden module rather than a `bench` feature: `cargo bench --bench speed` works as
//! it is (a feature would need `required-features` on the bench, so that the documented
//! command fails or skips it without `--features bench`), and a wrapper costs nothing
//! when nothing calls it.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use crate::diagnosis::{self, Context};
use crate::diagnosis::{Cleanup, Escape};
use crate::kill::KillPlan;
use crate::ports::{self, Listening};
use crate::procs::{self, ProcessInfo};

/// The pids under `root` (not `root`), parents first: the walk of
/// `/proc/<pid>/task/<tid>/children` that port and file verdicts take.
pub fn subtree_pids(root: i32) -> Vec<i32> {
    procs::subtree_pids(root)
}

/// Every live process under `root`, read (`stat`, `status`, `cmdline`): the walk a
/// survivor snapshot starts with.
pub fn subtree(root: i32) -> Vec<ProcessInfo> {
    procs::subtree(root)
}

/// Every pid on the machine (the `/proc` listing of the slow paths).
pub fn all_pids() -> Vec<i32> {
    procs::all_pids()
}

/// The LISTEN sockets on `port`, by inode, as verdicts ask: netlink `sock_diag` for that
/// port only, `/proc/net/tcp{,6}` when netlink fails.
pub fn listeners(port: u16) -> io::Result<Vec<u64>> {
    ports::on_port_fast(port)
}

/// The LISTEN sockets on `port` from the whole table (every port's LISTEN sockets
/// through netlink, `/proc` when it fails), as a survivor snapshot reads it.
pub fn listeners_from_full_table(port: u16) -> io::Result<Vec<u64>> {
    Listening::read().map(|l| l.on_port(port))
}

/// The LISTEN sockets on `port` from `/proc/net/tcp{,6}`: the fallback alone.
pub fn listeners_from_proc(port: u16) -> io::Result<Vec<u64>> {
    Listening::read_proc().map(|l| l.on_port(port))
}

/// The processes under `root` holding `port`: [`listeners`], then the socket links in
/// the descriptors of the tree (what `Outcome::port_verdict` does for a held port,
/// before naming the holders).
pub fn port_holders_in_tree(port: u16, root: i32) -> io::Result<Vec<i32>> {
    let inodes = ports::on_port_fast(port)?;
    Ok(ports::holders_among(&inodes, procs::subtree_pids(root)))
}

/// The socket inodes among `pid`'s descriptors (the per-process fd scan).
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    ports::socket_inodes(pid)
}

/// Whether `pid`'s environment carries `ORPHAN_CHECK_RUN=<run_id>`.
pub fn carries_marker(pid: i32, run_id: &str) -> Option<bool> {
    procs::carries_marker(pid, run_id)
}

/// The cgroup2 mount point in `/proc/<pid>/mountinfo` text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    crate::cgroup::cgroup2_mount(mountinfo)
}

/// What a survivor snapshot reads about one survivor, besides its `ProcessInfo`.
#[derive(Debug, Clone)]
pub struct SurvivorReads {
    /// The process.
    pub process: ProcessInfo,
    /// The ports it listens on.
    pub ports: Vec<u16>,
    /// Whether it carries the run's marker.
    pub marker: Option<bool>,
    /// Its stdin's pipe inode, when stdin is a pipe.
    pub stdin_pipe: Option<u64>,
    /// How many pipes it holds.
    pub pipes: usize,
}

/// The reads a survivor snapshot makes for each survivor of `alive` (its descriptors
/// once; the LISTEN table once, only when one of them holds a socket; then per survivor
/// its ports, marker, stdin and pipes), as `survivors_after` makes them for the first
/// survivors.
pub fn survivor_reads(alive: &[ProcessInfo], run_id: &str) -> Vec<SurvivorReads> {
    let links: Vec<procs::FdLinks> = alive.iter().map(|p| procs::FdLinks::read(p.pid)).collect();
    let listening = if links.iter().any(|l| !ports::socket_inodes_in(l).is_empty()) {
        Listening::read().unwrap_or_default()
    } else {
        Listening::default()
    };
    alive
        .iter()
        .zip(&links)
        .map(|(p, links)| SurvivorReads {
            process: p.clone(),
            ports: listening.ports_in(links),
            marker: procs::carries_marker(p.pid, run_id),
            stdin_pipe: crate::pipes::stdin_pipe_in(links),
            pipes: crate::pipes::pipes_in(links).len(),
        })
        .collect()
}

/// The diagnosis of each survivor (its escapes, and the cleanups that would have missed
/// it), from the scenario's plan, the agent as it started, the tree before the kill
/// and what was read about the survivors. Without what only an `Outcome` knows (how the
/// reaped processes ended, a launcher's exit, stdin pipes left without a writer), which
/// the diagnosis only looks up.
pub fn diagnose(
    plan: &KillPlan,
    agent: &ProcessInfo,
    before_kill: &[ProcessInfo],
    survivors: &[SurvivorReads],
    sentinel: i32,
) -> Vec<(Vec<Escape>, Vec<Cleanup>)> {
    let alive: Vec<ProcessInfo> = survivors.iter().map(|s| s.process.clone()).collect();
    let cx = Context::new(
        plan,
        agent,
        before_kill,
        &alive,
        sentinel,
        None,
        HashMap::new(),
    );
    survivors
        .iter()
        .map(|s| {
            (
                diagnosis::escapes(&s.process, &s.ports, s.marker, &cx),
                diagnosis::missed_by(&s.process, s.marker, &cx),
            )
        })
        .collect()
}

/// The clean path's step marks recorded since the last call, each a label and the
/// instant its step ended (feature `cost-trace`; examples/clean-cost.rs prints them).
#[cfg(feature = "cost-trace")]
pub fn cost_marks() -> Vec<(&'static str, std::time::Instant)> {
    crate::cost_trace::take_marks()
}

/// A process's facts read through procfs, as `ProcessInfo::read` read them before it
/// read `stat`, `status` and `cmdline` by hand (examples/procfs-cost.rs).
pub fn procfs_process_info(pid: i32) -> Option<ProcessInfo> {
    procs::read_through_procfs(pid)
}
