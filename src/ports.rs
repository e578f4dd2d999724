//! Ports: who listens on a watched port, and ports for tests' servers ([`free_port`]).
//!
//! A port verdict asks in three steps, cheapest first: a bind probe
//! (`nothing_listens`: a few system calls whatever the machine's other listeners),
//! then the tree's own sockets (`tree_listeners_on`), then sock_diag (below).
//!
//! A port is *held* while a TCP socket in LISTEN state is bound to it (IPv4 or IPv6).
//! TIME_WAIT entries and client connections do not count: they do not stop the next
//! run from binding. The LISTEN sockets come from netlink `sock_diag` (see
//! `netlink.rs`: the kernel sends only LISTEN sockets, and for one port only that
//! port's), or from `/proc/net/tcp{,6}` when netlink is not allowed (a seccomp sandbox).
//! Holders are found by matching the socket's inode against the `socket:[inode]` links
//! in `/proc/<pid>/fd`, looking first in the scenario's tree and only then, to name a
//! stranger, in every process. The links are read with one `readlink` each
//! (`procs::fd_links`; procfs's `Process::fd` takes four system calls a descriptor,
//! 1.5× as long) and named by procfs (`FDTarget::Socket`).

mod free;

pub use free::{free_port, try_free_port};

use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use procfs::net::TcpState;
use procfs::process::FDTarget;

use crate::netlink::{self, ListenSocket};
use crate::procs::{self, FdLinks, ProcessInfo};
use crate::sentinel;

/// Where a [`Listening`] table came from (for diagnostics and tests).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Source {
    /// Netlink `sock_diag`.
    #[default]
    Netlink,
    /// `/proc/net/tcp` and `/proc/net/tcp6`.
    Proc,
}

/// Set once opening a netlink socket failed (seccomp, an LSM): later reads go straight
/// to `/proc` instead of failing the same way each time.
static NETLINK_REFUSED: AtomicBool = AtomicBool::new(false);

/// The LISTEN sockets of this network namespace, by inode.
#[derive(Debug, Default)]
pub(crate) struct Listening {
    by_inode: HashMap<u64, u16>,
    #[cfg_attr(not(test), allow(dead_code))]
    source: Source,
}

impl Listening {
    /// Reads every LISTEN socket through netlink `sock_diag`, or from `/proc/net/tcp{,6}`
    /// when netlink fails.
    pub(crate) fn read() -> io::Result<Listening> {
        with_fallback(|| netlink_listening(None), Listening::read_proc, |l| l)
    }

    /// Reads every LISTEN socket through netlink `sock_diag` only.
    #[cfg(test)]
    pub(crate) fn read_netlink() -> io::Result<Listening> {
        Ok(Listening::from_sockets(
            netlink::listening(None)?,
            Source::Netlink,
        ))
    }

    /// Reads `/proc/net/tcp` and `/proc/net/tcp6`.
    pub(crate) fn read_proc() -> io::Result<Listening> {
        let mut by_inode = HashMap::new();
        let v4 = procfs::net::tcp().map_err(io::Error::other)?;
        // A kernel without IPv6 has no tcp6 table: that is not an error.
        let v6 = procfs::net::tcp6().unwrap_or_default();
        for entry in v4.into_iter().chain(v6) {
            if entry.state == TcpState::Listen && entry.inode != 0 {
                by_inode.insert(entry.inode, entry.local_address.port());
            }
        }
        Ok(Listening {
            by_inode,
            source: Source::Proc,
        })
    }

    fn from_sockets(sockets: Vec<ListenSocket>, source: Source) -> Listening {
        Listening {
            by_inode: sockets.into_iter().map(|s| (s.inode, s.port)).collect(),
            source,
        }
    }

    /// Where this table came from.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn source(&self) -> Source {
        self.source
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
    #[cfg(test)]
    pub(crate) fn ports_of(&self, pid: i32) -> Vec<u16> {
        if self.by_inode.is_empty() {
            return Vec::new();
        }
        self.ports_in(&FdLinks::read(pid))
    }

