//! What the harness and the sentinel say to each other: one record type per pipe and
//! direction, each with one `encode` and one `decode`.
//!
//! Every record has a fixed size, well under `PIPE_BUF`, so each `write` of one is
//! atomic and a reader never sees half of one from a single writer. Integers are native
//! endian: both ends are the same program (the exec'd sentinel is `/proc/self/exe`).
//! Decoding never allocates (the sentinel decodes requests after its fork) and never
//! guesses: an unknown kind or stage is an [`UnknownCode`]. The harness reports what it
//! cannot decode as a protocol error ([`WireError`]); the sentinel answers a request it
//! cannot decode with [`Event::UnknownRequest`].
//!
//! # Requests: harness → sentinel (the control socket, the lifeline)
//!
//! A `SOCK_SEQPACKET` socket pair, so that a launch can carry descriptors; each request
//! is one packet of [`REQUEST_LEN`] = 8 bytes:
//!
//! | bytes | field    | value                                                   |
//! |-------|----------|---------------------------------------------------------|
//! | 0..4  | kind     | `u32`: 1 signal the agent, 2 signal its group, 3 kill the tree, 4 release, 5 launch |
//! | 4..8  | argument | `i32`: the signal number (kinds 1, 2); 0 otherwise      |
//!
//! End of file instead of a record is the lifeline: the harness is gone. A release
//! ends a scenario whose tree the harness saw reported empty, and leaves the sentinel
//! idle; only then may a launch come, with [`LAUNCH_FDS`] descriptors (`SCM_RIGHTS`): the
//! launch's image (see `image`), the write ends of the events, stdout, stderr and
//! exec-status pipes, and the agent's stdin. The sentinel answers a launch it took with
//! the one byte [`LAUNCH_ACCEPTED`], the only thing it ever writes on this socket: an
//! idle sentinel that dies meanwhile closes the socket instead, and the harness starts
//! a new one (end of file on the exec-status pipe alone could be that death).
//!
//! # Events: sentinel → harness (the event pipe)
//!
//! [`EVENT_LEN`] = 24 bytes:
//!
//! | bytes  | field | value                                                  |
//! |--------|-------|--------------------------------------------------------|
//! | 0..4   | kind  | `u32`, see below                                       |
//! | 4..8   | pid   | `i32`                                                  |
//! | 8..12  | a     | `i32`                                                  |
//! | 12..16 | b     | `i32`                                                  |
//! | 16..24 | at    | `u64`: `CLOCK_MONOTONIC` in nanoseconds                |
//!
//! | kind | event                | pid             | a             | b     |
//! |------|----------------------|-----------------|---------------|-------|
//! | 1    | [`Event::AgentStarted`] | the agent    | pidfd errno   | 0     |
//! | 2    | [`Event::Exited`]    | the reaped child | wait status  | 0     |
//! | 3    | [`Event::Empty`]     | 0               | 0             | 0     |
//! | 4    | [`Event::Signalled`] | target (< 0: a group) | signal  | errno |
//! | 5    | [`Event::Killed`]    | the child       | 0             | 0     |
//! | 6    | [`Event::UnknownRequest`] | 0          | request kind  | 0     |
//!
//! # Launch status: agent or sentinel → harness (the exec status pipe)
//!
//! Close-on-exec, so end of file with nothing written means the agent's `exec`
//! succeeded. A failure is one [`LaunchFailure`], [`LAUNCH_FAILURE_LEN`] = 8 bytes:
//! `stage: u32` (1 joining the cgroup, 2 `chdir`, 3 `exec`, 4 forking the agent,
//! 5 container namespaces) and `errno: i32`. A sentinel started by exec first writes
//! the single byte [`HOOK_TOOK_OVER`] on the same pipe, which the harness reads before
//! it waits for the status.

/// A record of a kind (or stage) its decoder does not know: nothing the other side can
/// have meant. Decoders return it instead of guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {record} code {code}")]
pub(crate) struct UnknownCode {
    /// "request", "event" or "launch stage".
    pub record: &'static str,
    pub code: u32,
}

