//! The scenario builder: what to launch, when it is ready, how to kill it, what to watch.
//!
//! [`Scenario::run`] is the whole flow up to the kill: validate, check the watched ports
//! are free, fork the sentinel (which launches the agent), wait for readiness, record
//! the tree, run the kill plan, and hand back an [`Outcome`] to ask for verdicts.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cgroup::{CgroupMode, ScenarioCgroup};
use crate::error::Error;
use crate::kill::{self, Ending, KillPlan, SignalForwarder};
use crate::outcome::{Live, Outcome, ReadyBy, Run};
use crate::pipes::{pipe_inode, AgentPipes};
use crate::ports::{self, PortHolder};
use crate::procs;
use crate::ready::{backoff, Ready};
use crate::sentinel::{self, Launch, LaunchStage, Namespaces, SentinelStart};
use crate::time::deadline_problem;
use crate::touch::{self, TouchMode, TouchRecord};
use crate::tracker::{Clock, Tracker};
use crate::RUN_ENV;
use rustix::pipe::{pipe_with, PipeFlags};
use std::os::fd::AsFd;

/// One cleanup smoke test: launch an agent, wait until it is ready, kill it by plan.
///
/// ```
/// use orphan_check::{Fixture, KillPlan, Ready, Scenario};
/// use std::time::Duration;
///
/// let outcome = Scenario::new(Fixture::Listener.command())
///     .ready_when(Ready::stdout_line("ready"))
///     .kill(KillPlan::sigterm())
///     .run()?;
/// outcome.assert_no_survivors(Duration::from_secs(2));
/// # Ok::<(), orphan_check::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a scenario does nothing until `run` is called"]
pub struct Scenario {
    command: Command,
    ready: Option<Ready>,
    ready_timeout: Duration,
    plan: KillPlan,
    kill_after: Duration,
    ports: Vec<u16>,
    dirs: Vec<PathBuf>,
    cgroup: CgroupMode,
    sentinel_start: SentinelStart,
    container: bool,
    init: Option<Command>,
    touch: Option<PathBuf>,
    touch_mode: TouchMode,
    exit_timeout: Duration,
    stdin: Option<Stdin>,
    inherit_stdio: bool,
    forwarder: Option<SignalForwarder>,
}

/// The process the harness puts between the sentinel and the agent, when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WrapperRole {
    /// The launcher [`KillPlan::parent_death`] kills.
    Launcher,
    /// The container's init (`--init`: tini, dumb-init), PID 1 with the agent under it.
    Init,
}

impl WrapperRole {
    pub(crate) fn name(self) -> &'static str {
        match self {
            WrapperRole::Launcher => "launcher",
            WrapperRole::Init => "init",
        }
    }
}

/// What the agent's stdin is.
///
/// The default is [`Stdin::Null`], unless the plan closes stdin
/// ([`KillPlan::close_stdin`]), which needs [`Stdin::Pipe`]: an agent that reads its
/// stdin (a REPL, `cat`, a stdio server) then sees end of file at once, as under `nohup`
/// or a CI job, and no scenario changes meaning because a pipe it never asked for stays
/// open until the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stdin {
    /// `/dev/null`: reads return end of file at once.
    Null,
    /// A pipe whose only write end the harness holds (nothing is written to it). It is
    /// closed by the stdin plans, or when the outcome is dropped.
    Pipe,
}

impl Scenario {
    /// A scenario for `command`: its program, arguments, environment changes and working
    /// directory are used (stdio is always captured by the harness; `env_clear` is not
    /// visible through `Command`'s getters, so clear variables with `env_remove`).
    ///
    /// The program is found where `Command::spawn` on Linux would run it, which changes
    /// directory before `execvp`: a relative path (`./tool`) and a relative `PATH` entry
    /// are relative to the `current_dir` given (itself relative to ours), a bare name is
    /// searched in the command's own `PATH` when it sets one, and a file without execute
    /// permission is skipped in that search. It is resolved once, to an absolute path,
    /// before anything starts.
    pub fn new(command: Command) -> Self {
        Scenario {
            command,
            ready: None,
            ready_timeout: Duration::from_secs(10),
            plan: KillPlan::sigkill(),
            kill_after: Duration::ZERO,
            ports: Vec::new(),
            dirs: Vec::new(),
            cgroup: CgroupMode::Auto,
            sentinel_start: SentinelStart::Auto,
            container: false,
            init: None,
            touch: None,
            touch_mode: TouchMode::Rewrite,
            exit_timeout: Duration::from_secs(30),
            stdin: None,
            inherit_stdio: false,
            forwarder: None,
        }
    }

