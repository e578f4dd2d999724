//! Ports for tests that run in parallel: free now, and never handed out twice.
//!
//! "Bind port 0, read the number, close, give it to the server" races: between the close
//! and the server's bind, anything may take the port, including another test that asked
//! the same way (the kernel hands out recently freed ephemeral ports again) or an
//! outgoing connection's local port. The server then dies with `EADDRINUSE`, and a test
//! that expected a leak sees a clean tree. [`free_port`] closes the race where it starts:
//!
//! - it walks a range *outside* the kernel's ephemeral range
//!   (`/proc/sys/net/ipv4/ip_local_port_range`), so neither `bind(0)` nor `connect` ever
//!   picks its ports, and outside `portpicker`'s 15000-25000, where other test suites on
//!   the machine pick theirs (25001-32767 with Linux's defaults), skipping
//!   `ip_local_reserved_ports`;
//! - within the process it never hands out the same port twice (a cursor over that range,
//!   from a random start);
//! - across processes (nextest runs each test in a process of its own) each port handed
//!   out is reserved by an abstract Unix socket named after it, which other callers
//!   cannot bind; the kernel drops the reservation when the process exits, and the process
//!   keeps only its last [`RESERVATIONS`];
//! - and it probes: a port is handed out only if a TCP bind (without `listen`) on the
//!   IPv4 and IPv6 wildcard addresses succeeds now.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// The lowest port handed out: below it live the well-known services (3000, 5432, 8080…).
const FLOOR: u16 = 10_000;

/// The range `portpicker`, the usual port picker of Rust test suites, draws from: other
/// suites on the same machine take ports there without asking us.
const PICKED_BY_OTHERS: (u16, u16) = (15_000, 25_000);

/// How many cross-process reservations a process keeps (one file descriptor each); a
/// port handed out that many calls ago is released to other processes.
pub const RESERVATIONS: usize = 256;

/// A TCP port for a test's server: nothing is bound to it now, this process never handed
/// it out before, other processes calling this function will not get it, and the kernel
/// never picks it for `bind(0)` or an outgoing connection.
///
/// Use it instead of binding port 0 and closing, when the server that will listen on the
/// port is another process started by the test:
///
/// ```
/// use orphan_check::{Fixture, KillPlan, Ready, Scenario, free_port};
/// use std::time::Duration;
///
/// let port = free_port();
/// let mut server = Fixture::Listener.command();
/// server.args(["--port", &port.to_string()]);
/// let outcome = Scenario::new(server)
///     .ready_when(Ready::port(port))
///     .kill(KillPlan::sigterm())
///     .run()?;
/// assert!(outcome.port_at_ready(port).is_some_and(|p| p.held_by_tree));
/// outcome.assert_port_free(port, Duration::from_secs(2));
/// # Ok::<(), orphan_check::Error>(())
/// ```
///
/// A program that does not call it (a server on a fixed port, another tool picking
/// ports its own way) can still take the port; a test that needs the port held can ask
/// [`Outcome::port_at_ready`](crate::Outcome::port_at_ready).
///
/// # Panics
///
/// When no port of the range is left (see [`try_free_port`]).
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("orphan-check: no free port: {e}"))
}

/// [`free_port`], with an error instead of a panic when every port of the range was
/// handed out already or is in use.
pub fn try_free_port() -> io::Result<u16> {
    static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(Allocator::new).next()
}

/// The process-wide cursor and the reservations it holds.
struct Allocator {
    low: u16,
    len: u32,
    start: u32,
    /// Ports looked at so far: each is looked at once in the process's life.
    tried: u32,
    reserved_by_kernel: Vec<(u16, u16)>,
    reservations: VecDeque<UnixDatagram>,
}