/// What the harness could not make sense of in what the sentinel said (or in its
/// answer to a request): a protocol error, reported, never read as a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("sentinel protocol error: {0}")]
    Unknown(#[from] UnknownCode),
    #[error("sentinel protocol error: a {record} cut short after {len} bytes")]
    Truncated { record: &'static str, len: usize },
}

/// Size of one [`Request`] record.
pub(crate) const REQUEST_LEN: usize = 8;
/// Size of one [`Event`] record.
pub(crate) const EVENT_LEN: usize = 24;
/// Size of one [`LaunchFailure`] record.
pub(crate) const LAUNCH_FAILURE_LEN: usize = 8;
/// The byte the exec hook writes on the status pipe once it has taken over.
pub(crate) const HOOK_TOOK_OVER: u8 = b'S';
/// The byte an idle sentinel writes on its control socket once it has taken a launch.
pub(crate) const LAUNCH_ACCEPTED: u8 = b'L';

const REQ_SIGNAL_AGENT: u32 = 1;
const REQ_SIGNAL_GROUP: u32 = 2;
const REQ_KILL_TREE: u32 = 3;
const REQ_RELEASE: u32 = 4;
/// A launch's kind, which a sentinel serving a tree answers as an unknown request.
pub(crate) const REQ_LAUNCH: u32 = 5;

/// How many descriptors come with a [`Request::Launch`].
pub(crate) const LAUNCH_FDS: usize = 6;

const EV_AGENT_STARTED: u32 = 1;
const EV_EXITED: u32 = 2;
const EV_EMPTY: u32 = 3;
const EV_SIGNALLED: u32 = 4;
const EV_KILLED: u32 = 5;
const EV_UNKNOWN_REQUEST: u32 = 6;

const STAGE_CGROUP: u32 = 1;
const STAGE_CHDIR: u32 = 2;
const STAGE_EXEC: u32 = 3;
const STAGE_FORK: u32 = 4;
const STAGE_NAMESPACE: u32 = 5;

/// A request from the harness to the sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// Send the signal to the agent, through the sentinel's pidfd.
    SignalAgent(i32),
    /// Send the signal to the agent's process group, while the agent is unreaped.
    SignalGroup(i32),
    /// SIGKILL the whole subtree, reaping until it is empty.
    KillTree,
    /// The scenario is over and its tree was reported empty: close its events pipe and
    /// wait, idle, for the next launch.
    Release,
    /// Launch the next agent (an idle sentinel only; the descriptors come with it).
    Launch,
}

impl Request {
    pub(crate) fn encode(self) -> [u8; REQUEST_LEN] {
        let (kind, arg) = match self {
            Request::SignalAgent(sig) => (REQ_SIGNAL_AGENT, sig),
            Request::SignalGroup(sig) => (REQ_SIGNAL_GROUP, sig),
            Request::KillTree => (REQ_KILL_TREE, 0),
            Request::Release => (REQ_RELEASE, 0),
            Request::Launch => (REQ_LAUNCH, 0),
        };
        let mut buf = [0u8; REQUEST_LEN];
        put_u32(&mut buf, 0, kind);
        put_i32(&mut buf, 4, arg);
        buf
    }

    /// Decodes one record. Allocation-free: the sentinel calls it after its fork.
    pub(crate) fn decode(buf: &[u8; REQUEST_LEN]) -> Result<Request, UnknownCode> {
        let arg = get_i32(buf, 4);
        match get_u32(buf, 0) {
            REQ_SIGNAL_AGENT => Ok(Request::SignalAgent(arg)),
            REQ_SIGNAL_GROUP => Ok(Request::SignalGroup(arg)),
            REQ_KILL_TREE => Ok(Request::KillTree),
            REQ_RELEASE => Ok(Request::Release),
            REQ_LAUNCH => Ok(Request::Launch),
            code => Err(UnknownCode {
                record: "request",
                code,
            }),
        }
    }
}