    /// When the agent is ready to be killed. Without it, the plan runs as soon as the
    /// agent's `exec` succeeded.
    pub fn ready_when(mut self, ready: Ready) -> Self {
        self.ready = Some(ready);
        self
    }

    /// How long to wait for readiness (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The kill plan (default [`KillPlan::sigkill`]).
    pub fn kill(mut self, plan: KillPlan) -> Self {
        self.plan = plan;
        self
    }

    /// An extra delay between readiness and the kill (default none).
    pub fn kill_after(mut self, delay: Duration) -> Self {
        self.kill_after = delay;
        self
    }

    /// A port to watch: it must be free before the start, and its holders are named in
    /// the report.
    pub fn watch_port(mut self, port: u16) -> Self {
        if !self.ports.contains(&port) {
            self.ports.push(port);
        }
        self
    }

    /// A directory to watch for writes after the kill (see
    /// [`Outcome::assert_no_writes_after_kill`]).
    pub fn watch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Whether to place the agent in a fresh cgroup v2 (default: when a writable
    /// hierarchy is found).
    pub fn cgroup(mut self, mode: CgroupMode) -> Self {
        self.cgroup = mode;
        self
    }

    /// How the sentinel process is started (default: fork a small caller, re-exec a
    /// large one; see [`SentinelStart`]).
    pub fn sentinel_start(mut self, start: SentinelStart) -> Self {
        self.sentinel_start = start;
        self
    }

    /// Container mode, as `docker run` without `--init`: the agent is PID 1 of a new PID
    /// namespace, with a mount namespace of its own (mount propagation private, `/proc`
    /// mounted afresh). The sentinel stays outside as its parent. The pid plans then
    /// reach PID 1 ([`KillPlan::sigkill`] is `docker kill`, [`KillPlan::container_stop`]
    /// is `docker stop`), and when PID 1 dies the kernel SIGKILLs the rest of the
    /// namespace: the report tells whether PID 1 honoured SIGTERM or the stop took the
    /// whole grace (cause 6), and which processes the namespace's SIGKILL took instead
    /// of exiting on their own. Host and namespace pids are shown side by side.
    ///
    /// Needs root, or unprivileged user namespaces (then the caller's ids are mapped to
    /// root inside); without either, [`run`](Scenario::run) fails with
    /// [`Error::ContainerUnavailable`]. The network is the host's.
    pub fn container(mut self) -> Self {
        self.container = true;
        self
    }

    /// Container mode with `init` as PID 1 and the agent under it, as
    /// `docker run --init` does: the agent's program (resolved) and arguments are
    /// appended to `init`'s, so give `tini --` or `dumb-init`. Implies
    /// [`container`](Scenario::container).
    pub fn init(mut self, init: Command) -> Self {
        self.init = Some(init);
        self.container = true;
        self
    }

    /// Once the kill plan has run, change `path` (by default write its bytes back
    /// unchanged; see [`touch_mode`](Scenario::touch_mode)), so that a watcher that
    /// survived (`tsc --watch`, a bundler) rebuilds, and files written after the kill
    /// prove it is alive. The touch happens right after the plan, before any verdict; the
    /// report states its moment. The harness's own write is not counted as a write
    /// after the kill. The file must exist and be writable.
    pub fn touch_after_kill(mut self, path: impl Into<PathBuf>) -> Self {
        self.touch = Some(path.into());
        self
    }

    /// How [`touch_after_kill`](Scenario::touch_after_kill) changes the file (default
    /// [`TouchMode::Rewrite`]).
    pub fn touch_mode(mut self, mode: TouchMode) -> Self {
        self.touch_mode = mode;
        self
    }

    /// How long [`KillPlan::own_exit`] waits for the agent to exit by itself (default
    /// 30 s). An agent still running then is a verdict of its own
    /// ([`Verdict::DidNotFinish`](crate::Verdict::DidNotFinish)) and its tree is killed.
    pub fn exit_timeout(mut self, timeout: Duration) -> Self {
        self.exit_timeout = timeout;
        self
    }

    /// The agent's stdin (default: see [`Stdin`]).
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// The agent gets the caller's own stdin, stdout and stderr (so `isatty` holds, and
    /// its output goes where the caller's goes); nothing is captured, so a stdout-line
    /// readiness cannot be used. For a wrapper that must be transparent.
    pub fn inherit_stdio(mut self) -> Self {
        self.inherit_stdio = true;
        self
    }

    /// Signals handed to `forwarder` while the agent runs are sent to the agent's process
    /// group (with [`KillPlan::own_exit`], during the wait for its exit).
    pub fn forward_signals(mut self, forwarder: &SignalForwarder) -> Self {
        self.forwarder = Some(forwarder.clone());
        self
    }

    /// Launches the agent under a sentinel, waits for readiness, and runs the kill plan.
    ///
    /// Every error leaves nothing of the scenario running.
    pub fn run(self) -> Result<Outcome, Error> {
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

        let clock = Clock::start();
        let start_deadline = Instant::now() + self.ready_timeout;
        let spawned = sentinel::spawn(&launch, self.sentinel_start, start_deadline);
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
        let sentinel = spawned.sentinel;
        let pipes = AgentPipes {
            stdin: stdin_writer.as_ref().and_then(|fd| pipe_inode(fd.as_fd())),
            stdout: if self.inherit_stdio {
                pipe_inode(std::io::stdout().as_fd())
            } else {
                pipe_inode(spawned.stdout.as_fd())
            },
            stderr: if self.inherit_stdio {
                pipe_inode(std::io::stderr().as_fd())
            } else {
                pipe_inode(spawned.stderr.as_fd())
            },
        };
        let tracker = Tracker::start(
            spawned.events,
            spawned.stdout,
            spawned.stderr,
            clock,
            self.ready.as_ref().and_then(Ready::line),
        )
        .map_err(|source| Error::Io {
            what: "could not start the output reader",
            source,
        })?;
        if let Some(forwarder) = &self.forwarder {
            forwarder.attach(tracker.mailbox());
        }
        let run = self.watch(
            sentinel,
            tracker,
            pipes,
            stdin_writer,
            run_id,
            cgroup,
            watched,
            container,
            wrapper.map(|(role, _)| role),
        );
        if let Some(forwarder) = &self.forwarder {
            forwarder.close();
        }
        run
    }

    /// The agent is started: wait for readiness, run the plan, hand over the outcome.
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        sentinel: sentinel::SentinelHandle,
        tracker: Tracker,
        pipes: AgentPipes,
        stdin_writer: Option<std::os::fd::OwnedFd>,
        run_id: String,
        cgroup: Option<ScenarioCgroup>,
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
        let ready = agent.and_then(|agent| {
            // A first look at the agent now: a launcher may be gone by readiness.
            let at_start = procs::ProcessInfo::read(agent);
            Ok((agent, at_start, self.wait_ready(&tracker)?))
        });
        if ready.is_err() && tracker.lock().sentinel_gone {
            // Something killed the sentinel: no lifeline will end the tree it started.
            crate::lost::end(&run_id, cgroup.as_ref(), Duration::from_secs(5));
        }
        let (agent, agent_at_start, ready_at) = ready?;
        // With a wrapper, the sentinel's child is the wrapper; the agent is its child
        // once that has exec'd.
        let top = agent;
        let wrapped_agent = match wrapper {
            Some(role) => Some(self.wait_for_wrapped_agent(&tracker, top, role)?),
            None => None,
        };
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
        let kill_started_at = clock.now();
        let mut ending = Ending {
            exit_timeout: self.exit_timeout,
            stdin: stdin_writer,
        };
        let plan_record =
            kill::execute(&self.plan, &sentinel, &tracker, top, container, &mut ending);
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
        };
        let outcome = Outcome::new(live, run);
        if outcome.plan_record().did_not_finish {
            // The agent did not finish: its tree is cleaned up now, and the report says so.
            outcome.end_tree(Duration::from_secs(10));
        }
        Ok(outcome)
    }

    /// Stdin as the scenario asks for it, or as its plan needs it.
    fn stdin_mode(&self) -> Stdin {
        self.stdin.unwrap_or(if self.plan.closes_stdin() {
            Stdin::Pipe
        } else {
            Stdin::Null
        })
    }

    fn validate(&self) -> Result<(), Error> {
        let check = |what: &'static str, value: Duration, zero_ok: bool| match deadline_problem(
            value, zero_ok,
        ) {
            Some(why) => Err(Error::InvalidDeadline { what, value, why }),
            None => Ok(()),
        };
        check("ready_timeout", self.ready_timeout, false)?;
        check("kill_after", self.kill_after, true)?;
        if self.plan.needs_launcher() && (self.container || self.init.is_some()) {
            return Err(Error::InvalidCommand(
                "the parent-death plan cannot run in container mode: the launcher would be \
                 PID 1, and its death kills the namespace"
                    .into(),
            ));
        }
        if let Some(path) = &self.touch {
            touch::validate(path)?;
        }
        check("exit_timeout", self.exit_timeout, false)?;
        if self.plan.closes_stdin() && (self.stdin == Some(Stdin::Null) || self.inherit_stdio) {
            return Err(Error::InvalidCommand(format!(
                "the plan {} closes the agent's stdin, which needs Stdin::Pipe (--stdin pipe)",
                self.plan.name()
            )));
        }
        if self.inherit_stdio && matches!(self.ready, Some(Ready::StdoutLine(_))) {
            return Err(Error::InvalidCommand(
                "a stdout-line readiness needs the agent's stdout captured, not inherited".into(),
            ));
        }
        if let Some(grace) = self.plan.grace() {
            check("the kill plan's grace", grace, false)?;
        }
        if let Some(Ready::After(d)) = &self.ready {
            check("Ready::after", *d, true)?;
            if *d >= self.ready_timeout {
                return Err(Error::InvalidDeadline {
                    what: "Ready::after",
                    value: *d,
                    why: "must be shorter than ready_timeout",
                });
            }
        }
        Ok(())
    }

    fn launch_spec(
        &self,
        program: &Path,
        args: &[OsString],
        run_id: &str,
        cgroup: Option<&ScenarioCgroup>,
    ) -> Result<Launch, Error> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::InvalidCommand(format!("{s:?} contains a NUL byte")))
        };
        let mut argv = Vec::with_capacity(args.len());
        for arg in args {
            argv.push(cstr(arg)?);
        }
        let mut env: Vec<(OsString, OsString)> =
            std::env::vars_os().filter(|(k, _)| k != RUN_ENV).collect();
        for (key, value) in self.command.get_envs() {
            env.retain(|(k, _)| k != key);
            if let Some(v) = value {
                env.push((key.to_owned(), v.to_owned()));
            }
        }
        env.retain(|(k, _)| k != RUN_ENV);
        env.push((RUN_ENV.into(), run_id.into()));
        let mut envp = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            envp.push(cstr(&kv)?);
        }
        let cwd = self
            .command
            .get_current_dir()
            .map(|d| cstr(d.as_os_str()))
            .transpose()?;
        let cgroup_dir = cgroup.map(|cg| cstr(cg.dir().as_os_str())).transpose()?;
        Ok(Launch {
            program: cstr(program.as_os_str())?,
            argv,
            envp,
            cwd,
            cgroup_dir,
            namespaces: None,
            stdin: None,
            inherit_output: false,
        })
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

