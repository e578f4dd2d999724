//! Starting the agent: validate, resolve the program, check the watched ports are free,
//! make the cgroup, fork the sentinel (which launches the agent), start the tracker.

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::held::Held;
use super::launch::{container_allowed, copy_command, launch_error, namespaces, resolve_program};
use super::{Scenario, Stdin};
use crate::cgroup::{CgroupMode, ScenarioCgroup};
use crate::error::Error;
use crate::outcome::Outcome;
use crate::pipes::{pipe_inode, AgentPipes};
use crate::ports::{self, PortHolder};
use crate::ready::Ready;
use crate::run::WrapperRole;
use crate::sentinel;
use crate::tracker::{Clock, Tracker};
use crate::RUN_ENV;
use rustix::pipe::{pipe_with, PipeFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

impl Scenario {
    /// Launches the agent under a sentinel, waits for readiness, and runs the kill plan.
    ///
    /// Every error leaves nothing of the scenario running, and ending what it had started
    /// blocks at most 10 s, as an outcome's drop does.
    pub fn run(self) -> Result<Outcome, Error> {
        crate::cost_trace::mark("run: start");
        self.validate()?;
        let program = resolve_program(&self.command)?;
        let container = self.container || self.plan.needs_container();
        if container {
            container_allowed()?;
        }
        // Who the sentinel starts: the agent itself, or a wrapper with the agent's
        // resolved program and arguments appended to its own.
        let wrapper = if self.plan.needs_launcher() {
            let mut launcher = Command::new(crate::fixture::launcher_path());
            launcher.arg("--");
            Some((WrapperRole::Launcher, launcher))
        } else {
            self.init
                .as_ref()
                .map(|init| (WrapperRole::Init, copy_command(init)))
        };
        let (top_program, top_argv) = match &wrapper {
            Some((_, w)) => {
                let mut argv: Vec<OsString> = vec![w.get_program().to_owned()];
                argv.extend(w.get_args().map(OsStr::to_owned));
                argv.push(program.clone().into_os_string());
                argv.extend(self.command.get_args().map(OsStr::to_owned));
                (resolve_program(w)?, argv)
            }
            None => {
                let mut argv: Vec<OsString> = vec![self.command.get_program().to_owned()];
                argv.extend(self.command.get_args().map(OsStr::to_owned));
                (program.clone(), argv)
            }
        };
        let mut watched = self.ports.clone();
        if let Some(Ready::Port(p)) = &self.ready {
            if !watched.contains(p) {
                watched.push(*p);
            }
        }
        for &port in &watched {
            check_port_free_before(port)?;
        }
        crate::cost_trace::mark("run: program resolved, ports checked");
        let run_id = new_run_id();
        let cgroup = match self.cgroup.resolved() {
            CgroupMode::Off => None,
            CgroupMode::Auto => ScenarioCgroup::create(&run_id).ok(),
            CgroupMode::Required => {
                Some(ScenarioCgroup::create(&run_id).map_err(|source| Error::Io {
                    what: "cgroup v2 required but no writable hierarchy could be used",
                    source,
                })?)
            }
        };
        crate::cost_trace::mark("run: cgroup named");
        let mut launch = self.launch_spec(&top_program, &top_argv, &run_id, cgroup.as_ref())?;
        if container {
            launch.namespaces = Some(namespaces()?);
        }

        let io_error = |what| move |source| Error::Io { what, source };
        let mut stdin_writer = None;
        if self.inherit_stdio {
            launch.stdin = Some(
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(io_error("could not pass on the caller's stdin"))?,
            );
            launch.inherit_output = true;
        } else if self.stdin_mode() == Stdin::Pipe {
            let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| Error::Io {
                what: "could not make the agent's stdin pipe",
                source: e.into(),
            })?;
            launch.stdin = Some(read_end);
            stdin_writer = Some(write_end);
        }

        crate::cost_trace::mark("run: launch prepared");
        let clock = Clock::start();
        let start_deadline = Instant::now() + self.ready_timeout;
        let inherit_stdio = self.inherit_stdio;
        let ready_line = self.ready.as_ref().and_then(Ready::line);
        // The tracker's thread starts with the sentinel, not after the agent's exec.
        let spawned = sentinel::spawn(
            &launch,
            self.sentinel_start,
            start_deadline,
            |events, stdout, stderr| {
                let inode = |own: BorrowedFd<'_>, pipe: &OwnedFd| {
                    pipe_inode(if inherit_stdio { own } else { pipe.as_fd() })
                };
                let inodes = (
                    inode(std::io::stdout().as_fd(), &stdout),
                    inode(std::io::stderr().as_fd(), &stderr),
                );
                let tracker = Tracker::start(events, stdout, stderr, clock, ready_line);
                crate::cost_trace::mark("tracker thread started");
                tracker.map(|tracker| (tracker, inodes))
            },
        );
        // The sentinel has its copies; the harness keeps only the write end of stdin.
        drop(launch);
        let spawned = match spawned {
            Ok(Ok(spawned)) => spawned,
            Ok(Err((stage, errno))) => {
                return Err(launch_error(stage, errno, &top_program, container));
            }
            Err(source) if source.kind() == std::io::ErrorKind::TimedOut => {
                return Err(Error::Io {
                    what:
                        "the agent did not start within ready_timeout (a chdir or exec that hangs?)",
                    source,
                })
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "could not fork the sentinel",
                    source,
                })
            }
        };
        crate::cost_trace::mark("spawn: agent exec'd (exec-status EOF)");
        // From here on an error ends the sentinel and the cgroup as an outcome's drop does
        // (a reader that could not start included).
        let held = Held::new(spawned.sentinel, cgroup, &run_id);
        let (tracker, (stdout, stderr)) = spawned.reader.map_err(|source| Error::Io {
            what: "could not start the output reader",
            source,
        })?;
        let pipes = AgentPipes {
            stdin: stdin_writer.as_ref().and_then(|fd| pipe_inode(fd.as_fd())),
            stdout,
            stderr,
        };
        if let Some(forwarder) = &self.forwarder {
            forwarder.attach(tracker.mailbox());
        }
        let run = self.watch(
            held,
            tracker,
            pipes,
            stdin_writer,
            run_id,
            watched,
            container,
            wrapper.map(|(role, _)| role),
        );
        if let Some(forwarder) = &self.forwarder {
            forwarder.close();
        }
        run
    }
}

fn check_port_free_before(port: u16) -> Result<(), Error> {
    let inodes = ports::on_port_fast(port).map_err(|source| Error::Io {
        what: "could not list the LISTEN sockets (netlink sock_diag and /proc/net/tcp)",
        source,
    })?;
    if inodes.is_empty() {
        return Ok(());
    }
    let holders = ports::holders_anywhere(&inodes)
        .into_iter()
        .map(|pid| PortHolder::describe(pid, false))
        .collect();
    Err(Error::PortBusy { port, holders })
}

/// A fresh id for `ORPHAN_CHECK_RUN`: unique per scenario, and prefixed by the caller's
/// own `ORPHAN_CHECK_RUN` when it has one, so a CI job can find everything its run
/// started.
fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let own = format!("oc-{}-{n}-{nanos:08x}", std::process::id());
    match std::env::var(RUN_ENV) {
        Ok(parent) if !parent.is_empty() => format!("{parent}.{own}"),
        _ => own,
    }
}
