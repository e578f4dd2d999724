//! Who listens on a port.
//!
//! A port is *held* while a TCP socket in LISTEN state is bound to it (IPv4 or IPv6).
//! TIME_WAIT entries and client connections do not count: they do not stop the next
//! run from binding. Holders are found by matching the socket's inode against the
//! `socket:[inode]` links in `/proc/<pid>/fd`, looking first in the scenario's tree and
//! only then, to name a stranger, in every process.

use serde::Serialize;
use std::collections::HashMap;
use std::io;

use procfs::net::TcpState;

use crate::procs::ProcessInfo;

/// The LISTEN sockets of this network namespace, by inode.
#[derive(Debug, Default)]
pub(crate) struct Listening {
    by_inode: HashMap<u64, u16>,
}

impl Listening {
    /// Reads `/proc/net/tcp` and `/proc/net/tcp6`.
    pub(crate) fn read() -> io::Result<Listening> {
        let mut by_inode = HashMap::new();
        let v4 = procfs::net::tcp().map_err(io::Error::other)?;
        // A kernel without IPv6 has no tcp6 table: that is not an error.
        let v6 = procfs::net::tcp6().unwrap_or_default();
        for entry in v4.into_iter().chain(v6) {
            if entry.state == TcpState::Listen && entry.inode != 0 {
                by_inode.insert(entry.inode, entry.local_address.port());
            }
        }
        Ok(Listening { by_inode })
    }

    /// Inodes of the LISTEN sockets bound to `port`.
    pub(crate) fn on_port(&self, port: u16) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .by_inode
            .iter()
            .filter(|(_, p)| **p == port)
            .map(|(i, _)| *i)
            .collect();
        v.sort_unstable();
        v
    }

    /// Ports `pid` listens on, sorted, without duplicates.
    pub(crate) fn ports_of(&self, pid: i32) -> Vec<u16> {
        let mut ports: Vec<u16> = socket_inodes(pid)
            .into_iter()
            .filter_map(|inode| self.by_inode.get(&inode).copied())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// The socket inodes among a process's open descriptors.
pub(crate) fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter_map(|target| {
            let s = target.to_str()?;
            s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Which of `candidates` hold one of `inodes`.
pub(crate) fn holders_among(inodes: &[u64], candidates: impl IntoIterator<Item = i32>) -> Vec<i32> {
    candidates
        .into_iter()
        .filter(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i)))
        .collect()
}

/// Which processes on the machine hold one of `inodes`: the slow path, used only to name
/// a holder that is not in the scenario's tree.
pub(crate) fn holders_anywhere(inodes: &[u64]) -> Vec<i32> {
    let pids = procfs::process::all_processes()
        .map(|all| all.flatten().map(|p| p.pid).collect::<Vec<_>>())
        .unwrap_or_default();
    holders_among(inodes, pids)
}

/// One process holding a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortHolder {
    /// The holder's pid.
    pub pid: i32,
    /// Its command line.
    pub command: String,
    /// Whether it descends from the agent (is in the scenario's tree).
    pub descendant: bool,
}

impl PortHolder {
    pub(crate) fn describe(pid: i32, descendant: bool) -> PortHolder {
        PortHolder {
            pid,
            command: ProcessInfo::read(pid).map_or_else(|| "<gone>".into(), |p| p.command()),
            descendant,
        }
    }
}

/// Whether a watched port went free, and who held it if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortVerdict {
    /// The port.
    pub port: u16,
    /// True when no LISTEN socket was bound to it at the verdict.
    pub free: bool,
    /// Milliseconds after the kill at which it was seen free (or the deadline).
    pub checked_after_kill_ms: u64,
    /// Who held it, when it was held. Empty when the holder could not be read (another
    /// user's process, without privileges).
    pub holders: Vec<PortHolder>,
}
