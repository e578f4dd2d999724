//! The harness's record of one scenario, kept up to date by a reader thread.
//!
//! One thread per scenario polls three pipes: the sentinel's events, and the agent's
//! stdout and stderr. It never blocks on a single pipe, so a full pipe never stalls the
//! agent and a survivor that keeps stdout open never hangs the harness: the thread simply
//! keeps reading until every writer is gone. Waiters sleep on a condition variable and
//! wake on every change, so every wait in the crate ends the moment its condition holds.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::io::{read, retry_on_intr, Errno};

use crate::output::OutputTail;
use crate::sentinel::{monotonic_ns, Event, WireError, EVENT_LEN};

/// Converts the sentinel's monotonic timestamps to offsets from the scenario's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_ns: u64,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            start: Instant::now(),
            start_ns: monotonic_ns(),
        }
    }

    /// Offset of a sentinel timestamp from the start.
    pub(crate) fn offset(&self, at_ns: u64) -> Duration {
        Duration::from_nanos(at_ns.saturating_sub(self.start_ns))
    }

    /// Offset of now from the start.
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The instant at an offset from the start.
    pub(crate) fn instant(&self, offset: Duration) -> Instant {
        self.start + offset
    }
}

/// A reaped child of the sentinel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reaped {
    pub pid: i32,
    pub status: i32,
    pub at: Duration,
}

/// A signal the sentinel sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub target: i32,
    pub errno: i32,
    pub at: Duration,
}

/// Everything learned so far about one scenario.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub agent: Option<i32>,
    pub reaped: Vec<Reaped>,
    pub signals: Vec<Sent>,
    /// Pids the cleanup loop had to SIGKILL, and when.
    pub cleanup_kills: Vec<(i32, Duration)>,
    pub empty_at: Option<Duration>,
    /// Nothing more will be learned from the sentinel: its event pipe closed, or what it
    /// said stopped making sense (`protocol_error`).
    pub sentinel_gone: bool,
    /// The first record of the sentinel's that could not be decoded, or its answer to a
    /// request it could not decode. Every event after it is ignored.
    pub protocol_error: Option<WireError>,
    pub stdout: OutputTail,
    pub stderr: OutputTail,
    /// A prefix that makes the agent ready when a stdout line starts with it.
    pub ready_line: Option<String>,
    pub ready_line_at: Option<Duration>,
    /// The ready line was read after the agent's exit had been applied: a descendant
    /// wrote it (output is always drained before the events of the same wake-up).
    pub ready_line_after_agent_exit: bool,
    /// Signals handed over by a [`SignalForwarder`](crate::kill::SignalForwarder), not yet sent.
    pub forward: Vec<crate::signal::Signal>,
}

impl State {
    /// When and how the agent itself was reaped.
    pub(crate) fn agent_exit(&self) -> Option<Reaped> {
        let agent = self.agent?;
        self.reaped.iter().find(|r| r.pid == agent).copied()
    }
}

/// Lets another thread hand the scenario a signal to forward, waking its waits.
#[derive(Clone)]
pub(crate) struct Mailbox(Arc<(Mutex<State>, Condvar)>);

impl Mailbox {
    pub(crate) fn post(&self, signal: crate::signal::Signal) {
        let (lock, cvar) = &*self.0;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .forward
            .push(signal);
        cvar.notify_all();
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox")
    }
}

/// Shared state plus the condition variable that announces every change.
pub(crate) struct Tracker {
    shared: Arc<(Mutex<State>, Condvar)>,
    pub(crate) clock: Clock,
}

impl Tracker {
    /// Starts the reader thread.
    pub(crate) fn start(
        events: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
        clock: Clock,
        ready_line: Option<String>,
    ) -> std::io::Result<Tracker> {
        let state = State {
            ready_line,
            ..State::default()
        };
        let shared = Arc::new((Mutex::new(state), Condvar::new()));
        for fd in [&events, &stdout, &stderr] {
            let flags = fcntl_getfl(fd)?;
            fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
        }
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("orphan-check-tracker".into())
            .spawn(move || read_loop(thread_shared, clock, [stdout, stderr, events]))?;
        Ok(Tracker { shared, clock })
    }

    /// A mailbox for signals to forward to the agent.
    pub(crate) fn mailbox(&self) -> Mailbox {
        Mailbox(Arc::clone(&self.shared))
    }