/// What the sentinel reports. Each record also carries when (`CLOCK_MONOTONIC`, ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The agent was forked; `pidfd_errno` is 0 when its pidfd could be opened.
    AgentStarted { pid: i32, pidfd_errno: i32 },
    /// A child of the sentinel was reaped with this raw wait status.
    Exited { pid: i32, status: i32 },
    /// `waitpid` answered `ECHILD`: no descendant is left.
    Empty,
    /// A signal was sent (`target` negative for a process group); `errno` 0 on success.
    Signalled {
        target: i32,
        signal: i32,
        errno: i32,
    },
    /// The cleanup loop SIGKILLed this direct child.
    Killed { pid: i32 },
    /// The sentinel read a request of a kind it does not know, and did nothing.
    UnknownRequest { kind: u32 },
}

impl Event {
    /// The record for this event, stamped `at_ns`. Allocation-free.
    pub(crate) fn encode(self, at_ns: u64) -> [u8; EVENT_LEN] {
        let (kind, pid, a, b) = match self {
            Event::AgentStarted { pid, pidfd_errno } => (EV_AGENT_STARTED, pid, pidfd_errno, 0),
            Event::Exited { pid, status } => (EV_EXITED, pid, status, 0),
            Event::Empty => (EV_EMPTY, 0, 0, 0),
            Event::Signalled {
                target,
                signal,
                errno,
            } => (EV_SIGNALLED, target, signal, errno),
            Event::Killed { pid } => (EV_KILLED, pid, 0, 0),
            Event::UnknownRequest { kind } => (EV_UNKNOWN_REQUEST, 0, kind as i32, 0),
        };
        let mut buf = [0u8; EVENT_LEN];
        put_u32(&mut buf, 0, kind);
        put_i32(&mut buf, 4, pid);
        put_i32(&mut buf, 8, a);
        put_i32(&mut buf, 12, b);
        buf[16..24].copy_from_slice(&at_ns.to_ne_bytes());
        buf
    }

    /// Decodes one record into the event and its time.
    pub(crate) fn decode(buf: &[u8; EVENT_LEN]) -> Result<(Event, u64), UnknownCode> {
        let pid = get_i32(buf, 4);
        let a = get_i32(buf, 8);
        let b = get_i32(buf, 12);
        let mut at = [0u8; 8];
        at.copy_from_slice(&buf[16..24]);
        let event = match get_u32(buf, 0) {
            EV_AGENT_STARTED => Event::AgentStarted {
                pid,
                pidfd_errno: a,
            },
            EV_EXITED => Event::Exited { pid, status: a },
            EV_EMPTY => Event::Empty,
            EV_SIGNALLED => Event::Signalled {
                target: pid,
                signal: a,
                errno: b,
            },
            EV_KILLED => Event::Killed { pid },
            EV_UNKNOWN_REQUEST => Event::UnknownRequest { kind: a as u32 },
            code => {
                return Err(UnknownCode {
                    record: "event",
                    code,
                })
            }
        };
        Ok((event, u64::from_ne_bytes(at)))
    }
}

/// Where the agent failed before its `exec` succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaunchStage {
    JoinCgroup,
    Chdir,
    Exec,
    ForkAgent,
    /// Container mode: writing the user namespace's id maps or mounting `/proc`.
    Namespace,
}

/// The agent's launch failed at `stage` with `errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchFailure {
    pub stage: LaunchStage,
    pub errno: i32,
}

impl LaunchFailure {
    /// The record, allocation-free (written by the sentinel or by the agent before its
    /// exec).
    pub(crate) fn encode(self) -> [u8; LAUNCH_FAILURE_LEN] {
        let stage = match self.stage {
            LaunchStage::JoinCgroup => STAGE_CGROUP,
            LaunchStage::Chdir => STAGE_CHDIR,
            LaunchStage::Exec => STAGE_EXEC,
            LaunchStage::ForkAgent => STAGE_FORK,
            LaunchStage::Namespace => STAGE_NAMESPACE,
        };
        let mut buf = [0u8; LAUNCH_FAILURE_LEN];
        put_u32(&mut buf, 0, stage);
        put_i32(&mut buf, 4, self.errno);
        buf
    }