    /// Ports the process whose descriptors are `links` listens on, sorted, without
    /// duplicates.
    pub(crate) fn ports_in(&self, links: &FdLinks) -> Vec<u16> {
        let mut ports: Vec<u16> = socket_inodes_in(links)
            .into_iter()
            .filter_map(|inode| self.by_inode.get(&inode).copied())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// Inodes of the LISTEN sockets bound to `port`, sorted: asks the kernel for that port
/// only (its cost does not grow with the number of other listeners), and falls back to
/// `/proc/net/tcp{,6}` when netlink fails.
///
/// The port checks that need no other port (`Outcome::port_verdict`, `Ready::Port`,
/// the busy-port check before a start) are meant to call this instead of
/// `Listening::read().on_port(port)`.
pub(crate) fn on_port_fast(port: u16) -> io::Result<Vec<u64>> {
    with_fallback(
        || netlink_listening(Some(port)),
        Listening::read_proc,
        |l| l.on_port(port),
    )
}

/// Netlink, unless it was refused before; remembers a refusal to open the socket.
fn netlink_listening(port: Option<u16>) -> io::Result<Listening> {
    if NETLINK_REFUSED.load(Ordering::Relaxed) {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    match netlink::listening(port) {
        Ok(sockets) => Ok(Listening::from_sockets(sockets, Source::Netlink)),
        Err(e) => {
            if refused(&e) {
                NETLINK_REFUSED.store(true, Ordering::Relaxed);
            }
            Err(e)
        }
    }
}

/// Errors that will not go away: the sandbox or the kernel does not allow sock_diag.
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EPERM | libc::EACCES | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::ENOSYS
        )
    )
}

/// `fast`, or `slow` when `fast` fails; `then` picks the answer from the table.
fn with_fallback<T>(
    fast: impl FnOnce() -> io::Result<Listening>,
    slow: impl FnOnce() -> io::Result<Listening>,
    then: impl FnOnce(Listening) -> T,
) -> io::Result<T> {
    match fast() {
        Ok(l) => Ok(then(l)),
        Err(_) => slow().map(then),
    }
}

/// The socket inodes among descriptors already read.
pub(crate) fn socket_inodes_in(links: &FdLinks) -> Vec<u64> {
    links
        .iter()
        .filter_map(|(_, link)| match procs::fd_target(link) {
            Some(FDTarget::Socket(inode)) => Some(inode),
            _ => None,
        })
        .collect()
}

/// The socket inodes among a process's open descriptors.
pub(crate) fn socket_inodes(pid: i32) -> Vec<u64> {
    let mut out = Vec::new();
    for_each_socket(pid, |inode| {
        out.push(inode);
        false
    });
    out
}

/// Calls `f` with each socket inode among `pid`'s descriptors until it returns true;
/// returns whether it did.
fn for_each_socket(pid: i32, mut f: impl FnMut(u64) -> bool) -> bool {
    procs::fd_links(pid).any(|(_, link)| match procs::fd_target(&link) {
        Some(FDTarget::Socket(inode)) => f(inode),
        _ => false,
    })
}

/// Which of `candidates` hold one of `inodes`.
pub(crate) fn holders_among(inodes: &[u64], candidates: impl IntoIterator<Item = i32>) -> Vec<i32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    candidates
        .into_iter()
        .filter(|pid| for_each_socket(*pid, |i| inodes.contains(&i)))
        .collect()
}

/// Whether nothing listens on `port` now, by a bind probe: a TCP socket bound to the
/// wildcard address with `SO_REUSEADDR`, IPv4 and then IPv6 (`IPV6_V6ONLY`, where the
/// machine has IPv6), closed at once. Such a bind conflicts with every LISTEN socket on
/// the port, whatever its address, and not with TIME_WAIT entries: a few system calls,
/// whatever the number of other listeners (the kernel looks at the port's own sockets),
/// where a sock_diag query walks every listener.
///
/// `Some(true)`: nothing listens. `Some(false)`: the bind was refused, by a listener or
/// by a socket bound to the port without listening (which does not hold it): the caller
/// asks further. `None`: the probe cannot tell (a privileged port, sockets refused).
///
/// Side effects, for a few microseconds: the port is bound (not listening) by this
/// process, so a server binding it *without* `SO_REUSEADDR` at that very moment gets
/// `EADDRINUSE` (with it, as servers usually bind, nothing changes). The sockets are
/// close-on-exec, and made and closed only while no sentinel is being started
/// ([`sentinel::while_no_start`]), so no sentinel inherits one; a child the caller
/// itself forks meanwhile holds a copy until its `exec`, as it does every descriptor.
pub(crate) fn nothing_listens(port: u16) -> Option<bool> {
    sentinel::while_no_start(|| probe(port))
}

