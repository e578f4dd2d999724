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
use crate::kill::{self, KillPlan};
use crate::outcome::{Outcome, OutcomeParts};
use crate::ports::{self, PortHolder};
use crate::procs;
use crate::ready::{backoff, Ready};
use crate::sentinel::{self, Launch, LaunchStage, SentinelStart};
use crate::tracker::{Clock, Tracker};
use crate::RUN_ENV;

/// The longest delay or deadline the harness accepts: beyond this it is a mistake.
pub(crate) const MAX_DEADLINE: Duration = Duration::from_secs(3600);

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

    /// Launches the agent under a sentinel, waits for readiness, and runs the kill plan.
    ///
    /// Every error leaves nothing of the scenario running.
    pub fn run(self) -> Result<Outcome, Error> {
        self.validate()?;
        let program = resolve_program(&self.command)?;
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
        let launch = self.launch_spec(&program, &run_id, cgroup.as_ref())?;

        let clock = Clock::start();
        let spawned = match sentinel::spawn(&launch, self.sentinel_start) {
            Ok(Ok(spawned)) => spawned,
            Ok(Err((stage, errno))) => {
                return Err(launch_error(stage, errno, &program));
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "could not fork the sentinel",
                    source,
                })
            }
        };
        let sentinel = spawned.sentinel;
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
            })?
        };
        let ready_at = self.wait_ready(&tracker)?;
        // The tree at readiness: who was whose child, in which group, before anything
        // was killed. Read the agent here, not at fork: by now it has exec'd (through any
        // `env` or interpreter shim) and set up its signal handlers.
        let mut before_kill = procs::subtree(sentinel.pid());
        let agent_info = before_kill
            .iter()
            .find(|p| p.pid == agent)
            .cloned()
            .or_else(|| procs::ProcessInfo::read(agent));
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
        let kill_started_at = clock.now();
        let plan_record = kill::execute(&self.plan, &sentinel, &tracker, agent);
        let killed_at = clock.now();
        // Files are recorded once the plan has run: a write already in flight when the
        // signal arrived is not a write "after the kill".
        let dirs_before = crate::files::DirWatch::start(&self.dirs);

        Ok(Outcome::new(OutcomeParts {
            command: display_command(&self.command),
            run_id,
            plan: self.plan,
            ready: self
                .ready
                .as_ref()
                .map_or_else(|| "exec".to_string(), ToString::to_string),
            watched_ports: watched,
            sentinel,
            tracker,
            agent,
            agent_info,
            ready_at,
            kill_after: self.kill_after,
            kill_started_at,
            killed_at,
            before_kill,
            ports_at_ready,
            plan_record,
            dirs: dirs_before,
            cgroup,
        }))
    }

    fn validate(&self) -> Result<(), Error> {
        let check = |what: &'static str, value: Duration, zero_ok: bool| {
            if value.is_zero() && !zero_ok {
                return Err(Error::InvalidDeadline {
                    what,
                    value,
                    why: "must be greater than zero",
                });
            }
            if value > MAX_DEADLINE {
                return Err(Error::InvalidDeadline {
                    what,
                    value,
                    why: "must be at most one hour",
                });
            }
            Ok(())
        };
        check("ready_timeout", self.ready_timeout, false)?;
        check("kill_after", self.kill_after, true)?;
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
        run_id: &str,
        cgroup: Option<&ScenarioCgroup>,
    ) -> Result<Launch, Error> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::InvalidCommand(format!("{s:?} contains a NUL byte")))
        };
        let mut argv = vec![cstr(self.command.get_program())?];
        for arg in self.command.get_args() {
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
        })
    }

    /// Waits for the readiness condition; returns when it held (offset from start).
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
        loop {
            let polled = ready.poll();
            let (exited, status, line_or_time) = {
                let state = tracker.lock();
                let exit = state.agent_exit();
                (exit.is_some(), exit.map(|e| e.status), met(&state))
            };
            if polled == Some(true) || line_or_time {
                return Ok(tracker.clock.now());
            }
            if exited {
                // One more look: the agent may have made the condition true just before
                // it exited (a launcher that starts a server and returns).
                let again = ready.poll() == Some(true) || met(&tracker.lock());
                if again {
                    return Ok(tracker.clock.now());
                }
                let state = tracker.lock();
                return Err(Error::ExitedBeforeReady {
                    status: crate::outcome::describe_status(status.unwrap_or(0)),
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
                    stdout: Box::new(state.stdout.clone()),
                    stderr: Box::new(state.stderr.clone()),
                });
            }
            let wake = match ready {
                Ready::Port(_) | Ready::File(_) => (now + backoff(checks)).min(deadline),
                Ready::After(d) => tracker.clock.instant(*d).min(deadline),
                _ => deadline,
            };
            tracker.wait(wake, |s| {
                s.agent_exit().is_some() || s.sentinel_gone || met(s)
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

fn launch_error(stage: LaunchStage, errno: i32, program: &Path) -> Error {
    let source = std::io::Error::from_raw_os_error(errno);
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