impl Allocator {
    fn new() -> Allocator {
        let ephemeral = read_range("/proc/sys/net/ipv4/ip_local_port_range")
            .and_then(|r| r.first().copied())
            .unwrap_or((32768, 60999));
        let (low, high) = outside(ephemeral);
        let len = u32::from(high - low) + 1;
        let mut random = RandomState::new().build_hasher();
        random.write_u32(std::process::id());
        Allocator {
            low,
            len,
            start: (random.finish() % u64::from(len)) as u32,
            tried: 0,
            reserved_by_kernel: read_range("/proc/sys/net/ipv4/ip_local_reserved_ports")
                .unwrap_or_default(),
            reservations: VecDeque::new(),
        }
    }

    fn next(&mut self) -> io::Result<u16> {
        while self.tried < self.len {
            let offset = (self.start + self.tried) % self.len;
            self.tried += 1;
            let port = self.low + offset as u16;
            if self
                .reserved_by_kernel
                .iter()
                .any(|&(a, b)| (a..=b).contains(&port))
            {
                continue;
            }
            let reservation = match reserve(port) {
                Reservation::TakenElsewhere => continue,
                Reservation::Held(socket) => Some(socket),
                Reservation::Unavailable => None,
            };
            if !bindable(port) {
                continue;
            }
            if let Some(socket) = reservation {
                if self.reservations.len() == RESERVATIONS {
                    self.reservations.pop_front();
                }
                self.reservations.push_back(socket);
            }
            return Ok(port);
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "all {} ports of {}-{} were handed out or in use",
                self.len,
                self.low,
                u32::from(self.low) + self.len - 1
            ),
        ))
    }
}

/// The ports to use for an ephemeral range `(low, high)`: the largest stretch above
/// [`FLOOR`] that is neither ephemeral nor [`PICKED_BY_OTHERS`], or everything above the
/// floor when that leaves too little.
fn outside(ephemeral: (u16, u16)) -> (u16, u16) {
    let mut taken = [ephemeral, PICKED_BY_OTHERS];
    taken.sort_unstable();
    let mut best = (FLOOR, FLOOR - 1);
    let size = |(a, b): (u16, u16)| if b >= a { u32::from(b - a) + 1 } else { 0 };
    let mut from = u32::from(FLOOR);
    for (a, b) in taken {
        let gap_end = u32::from(a).saturating_sub(1);
        if gap_end >= from && size((from as u16, gap_end as u16)) > size(best) {
            best = (from as u16, gap_end as u16);
        }
        from = from.max(u32::from(b) + 1);
    }
    if from <= u32::from(u16::MAX) && size((from as u16, u16::MAX)) > size(best) {
        best = (from as u16, u16::MAX);
    }
    if size(best) >= 1000 {
        best
    } else {
        (FLOOR, u16::MAX)
    }
}

/// What reserving a port against other processes gave.
enum Reservation {
    /// Ours until the socket is closed.
    Held(UnixDatagram),
    /// Another process handed it out.
    TakenElsewhere,
    /// No reservation is possible here (abstract sockets refused): the probe decides.
    Unavailable,
}

/// Binds the abstract Unix socket named after `port` (one namespace per network
/// namespace, like the ports themselves).
fn reserve(port: u16) -> Reservation {
    let name = format!("orphan-check/free-port/{port}");
    let Ok(addr) = SocketAddr::from_abstract_name(name.as_bytes()) else {
        return Reservation::Unavailable;
    };
    match UnixDatagram::bind_addr(&addr) {
        Ok(socket) => Reservation::Held(socket),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Reservation::TakenElsewhere,
        Err(_) => Reservation::Unavailable,
    }
}

/// Whether a TCP bind on `port` succeeds now, on the IPv4 wildcard (which conflicts with
/// any IPv4 listener on the port) and on the IPv6 one (when the machine has IPv6).
///
/// The probe binds with `SO_REUSEADDR`, as servers do, and never listens: a sentinel
/// forked by another thread at that moment gets a copy of the socket until it closes
/// its inherited descriptors, and a listening copy would be a listener on the port that
/// belongs to nobody (the harness would refuse the port as busy, the server would fail
/// with `EADDRINUSE`). A bound copy that does not listen is in nobody's way.
fn bindable(port: u16) -> bool {
    let v4 = std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    if probe(AddressFamily::INET, &v4).is_err() {
        return false;
    }
    let v6 = std::net::SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    match probe(AddressFamily::INET6, &v6) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::ADDRINUSE,
    }
}