/// The bind probe of [`nothing_listens`], for a caller already holding the start gate.
fn probe(port: u16) -> Option<bool> {
    use rustix::io::Errno;
    use rustix::net::{
        bind, ipproto, socket_with, sockopt, AddressFamily, SocketFlags, SocketType,
    };
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    for v6 in [false, true] {
        let family = if v6 {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        let fd = match socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            Some(ipproto::TCP),
        ) {
            Ok(fd) => fd,
            // No IPv6 on this machine: nothing listens there.
            Err(Errno::AFNOSUPPORT) if v6 => return Some(true),
            Err(_) => return None,
        };
        sockopt::set_socket_reuseaddr(&fd, true).ok()?;
        let bound = if v6 {
            sockopt::set_ipv6_v6only(&fd, true).ok()?;
            bind(&fd, &SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
        } else {
            bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        };
        match bound {
            Ok(()) => {}
            Err(Errno::ADDRINUSE) => return Some(false),
            // IPv6 disabled (no address to bind): nothing listens there.
            Err(Errno::ADDRNOTAVAIL) if v6 => return Some(true),
            Err(_) => return None,
        }
    }
    Some(true)
}

/// The processes among `pids` with a LISTEN socket on `port`, found from their own
/// sockets: each socket descriptor is copied (`pidfd_getfd`), asked whether it listens
/// (`SO_ACCEPTCONN`) and on which port (`getsockname`), and closed. The cost grows with
/// the tree's sockets, not with the machine's listeners.
///
/// `None` when a copy is refused: `pidfd_getfd` needs ptrace access to the process (the
/// same user and Yama's `ptrace_scope` at most 1, where the tree, our descendants,
/// qualifies; or `CAP_SYS_PTRACE`), and a kernel of 5.6 or later. The caller then asks
/// sock_diag. The copies are made and closed only while no sentinel is being started,
/// so no sentinel ever inherits a listening socket of the tree.
pub(crate) fn tree_listeners_on(port: u16, pids: &[i32]) -> Option<Vec<i32>> {
    use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};
    let mut out = Vec::new();
    for &pid in pids {
        let links = FdLinks::read(pid);
        let sockets: Vec<u32> = links
            .iter()
            .filter(|(_, link)| matches!(procs::fd_target(link), Some(FDTarget::Socket(_))))
            .map(|(fd, _)| fd)
            .collect();
        if sockets.is_empty() {
            continue;
        }
        let Some(pidfd) = Pid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        else {
            // Gone since its descriptors were read.
            continue;
        };
        let listens = sentinel::while_no_start(|| {
            for fd in sockets {
                let copy = match pidfd_getfd(&pidfd, fd as i32, PidfdGetfdFlags::empty()) {
                    Ok(copy) => copy,
                    // Closed since, or the process is gone: not a listener of it.
                    Err(rustix::io::Errno::BADF | rustix::io::Errno::SRCH) => continue,
                    Err(_) => return None,
                };
                if !rustix::net::sockopt::socket_acceptconn(&copy).unwrap_or(false) {
                    continue;
                }
                // A Unix listener has no port: its address is no `SocketAddr`.
                let listener = std::net::TcpListener::from(copy);
                if listener.local_addr().is_ok_and(|a| a.port() == port) {
                    return Some(true);
                }
            }
            Some(false)
        })?;
        if listens {
            out.push(pid);
        }
    }
    Some(out)
}

/// Which processes on the machine hold one of `inodes`: the slow path, used only to name
/// a holder that is not in the scenario's tree.
pub(crate) fn holders_anywhere(inodes: &[u64]) -> Vec<i32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    holders_among(inodes, procs::all_pids())
}

/// One process holding a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// When it was first seen held, since the start: at readiness on this port, as the
    /// kill began, or at a verdict's check; `None` when it was never seen held. In JSON
    /// `first_held_ms`, in milliseconds.
    #[serde(rename = "first_held_ms", serialize_with = "as_ms")]
    pub first_held: Option<Duration>,
}

/// Serializes an optional offset from the start as milliseconds, as the report's other
/// times are.
fn as_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
        None => s.serialize_none(),
    }
}