    /// Locks the state (a panicked holder does not poison it for us).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `done` holds or `deadline` passes, whichever is first.
    pub(crate) fn wait(&self, deadline: Instant, done: impl FnMut(&State) -> bool) {
        drop(self.wait_until(deadline, done));
    }

    /// Waits until `done` holds or `deadline` passes, whichever is first; returns the
    /// state locked, for the caller to read the verdict from.
    pub(crate) fn wait_until(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&State) -> bool,
    ) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        loop {
            if done(&state) {
                return state;
            }
            let now = Instant::now();
            if now >= deadline {
                return state;
            }
            state = self
                .shared
                .1
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

const STDOUT: usize = 0;
const STDERR: usize = 1;
const EVENTS: usize = 2;

fn read_loop(shared: Arc<(Mutex<State>, Condvar)>, clock: Clock, fds: [OwnedFd; 3]) {
    // Each wake-up here is a few microseconds of work that a waiter is waiting for.
    crate::sentinel::shorten_this_threads_slice();
    let mut open = [true; 3];
    let mut pending_event = Vec::with_capacity(EVENT_LEN);
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(|o| *o) {
        let mut pollfds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        for (i, fd) in fds.iter().enumerate() {
            if open[i] {
                pollfds.push(PollFd::new(fd, PollFlags::IN));
            }
        }
        if retry_on_intr(|| poll(&mut pollfds, None)).is_err() {
            break;
        }
        drop(pollfds);
        // Take the events first and the output after, and apply the events last: output
        // an agent wrote before it exited is in its pipe before the sentinel reports the
        // exit, so nobody ever sees the exit without the last lines before it.
        let mut events_eof = false;
        if open[EVENTS] {
            events_eof = drain(&fds[EVENTS], &mut buf, |bytes| {
                pending_event.extend_from_slice(bytes)
            });
        }
        for stream in [STDOUT, STDERR] {
            if !open[stream] {
                continue;
            }
            let eof = drain(&fds[stream], &mut buf, |bytes| {
                let (lock, cvar) = &*shared;
                let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                record_output(&mut state, stream == STDOUT, bytes, clock.now());
                cvar.notify_all();
            });
            if eof {
                let (lock, _) = &*shared;
                let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                record_output(&mut state, stream == STDOUT, &[], clock.now());
                open[stream] = false;
            }
        }
        let (lock, cvar) = &*shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        let whole = pending_event.len() / EVENT_LEN * EVENT_LEN;
        for chunk in pending_event[..whole].chunks_exact(EVENT_LEN) {
            let mut record = [0u8; EVENT_LEN];
            record.copy_from_slice(chunk);
            match Event::decode(&record) {
                _ if state.protocol_error.is_some() => {}
                Ok((event, at_ns)) => {
                    if matches!(event, Event::AgentStarted { .. }) {
                        crate::cost_trace::mark_at(
                            "sentinel: agent started (its timestamp)",
                            clock.instant(clock.offset(at_ns)),
                        );
                    }
                    apply(&mut state, event, clock.offset(at_ns))
                }
                Err(unknown) => protocol_error(&mut state, unknown.into()),
            }
        }
        pending_event.drain(..whole);
        if events_eof && !pending_event.is_empty() {
            let len = pending_event.len();
            protocol_error(
                &mut state,
                WireError::Truncated {
                    record: "event",
                    len,
                },
            );
        }
        if events_eof {
            state.sentinel_gone = true;
            open[EVENTS] = false;
        }
        cvar.notify_all();
    }
    let (lock, cvar) = &*shared;
    lock.lock().unwrap_or_else(|e| e.into_inner()).sentinel_gone = true;
    cvar.notify_all();
}

/// Reads what `fd` has now (non-blocking), handing each chunk to `take`; true at end of
/// file (or on an error, which ends the stream the same way).
fn drain(fd: &OwnedFd, buf: &mut [u8], mut take: impl FnMut(&[u8])) -> bool {
    loop {
        match read(fd, &mut *buf) {
            Ok(0) => return true,
            Ok(n) => take(&buf[..n]),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return false,
            Err(_) => return true,
        }
    }
}

/// Feeds output to its stream (end of file when `bytes` is empty), watching stdout for
/// the readiness line.
fn record_output(state: &mut State, is_stdout: bool, bytes: &[u8], now: Duration) {
    let before = state.ready_line_at.is_some();
    let State {
        stdout,
        stderr,
        ready_line,
        ready_line_at,
        ..
    } = state;
    let stream = if is_stdout { stdout } else { stderr };
    let mut on_line = |line: &str| {
        if is_stdout {
            note_ready_line(line, ready_line, ready_line_at, now);
        }
    };
    if bytes.is_empty() {
        stream.finish(&mut on_line);
    } else {
        stream.feed(bytes, &mut on_line);
    }
    if !before && state.ready_line_at.is_some() {
        state.ready_line_after_agent_exit = state.agent_exit().is_some();
    }
}

fn note_ready_line(
    line: &str,
    pattern: &Option<String>,
    seen_at: &mut Option<Duration>,
    now: Duration,
) {
    if seen_at.is_none() {
        if let Some(p) = pattern {
            if line.trim_start().starts_with(p.as_str()) {
                *seen_at = Some(now);
            }
        }
    }
}

fn apply(state: &mut State, event: Event, at: Duration) {
    match event {
        Event::AgentStarted { pid, .. } => state.agent = Some(pid),
        Event::Exited { pid, status } => state.reaped.push(Reaped { pid, status, at }),
        Event::Empty => state.empty_at = Some(at),
        Event::Signalled {
            target,
            signal,
            errno,
        } => {
            let _ = signal;
            state.signals.push(Sent { target, errno, at });
        }
        Event::Killed { pid } => state.cleanup_kills.push((pid, at)),
        Event::UnknownRequest { kind } => protocol_error(
            state,
            crate::sentinel::UnknownCode {
                record: "request",
                code: kind,
            }
            .into(),
        ),
    }
}

/// The harness and its sentinel no longer understand each other: keep the first error
/// and learn nothing more from the sentinel. Every wait ends as if it were gone, so the
/// verdicts rest on what `/proc`, the cgroup and the run's marker show, and without the
/// sentinel's "empty" none of them is clean (lost track).
fn protocol_error(state: &mut State, error: WireError) {
    state.protocol_error.get_or_insert(error);
    state.sentinel_gone = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentinel::UnknownCode;
    use rustix::pipe::{pipe_with, PipeFlags};

    /// The tracker's state once it has read `records` from a sentinel that is still
    /// there (its event pipe open), or after a minute.
    fn state_after(records: &[[u8; EVENT_LEN]]) -> (Option<WireError>, bool, bool) {
        let pipe = || pipe_with(PipeFlags::CLOEXEC).expect("pipe");
        let (events_r, events_w) = pipe();
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        drop((out_w, err_w));
        let tracker =
            Tracker::start(events_r, out_r, err_r, Clock::start(), None).expect("tracker");
        let bytes: Vec<u8> = records.concat();
        rustix::io::write(&events_w, &bytes).expect("write");
        let state = tracker.wait_until(Instant::now() + Duration::from_secs(60), |s| {
            s.sentinel_gone
        });
        let seen = (
            state.protocol_error,
            state.sentinel_gone,
            state.empty_at.is_some(),
        );
        drop(state);
        drop(events_w);
        seen
    }

    #[test]
    fn an_event_the_harness_cannot_decode_is_a_protocol_error_and_ends_what_it_learns() {
        let mut unknown = Event::Empty.encode(0);
        unknown[..4].copy_from_slice(&77u32.to_ne_bytes());
        let empty = Event::Empty.encode(monotonic_ns());
        let (error, gone, empty_seen) = state_after(&[unknown, empty]);
        assert_eq!(
            error,
            Some(WireError::Unknown(UnknownCode {
                record: "event",
                code: 77
            }))
        );
        assert!(gone, "the waits end on the error");
        assert!(!empty_seen, "an event after the error counted");
    }

    #[test]
    fn a_request_the_sentinel_could_not_decode_is_a_protocol_error() {
        let refused = Event::UnknownRequest { kind: 9 }.encode(monotonic_ns());
        let empty = Event::Empty.encode(monotonic_ns());
        let (error, gone, empty_seen) = state_after(&[refused, empty]);
        assert_eq!(
            error,
            Some(WireError::Unknown(UnknownCode {
                record: "request",
                code: 9
            }))
        );
        assert!(gone);
        assert!(!empty_seen);
    }
}