/// `PATH` as glibc's `execvp` searches it when the child's environment has none.
#[cfg(not(target_env = "musl"))]
const DEFAULT_PATH: &str = "/bin:/usr/bin";
/// `PATH` as musl's `execvp` searches it when the child's environment has none.
#[cfg(target_env = "musl")]
const DEFAULT_PATH: &str = "/usr/local/bin:/bin:/usr/bin";

/// Finds the executable exactly where `std::process::Command` on Linux would run it, once,
/// as an absolute path, so that a missing program is an error before anything is forked
/// and the sentinel execs the very file that was checked (after its own `chdir`).
///
/// std changes to the working directory first and then calls `execvp` with the child's
/// environment, so:
///
/// - a program containing a slash is a path; a relative one is relative to the child's
///   working directory (`current_dir`, itself relative to ours), not to ours;
/// - a bare name is looked up in the child's `PATH`: the command's own when it sets one,
///   ours when it does not, `execvp`'s default when it removes it. Each entry is tried in
///   order; a relative entry (or an empty one, meaning `.`) is relative to the child's
///   working directory; a file that is not executable is skipped, as `execvp` goes on
///   after `EACCES`.
fn resolve_program(command: &Command) -> Result<PathBuf, Error> {
    let program = Path::new(command.get_program());
    let given = program.to_string_lossy().into_owned();
    if program.as_os_str().is_empty() {
        return Err(Error::NotFound {
            program: given,
            searched: "an empty program name".into(),
        });
    }
    // Relative paths are the child's: anchored in its working directory, read only when
    // needed (an absolute program runs even when our own directory is gone).
    let anchored = |p: &Path| -> Result<PathBuf, Error> {
        if p.is_absolute() {
            Ok(p.to_path_buf())
        } else {
            Ok(child_working_dir(command)?.join(p))
        }
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_os_str().as_bytes().contains(&b'/') {
        let path = anchored(program)?;
        if !path.exists() {
            return Err(Error::NotFound {
                program: given,
                searched: path.display().to_string(),
            });
        }
        if !executable(&path) {
            return Err(Error::NotExecutable { path });
        }
        return Ok(path);
    }
    let path_var = match command.get_envs().find(|(k, _)| *k == "PATH") {
        Some((_, Some(v))) => v.to_owned(),
        Some((_, None)) => DEFAULT_PATH.into(),
        None => std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
    };
    let mut not_executable = None;
    for dir in std::env::split_paths(&path_var) {
        // `Path::join` of an empty entry gives the bare name: the working directory.
        let candidate = anchored(&dir.join(program))?;
        if executable(&candidate) {
            return Ok(candidate);
        }
        if not_executable.is_none() && candidate.is_file() {
            not_executable = Some(candidate);
        }
    }
    match not_executable {
        Some(path) => Err(Error::NotExecutable { path }),
        None => Err(Error::NotFound {
            program: given,
            searched: format!("PATH={}", path_var.to_string_lossy()),
        }),
    }
}

/// The directory the agent starts in, as an absolute path: `current_dir` (relative to
/// ours when relative), else ours.
fn child_working_dir(command: &Command) -> Result<PathBuf, Error> {
    match command.get_current_dir() {
        Some(dir) if dir.is_absolute() => Ok(dir.to_path_buf()),
        dir => {
            let here = std::env::current_dir().map_err(|source| Error::Io {
                what: "could not read the current directory to resolve the program",
                source,
            })?;
            Ok(dir.map_or(here.clone(), |d| here.join(d)))
        }
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

/// A copy of a command's program, arguments, environment changes and directory.
fn copy_command(c: &Command) -> Command {
    let mut copy = Command::new(c.get_program());
    copy.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => copy.env(k, v),
            None => copy.env_remove(k),
        };
    }
    if let Some(dir) = c.get_current_dir() {
        copy.current_dir(dir);
    }
    copy
}

/// Whether container mode can work here, checked before anything starts: root, or user
/// namespaces that an unprivileged process may create.
fn container_allowed() -> Result<(), Error> {
    if rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let refused = |reason: String| Err(Error::ContainerUnavailable { reason });
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return refused(
            "not root, and user namespaces are disabled (user.max_user_namespaces = 0)".into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return refused("not root, and unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return refused("not root, and AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)".into());
    }
    Ok(())
}

/// The namespaces of container mode: a user namespace too when not root.
fn namespaces() -> Result<Namespaces, Error> {
    let user_map = if rustix::process::geteuid().is_root() {
        None
    } else {
        let line = |id: u32| CString::new(format!("0 {id} 1")).expect("digits");
        Some((
            line(rustix::process::geteuid().as_raw()),
            line(rustix::process::getegid().as_raw()),
        ))
    };
    Ok(Namespaces { user_map })
}

fn launch_error(stage: LaunchStage, errno: i32, program: &Path, container: bool) -> Error {
    let source = std::io::Error::from_raw_os_error(errno);
    if container && matches!(stage, LaunchStage::Namespace | LaunchStage::ForkAgent) {
        let step = if stage == LaunchStage::Namespace {
            "setting up the new namespaces (id maps, /proc)"
        } else {
            "creating the PID and mount namespaces"
        };
        return Error::ContainerUnavailable {
            reason: format!("{step} failed: {source}"),
        };
    }
    match (stage, source.kind()) {
        (LaunchStage::Exec, std::io::ErrorKind::PermissionDenied) => Error::NotExecutable {
            path: program.to_path_buf(),
        },
        _ => Error::Launch {
            stage: match stage {
                LaunchStage::JoinCgroup => "joining the scenario's cgroup",
                LaunchStage::Chdir => "changing to the working directory",
                LaunchStage::Exec => "exec",
                LaunchStage::ForkAgent => "forking the agent",
                LaunchStage::Namespace => "setting up the container's namespaces",
            },
            source,
        },
    }
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