/// Whether something listens on `port` now (an unreadable socket table counts as not).
pub(crate) fn is_held(port: u16) -> bool {
    on_port_fast(port).is_ok_and(|inodes| !inodes.is_empty())
}

/// Who listened on a watched port when the agent was ready, before the kill.
///
/// A scenario that expects its server to leak a port should find the port held by the
/// tree here; if not, the server never held it (another process took it first, the
/// server died with `EADDRINUSE`), and a clean verdict would mean nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PortAtReady {
    /// The port.
    pub port: u16,
    /// True when a process of the agent's tree listened on it.
    pub held_by_tree: bool,
    /// Who listened on it: processes of the tree, or (when none of them did) anyone.
    pub holders: Vec<PortHolder>,
}

impl PortAtReady {
    /// Every watched port, looked at with the tree at readiness.
    pub(crate) fn at_ready(ports: &[u16], tree: &[ProcessInfo]) -> Vec<PortAtReady> {
        if ports.is_empty() {
            return Vec::new();
        }
        let pids: Vec<i32> = tree.iter().map(|p| p.pid).collect();
        ports.iter().map(|&p| PortAtReady::read(p, &pids)).collect()
    }

    /// Looks at `port` now: listeners among `tree` first, else anywhere.
    pub(crate) fn read(port: u16, tree: &[i32]) -> PortAtReady {
        let inodes = on_port_fast(port).unwrap_or_default();
        if inodes.is_empty() {
            return PortAtReady {
                port,
                held_by_tree: false,
                holders: Vec::new(),
            };
        }
        let inside = holders_among(&inodes, tree.iter().copied());
        let held_by_tree = !inside.is_empty();
        let holders = if held_by_tree {
            inside
                .into_iter()
                .map(|pid| PortHolder::describe(pid, true))
                .collect()
        } else {
            holders_anywhere(&inodes)
                .into_iter()
                .map(|pid| PortHolder::describe(pid, false))
                .collect()
        };
        PortAtReady {
            port,
            held_by_tree,
            holders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    /// The inode of a socket we hold, as `/proc/self/fd` shows it.
    fn inode_of(fd: &impl AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .expect("own fd")
            .ino()
    }

    #[test]
    fn a_listener_is_seen_through_netlink_and_proc_with_the_same_inode() {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
        // IPv6 may be disabled on the machine: then only IPv4 is checked.
        let v6 = TcpListener::bind("[::1]:0").ok();
        let mut expected = vec![(v4.local_addr().unwrap().port(), inode_of(&v4))];
        if let Some(l) = &v6 {
            expected.push((l.local_addr().unwrap().port(), inode_of(l)));
        }

        let netlink = Listening::read_netlink().expect("sock_diag answers");
        assert_eq!(netlink.source(), Source::Netlink);
        let proc = Listening::read_proc().expect("/proc/net/tcp reads");
        assert_eq!(proc.source(), Source::Proc);
        for (port, inode) in &expected {
            assert_eq!(netlink.on_port(*port), [*inode], "netlink, port {port}");
            assert_eq!(proc.on_port(*port), [*inode], "proc, port {port}");
            assert_eq!(on_port_fast(*port).unwrap(), [*inode], "fast, port {port}");
        }
        let me = std::process::id() as i32;
        let mut ports: Vec<u16> = expected.iter().map(|(p, _)| *p).collect();
        ports.sort_unstable();
        for l in [&netlink, &proc] {
            let mine: Vec<u16> = l
                .ports_of(me)
                .into_iter()
                .filter(|p| ports.contains(p))
                .collect();
            assert_eq!(mine, ports);
        }
        let inodes: Vec<u64> = expected.iter().map(|(_, i)| *i).collect();
        assert_eq!(holders_among(&inodes, [me]), [me]);
        assert!(holders_anywhere(&inodes).contains(&me));
    }

    #[test]
    fn asking_for_one_port_returns_only_that_port() {
        let wanted = TcpListener::bind("127.0.0.1:0").unwrap();
        let others: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let port = wanted.local_addr().unwrap().port();
        let sockets = netlink::listening(Some(port)).expect("sock_diag answers");
        assert_eq!(
            sockets,
            [ListenSocket {
                inode: inode_of(&wanted),
                port
            }]
        );
        let all = netlink::listening(None).unwrap();
        for o in &others {
            assert!(all.iter().any(|s| s.inode == inode_of(o)));
        }
    }

    #[test]
    fn a_closed_listener_is_gone_and_a_client_socket_never_counts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        assert_eq!(on_port_fast(port).unwrap(), [inode_of(&listener)]);
        drop(listener);
        // The accepted connection still uses the port, but nothing listens on it.
        assert!(on_port_fast(port).unwrap().is_empty());
        assert!(Listening::read_proc().unwrap().on_port(port).is_empty());
        drop((client, server_side));
    }

    #[test]
    fn a_failing_netlink_falls_back_to_proc() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seccomp = || Err(io::Error::from_raw_os_error(libc::EPERM));
        let got = with_fallback(seccomp, Listening::read_proc, |l| {
            (l.source(), l.on_port(port))
        })
        .unwrap();
        assert_eq!(got, (Source::Proc, vec![inode_of(&listener)]));
        // Both failing is an error, not an empty (and so "free") answer.
        let both = with_fallback(seccomp, seccomp, |l| l.on_port(port));
        assert!(both.is_err());
        assert!(refused(&io::Error::from_raw_os_error(libc::EPERM)));
        assert!(!refused(&io::Error::from_raw_os_error(libc::ENOBUFS)));
    }