    pub(crate) fn decode(buf: &[u8; LAUNCH_FAILURE_LEN]) -> Result<LaunchFailure, UnknownCode> {
        let stage = match get_u32(buf, 0) {
            STAGE_CGROUP => LaunchStage::JoinCgroup,
            STAGE_CHDIR => LaunchStage::Chdir,
            STAGE_EXEC => LaunchStage::Exec,
            STAGE_FORK => LaunchStage::ForkAgent,
            STAGE_NAMESPACE => LaunchStage::Namespace,
            code => {
                return Err(UnknownCode {
                    record: "launch stage",
                    code,
                })
            }
        };
        Ok(LaunchFailure {
            stage,
            errno: get_i32(buf, 4),
        })
    }
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn put_i32(buf: &mut [u8], at: usize, value: i32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn get_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Reads the next event record from `events`, blocking; `None` at end of file. For the
/// tests that read a sentinel's events themselves.
#[cfg(test)]
pub(super) fn read_event(events: &std::os::fd::OwnedFd) -> Option<Event> {
    let mut record = [0u8; EVENT_LEN];
    let mut got = 0;
    while got < EVENT_LEN {
        match rustix::io::read(events, &mut record[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("reading events: {e}"),
        }
    }
    Some(Event::decode(&record).expect("a known event").0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        for request in [
            Request::SignalAgent(15),
            Request::SignalAgent(-1),
            Request::SignalGroup(9),
            Request::SignalGroup(0),
            Request::KillTree,
            Request::Release,
            Request::Launch,
        ] {
            assert_eq!(Request::decode(&request.encode()), Ok(request));
        }
    }

    #[test]
    fn every_event_round_trips_with_its_time() {
        for (event, at) in [
            (
                Event::AgentStarted {
                    pid: 1234,
                    pidfd_errno: libc::ENOSYS,
                },
                1,
            ),
            (Event::Exited { pid: 77, status: 9 }, u64::MAX),
            (Event::Empty, 0),
            (
                Event::Signalled {
                    target: -42,
                    signal: 15,
                    errno: libc::ESRCH,
                },
                7,
            ),
            (Event::Killed { pid: i32::MAX }, 123_456_789),
            (Event::UnknownRequest { kind: u32::MAX }, 5),
        ] {
            assert_eq!(Event::decode(&event.encode(at)), Ok((event, at)));
        }
    }

    #[test]
    fn every_launch_failure_round_trips() {
        for stage in [
            LaunchStage::JoinCgroup,
            LaunchStage::Chdir,
            LaunchStage::Exec,
            LaunchStage::ForkAgent,
            LaunchStage::Namespace,
        ] {
            let failure = LaunchFailure {
                stage,
                errno: libc::EACCES,
            };
            assert_eq!(LaunchFailure::decode(&failure.encode()), Ok(failure));
        }
    }

    #[test]
    fn an_unknown_kind_or_stage_is_an_error_not_a_default() {
        let mut request = Request::KillTree.encode();
        request[..4].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(
            Request::decode(&request),
            Err(UnknownCode {
                record: "request",
                code: 99
            })
        );

        let mut event = Event::Empty.encode(0);
        event[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(
            Event::decode(&event),
            Err(UnknownCode {
                record: "event",
                code: 0
            })
        );

        let mut failure = LaunchFailure {
            stage: LaunchStage::Exec,
            errno: 2,
        }
        .encode();
        failure[..4].copy_from_slice(&6u32.to_ne_bytes());
        assert_eq!(
            LaunchFailure::decode(&failure),
            Err(UnknownCode {
                record: "launch stage",
                code: 6
            })
        );
    }
}