fn probe(family: AddressFamily, addr: &std::net::SocketAddr) -> rustix::io::Result<()> {
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, addr)
}

/// Reads a `/proc/sys` port list: two numbers (a range) or `8080,9000-9100` (a list).
fn read_range(path: &str) -> Option<Vec<(u16, u16)>> {
    parse_ranges(&std::fs::read_to_string(path).ok()?)
}

fn parse_ranges(text: &str) -> Option<Vec<(u16, u16)>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() == 2 && !text.contains(',') && !text.contains('-') {
        return Some(vec![(words[0].parse().ok()?, words[1].parse().ok()?)]);
    }
    text.split(',')
        .map(|item| match item.trim().split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let p = item.trim().parse().ok()?;
                Some((p, p))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_range_avoids_the_ephemeral_ports() {
        // Linux's default: between portpicker's range and the ephemeral one.
        assert_eq!(outside((32768, 60999)), (25_001, 32767));
        assert_eq!(outside((10000, 30000)), (30001, 65535));
        assert_eq!(outside((40000, 65535)), (25_001, 39_999));
        // Nearly everything is ephemeral: fall back to everything above the floor.
        assert_eq!(outside((1024, 65000)), (FLOOR, 65535));
    }

    #[test]
    fn proc_port_lists_parse() {
        assert_eq!(parse_ranges("32768\t60999\n"), Some(vec![(32768, 60999)]));
        assert_eq!(
            parse_ranges("8080,9000-9100\n"),
            Some(vec![(8080, 8080), (9000, 9100)])
        );
        assert_eq!(parse_ranges("\n"), Some(vec![]));
        assert_eq!(parse_ranges("x y"), None);
    }

    #[test]
    fn ports_are_never_handed_out_twice_and_are_bindable_and_not_ephemeral() {
        let ephemeral = read_range("/proc/sys/net/ipv4/ip_local_port_range")
            .and_then(|r| r.first().copied())
            .unwrap_or((32768, 60999));
        // Fewer than RESERVATIONS, so the test below still finds its port reserved.
        let ports: Vec<u16> = (0..100).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        for &p in &ports {
            assert!(
                !(ephemeral.0..=ephemeral.1).contains(&p),
                "{p} is in {ephemeral:?}"
            );
            assert!(p >= FLOOR);
        }
        // Handed out and not taken since: still bindable.
        let last = *ports.last().unwrap();
        assert!(bindable(last));
    }

    #[test]
    fn a_port_another_process_reserved_is_skipped() {
        // This process's allocator holds the reservation of a port it handed out; a
        // second reservation of the same port (what another process would try) fails.
        let p = free_port();
        assert!(matches!(reserve(p), Reservation::TakenElsewhere));
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let held = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(!bindable(held.local_addr().unwrap().port()));
    }

    #[test]
    fn a_probe_never_listens_and_a_copy_of_it_is_in_no_servers_way() {
        // What a sentinel forked during a probe keeps for a moment: the probe's socket.
        let p = free_port();
        let v4 = std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, p));
        let copy = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::sockopt::set_socket_reuseaddr(&copy, true).unwrap();
        rustix::net::bind(&copy, &v4).unwrap();
        // Not a listener: the harness's "free before the start" check sees nothing.
        assert_eq!(crate::ports::on_port_fast(p).unwrap(), Vec::<u64>::new());
        // And a server (SO_REUSEADDR, as std, Python and Node set it) still binds.
        let server = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p));
        assert!(server.is_ok(), "{server:?}");
        drop(copy);
    }
}