    #[test]
    fn the_bind_probe_sees_a_listener_on_any_address_and_nothing_else() {
        // "Free" must mean free of every other socket in this process and on the
        // machine: the ports come from `free_port` (reserved, outside the range the
        // kernel hands to other tests' connections, whose bound ports refuse a wildcard
        // bind too), and every socket lives and dies under the start gate, as the
        // probe's own do, so no sentinel another test forks holds a copy of a closed
        // listener (a fork copies every descriptor). A refusal is safe in the product
        // (the caller asks sock_diag); here it would be a wrong "held".
        crate::sentinel::while_no_start(bind_probe_cases);
    }

    fn bind_probe_cases() {
        // Each case: a port with something on it, what the probe says, and what it
        // says once that is gone.
        let v4 = TcpListener::bind(("127.0.0.1", free::free_port())).unwrap();
        let port = v4.local_addr().unwrap().port();
        assert_eq!(probe(port), Some(false), "a loopback listener");
        drop(v4);
        assert_eq!(probe(port), Some(true), "closed");
        assert_eq!(on_port_fast(port).unwrap(), Vec::<u64>::new());

        if let Ok(v6) = TcpListener::bind(("::1", free::free_port())) {
            let port = v6.local_addr().unwrap().port();
            assert_eq!(probe(port), Some(false), "an IPv6 listener");
            drop(v6);
            assert_eq!(probe(port), Some(true));
        }

        // A client's connection and the listener's accepted end use the port too, and
        // hold nothing once the listener is gone.
        let listener = TcpListener::bind(("127.0.0.1", free::free_port())).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        drop(listener);
        assert_eq!(probe(port), Some(true), "connections only");
        drop((client, accepted));

        // A socket bound without listening refuses the probe: the caller asks further.
        let bound = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        rustix::net::bind(
            &bound,
            &std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, free::free_port()),
        )
        .unwrap();
        let port = std::net::TcpListener::from(bound.try_clone().unwrap())
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(probe(port), Some(false), "bound, not listening");
        assert_eq!(
            on_port_fast(port).unwrap(),
            Vec::<u64>::new(),
            "and not held"
        );
    }

    #[test]
    fn a_listener_is_named_from_its_own_socket() {
        let me = std::process::id() as i32;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", other_port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert_eq!(tree_listeners_on(port, &[me]), Some(vec![me]));
        assert_eq!(
            tree_listeners_on(client_port, &[me]),
            Some(vec![]),
            "a client's port is not listened on"
        );
        drop(listener);
        assert_eq!(tree_listeners_on(port, &[me]), Some(vec![]), "closed");
        assert_eq!(tree_listeners_on(port, &[]), Some(vec![]));
    }

    #[test]
    fn no_inodes_means_no_holders() {
        assert!(holders_among(&[], [std::process::id() as i32]).is_empty());
        assert!(Listening::default()
            .ports_of(std::process::id() as i32)
            .is_empty());
    }
}
