//! The scenario builder: what to launch, when it is ready, how to kill it, what to watch.
//!
//! [`Scenario::run`] is the whole flow up to the kill: validate, check the watched ports
//! are free, fork the sentinel (which launches the agent), wait for readiness, record
//! the tree, run the kill plan, and hand back an [`Outcome`](crate::Outcome) to ask for
//! verdicts.
//!
//! Here too is what a scenario is built from: its readiness condition ([`Ready`]), its
//! stdin ([`Stdin`]), the cgroup layer ([`CgroupMode`]) and how a file is changed after
//! the kill ([`TouchMode`]).

// This file is the builder and its validation; `start.rs` starts the agent (up to a
// running sentinel and tracker; `held.rs` ends the sentinel and the cgroup if the start
// fails), `launch.rs` prepares what the sentinel needs to launch
// it (the program found as `execvp` would, argv, envp, namespaces), and `watch.rs` takes
// the started agent to the outcome (readiness, the tree, the plan, the watches).

mod held;
mod launch;
mod start;
mod watch;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub use crate::cgroup::{writable_root as cgroup_root, CgroupMode};
pub use crate::ready::Ready;
// How the sentinel starts is chosen from the caller's size; the choice is public only so
// that the suite can run both ways (`ORPHAN_CHECK_SENTINEL_START` does it from outside).
#[doc(hidden)]
pub use crate::sentinel::SentinelStart;
pub use crate::touch::{TouchMode, TOUCH_LINE};

use crate::error::Error;
use crate::kill::{KillPlan, SignalForwarder};
use crate::time::deadline_problem;
use crate::touch;

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
    verdict_deadline: Duration,
}

/// The default of [`Scenario::verdict_deadline`].
const DEFAULT_VERDICT_DEADLINE: Duration = Duration::from_secs(5);

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
            verdict_deadline: DEFAULT_VERDICT_DEADLINE,
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
    /// [`Outcome::assert_no_writes_after_kill`](crate::Outcome::assert_no_writes_after_kill)).
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
    // Hidden with `SentinelStart`: the automatic choice is the right one, and the suite's
    // way to force each path is not an API to keep.
    #[doc(hidden)]
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

    /// The deadline of the verdicts that take none: [`Outcome::survivors`],
    /// [`Outcome::check_clean`] and [`Outcome::assert_clean`] (default 5 s, enough for a
    /// graceful shutdown on a loaded machine). Like every deadline it counts from the
    /// kill and is an upper bound: a tree that is gone is judged the moment it is, and
    /// only a leak waits the whole deadline. Zero looks once, right away, and waits for
    /// nothing. At most [`MAX_DEADLINE`](crate::time::MAX_DEADLINE).
    ///
    /// [`Outcome::survivors`]: crate::Outcome::survivors
    /// [`Outcome::check_clean`]: crate::Outcome::check_clean
    /// [`Outcome::assert_clean`]: crate::Outcome::assert_clean
    pub fn verdict_deadline(mut self, deadline: Duration) -> Self {
        self.verdict_deadline = deadline;
        self
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
        check("verdict_deadline", self.verdict_deadline, true)?;
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
}
