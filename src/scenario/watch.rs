//! From the started agent to the outcome: wait for the agent (and, under a wrapper, for
//! the wrapper's child), wait for readiness, record the tree, run the kill plan, record
//! the watched directories, touch the file, and hand the outcome over.

use std::process::Command;
use std::time::{Duration, Instant};

use super::held::Held;
use super::{Scenario, Stdin};
use crate::error::Error;
use crate::kill::{self, Ending};
use crate::outcome::{Live, Outcome};
use crate::pipes::AgentPipes;
use crate::ports;
use crate::procs;
use crate::ready::{backoff, Ready};
use crate::run::{ReadyBy, Run, WrapperRole};
use crate::touch::{self, TouchRecord};
use crate::tracker::Tracker;

impl Scenario {
    /// The agent is started: wait for readiness, run the plan, hand over the outcome.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn watch(
        &self,
        mut held: Held,
        tracker: Tracker,
        pipes: AgentPipes,
        stdin_writer: Option<std::os::fd::OwnedFd>,
        run_id: String,
        watched: Vec<u16>,
        container: bool,
        wrapper: Option<WrapperRole>,
    ) -> Result<Outcome, Error> {
        let agent = {
            // The sentinel reports the agent within microseconds of its exec; only a
            // machine under extreme load takes long. Bounded by the readiness timeout.
            let state = tracker.wait_until(Instant::now() + self.ready_timeout, |s| {
                s.agent.is_some() || s.sentinel_gone
            });
            state.agent.ok_or_else(|| Error::Io {
                what: if state.sentinel_gone {
                    "the sentinel ended before it started the agent"
                } else {
                    "timed out waiting for the sentinel to start the agent"
                },
                source: std::io::Error::other("no agent"),
            })
        };
        crate::cost_trace::mark("agent-started event seen");
        let started = agent.and_then(|agent| {
            // A first look at the agent now: a launcher may be gone by readiness.
            let at_start = procs::ProcessInfo::read(agent);
            crate::cost_trace::mark("first look at the agent");
            let ready_at = self.wait_ready(&tracker)?;
            crate::cost_trace::mark("ready line seen");
            // With a wrapper, the sentinel's child is the wrapper; the agent is its child
            // once that has exec'd.
            let wrapped = match wrapper {
                Some(role) => Some(self.wait_for_wrapped_agent(&tracker, agent, role)?),
                None => None,
            };
            Ok((agent, at_start, ready_at, wrapped))
        });
        let (top, agent_at_start, ready_at, wrapped_agent) = match started {
            Ok(started) => started,
            Err(e) => {
                if tracker.lock().sentinel_gone {
                    held.lost();
                }
                // Dropping `held` ends the sentinel and the cgroup under one deadline.
                return Err(e);
            }
        };
        // Nothing fails from here on: the outcome will hold the sentinel and the cgroup.
        let (sentinel, cgroup) = held.into_parts();
        // The tree at readiness: who was whose child, in which group, before anything
        // was killed. Read the agent here, not at fork: by now it has exec'd (through any
        // `env` or interpreter shim) and set up its signal handlers.
        let mut before_kill = procs::subtree(sentinel.pid());
        let lost = tracker.lock().sentinel_gone;
        if lost {
            // The tree's orphans went to init: only the cgroup and the marker find them.
            before_kill = crate::lost::find(&run_id, cgroup.as_ref());
        }
        let seen_at_ready = before_kill.len();
        crate::cost_trace::mark("snapshot at readiness");
        // Only from the walk, and only as the sentinel's child (or, the sentinel gone,
        // carrying the run's marker): once the top process is reaped its pid may already
        // be another process's, so it is never read again.
        let top_info = before_kill
            .iter()
            .find(|p| p.pid == top && (p.ppid == sentinel.pid() || lost))
            .cloned()
            // A launcher may be gone by readiness: its first look, taken while it
            // was still the sentinel's unreaped child.
            .or(agent_at_start.filter(|p| p.ppid == sentinel.pid()));
        let ports_at_ready = ports::PortAtReady::at_ready(&watched, &before_kill);
        if !self.kill_after.is_zero() {
            tracker.wait(Instant::now() + self.kill_after, |s| s.sentinel_gone);
            // Add what was born during the delay; keep the first sighting of the rest.
            for p in procs::subtree(sentinel.pid()) {
                if !before_kill.iter().any(|b| b.same_process(&p)) {
                    before_kill.push(p);
                }
            }
        }
        let clock = tracker.clock;
        // In container mode the processes inside are not the sentinel's children: watch
        // how each ends through a pidfd opened while it lives.
        let namespace_watch = if container {
            crate::container::NamespaceWatch::open(&before_kill, top)
        } else {
            crate::container::NamespaceWatch::default()
        };
        // The watched ports held as the kill begins: where each one's interval starts in
        // the report (the readiness port was seen held at readiness).
        let held_before_kill = watched
            .iter()
            .filter_map(|&p| match &self.ready {
                Some(Ready::Port(r)) if *r == p => Some((p, ready_at)),
                _ => ports::is_held(p).then(|| (p, clock.now())),
            })
            .collect();
        crate::cost_trace::mark("ports, namespace watch");
        let kill_started_at = clock.now();
        let mut ending = Ending {
            exit_timeout: self.exit_timeout,
            stdin: stdin_writer,
        };
        let plan_record =
            kill::execute(&self.plan, &sentinel, &tracker, top, container, &mut ending);
        crate::cost_trace::mark("kill plan done (ack seen)");
        let agent_exit_at = tracker.lock().agent_exit().map(|e| e.at);
        let killed_at = match agent_exit_at {
            // Its own exit is the ending: every deadline counts from the agent's reap.
            Some(at) if self.plan.is_own_exit() => at,
            _ => clock.now(),
        };
        if plan_record.did_not_finish {
            // What ran until the timeout is the tree the report shows before cleanup.
            for p in procs::subtree(sentinel.pid()) {
                if !before_kill.iter().any(|b| b.same_process(&p)) {
                    before_kill.push(p);
                }
            }
        }
        // Files are recorded once the plan has run: a write already in flight when the
        // signal arrived is not a write "after the kill".
        let mut dirs_before = crate::files::DirWatch::start(&self.dirs);
        let touched = self.touch.as_ref().map(|path| {
            let result = touch::touch(path, self.touch_mode);
            let at = clock.now();
            dirs_before.restamp(path);
            TouchRecord {
                path: path.clone(),
                mode: self.touch_mode.name(),
                at_ms: at.as_secs_f64() * 1000.0,
                after_kill_ms: at.saturating_sub(killed_at).as_secs_f64() * 1000.0,
                error: result.err(),
            }
        });

        let sentinel_pid = sentinel.pid();
        // The agent and the top process as last read; a process gone before it could be
        // read is known by its pid (and the agent by the command it was started with).
        let agent_pid = wrapped_agent.as_ref().map_or(top, |a| a.pid);
        let agent = wrapped_agent
            .or_else(|| top_info.clone())
            .unwrap_or_else(|| {
                unread(
                    agent_pid,
                    sentinel_pid,
                    vec![display_command(&self.command)],
                )
            });
        let top = match (top_info, wrapper) {
            (Some(t), _) => t,
            (None, None) => agent.clone(),
            (None, Some(_)) => unread(-1, sentinel_pid, Vec::new()),
        };
        let live = Live {
            sentinel,
            cgroup,
            tracker,
            namespace_watch,
            dirs: dirs_before,
            stdin: ending.stdin,
            pipes,
        };
        let run = Run {
            command: display_command(&self.command),
            run_id,
            plan: self.plan,
            ready: self
                .ready
                .as_ref()
                .map_or_else(|| "exec".to_string(), ToString::to_string),
            ready_by: match &self.ready {
                None => ReadyBy::Exec,
                Some(Ready::StdoutLine(_)) => ReadyBy::Line,
                Some(_) => ReadyBy::Poll,
            },
            watched_ports: watched,
            agent,
            top,
            wrapper,
            container,
            touched,
            ready_at,
            kill_after: self.kill_after,
            kill_started_at,
            killed_at,
            before_kill,
            seen_at_ready,
            held_before_kill,
            ports_at_ready,
            plan_record,
            stdin_mode: if self.inherit_stdio {
                "inherited"
            } else {
                match self.stdin_mode() {
                    Stdin::Pipe => "pipe",
                    Stdin::Null => "null",
                }
            },
            exit_timeout: self.exit_timeout,
            verdict_deadline: self.verdict_deadline,
        };
        let outcome = Outcome::new(live, run);
        crate::cost_trace::mark("outcome built");
        if outcome.plan_record().did_not_finish {
            // The agent did not finish: its tree is cleaned up now, and the report says so.
            outcome.end_tree(Duration::from_secs(10));
        }
        Ok(outcome)
    }

    /// The agent under a wrapper: the wrapper's child once it has exec'd (its command
    /// line is no longer the wrapper's). The wrapper forks it at once, so this is one
    /// look in the common case; the checks back off 1→20 ms up to the readiness timeout.
    fn wait_for_wrapped_agent(
        &self,
        tracker: &Tracker,
        top: i32,
        role: WrapperRole,
    ) -> Result<procs::ProcessInfo, Error> {
        let deadline = Instant::now() + self.ready_timeout;
        let mut checks = 0;
        loop {
            let top_info = procs::ProcessInfo::read(top);
            let found = top_info.as_ref().and_then(|t| {
                procs::children(top)
                    .into_iter()
                    .filter_map(procs::ProcessInfo::read)
                    .find(|c| c.cmdline != t.cmdline && !c.is_zombie())
            });
            if let Some(agent) = found {
                return Ok(agent);
            }
            let gone = tracker.lock().agent_exit().is_some();
            let now = Instant::now();
            if gone || top_info.is_none() || now >= deadline {
                let state = tracker.lock();
                return Err(Error::ExitedBeforeReady {
                    status: format!(
                        "the {} {}",
                        role.name(),
                        match state.agent_exit() {
                            Some(e) => format!(
                                "ended ({}) without the agent",
                                crate::exit_status::describe_status(e.status)
                            ),
                            None => "did not start the agent in time".into(),
                        }
                    ),
                    condition: "the agent to start under it".into(),
                    stdout: Box::new(state.stdout.clone()),
                    stderr: Box::new(state.stderr.clone()),
                });
            }
            tracker.wait((now + backoff(checks)).min(deadline), |s| {
                s.agent_exit().is_some() || s.sentinel_gone
            });
            checks += 1;
        }
    }

    /// Waits for the readiness condition; returns when it held (offset from start).
    ///
    /// The agent's own exit does not end the wait while its tree lives: a launcher that
    /// starts a server and returns (`setsid cmd`, `nohup cmd &`) is judged by what it
    /// left, and any process of the tree may meet the condition (hold the port, write the
    /// line to the inherited stdout, create the file). Only an empty tree is
    /// [`Error::ExitedBeforeReady`].
    fn wait_ready(&self, tracker: &Tracker) -> Result<Duration, Error> {
        let Some(ready) = &self.ready else {
            return Ok(tracker.clock.now());
        };
        let deadline = Instant::now() + self.ready_timeout;
        let met = |state: &crate::tracker::State| match ready {
            Ready::StdoutLine(_) => state.ready_line_at.is_some(),
            Ready::After(d) => tracker.clock.now() >= *d,
            _ => false,
        };
        let mut checks = 0;
        let mut agent_exited = false;
        loop {
            let polled = ready.poll();
            let (exit, tree_gone, line_or_time) = {
                let state = tracker.lock();
                (
                    state.agent_exit(),
                    // A sentinel that is gone cannot say the tree is gone: the wait
                    // goes on (the verdict will say the harness lost track).
                    state.empty_at.is_some(),
                    met(&state),
                )
            };
            if polled == Some(true) || line_or_time {
                return Ok(tracker.clock.now());
            }
            agent_exited = agent_exited || exit.is_some();
            if tree_gone {
                // One more look: the tree may have made the condition true just before
                // its last process exited (a launcher that starts a server and returns).
                let again = ready.poll() == Some(true) || met(&tracker.lock());
                if again {
                    return Ok(tracker.clock.now());
                }
                let state = tracker.lock();
                return Err(Error::ExitedBeforeReady {
                    status: crate::exit_status::describe_status(exit.map_or(0, |e| e.status)),
                    condition: ready.to_string(),
                    stdout: Box::new(state.stdout.clone()),
                    stderr: Box::new(state.stderr.clone()),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                let state = tracker.lock();
                return Err(Error::NeverReady {
                    condition: ready.to_string(),
                    timeout: self.ready_timeout,
                    agent_exit: exit.map(|e| {
                        format!(
                            "{} at +{}ms",
                            crate::exit_status::describe_status(e.status),
                            e.at.as_millis()
                        )
                    }),
                    stdout: Box::new(state.stdout.clone()),
                    stderr: Box::new(state.stderr.clone()),
                });
            }
            let wake = match ready {
                Ready::Port(_) | Ready::File(_) => (now + backoff(checks)).min(deadline),
                Ready::After(d) => tracker.clock.instant(*d).min(deadline),
                _ => deadline,
            };
            // A sentinel that is gone wakes this wait once, not every time round: the
            // agent may still become ready (the verdict will say the harness lost track).
            let gone = tracker.lock().sentinel_gone;
            tracker.wait(wake, |s| {
                (!agent_exited && s.agent_exit().is_some())
                    || s.empty_at.is_some()
                    || s.sentinel_gone != gone
                    || met(s)
            });
            checks += 1;
        }
    }
}

/// A process known only by its pid: gone before it could be read (a launcher that
/// exits at once), with the sentinel as its parent and `cmdline` as its command.
fn unread(pid: i32, sentinel: i32, cmdline: Vec<String>) -> procs::ProcessInfo {
    procs::ProcessInfo {
        pid,
        ppid: sentinel,
        pgid: pid,
        sid: sentinel,
        state: 'X',
        comm: "?".into(),
        cmdline,
        start_ticks: 0,
        uid: u32::MAX,
        sig_ignored: 0,
        sig_caught: 0,
        sig_blocked: 0,
        sig_pending: 0,
        pid_in_namespace: None,
    }
}

/// The command as a person would type it.
fn display_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|s| {
            let s = s.to_string_lossy();
            if s.is_empty() || s.contains(char::is_whitespace) {
                format!("{s:?}")
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
