//! Fixtures: misbehaving programs, one per way a subprocess escapes cleanup, runnable from
//! any `cargo test` with only this crate as a dev-dependency.
//!
//! All fixtures are one small std-only program (`fixtures/` in this crate), compiled by the
//! build script and hard-linked once per name, so `/proc/<pid>/comm` shows the fixture's
//! name. Each prints one `ready pid=<pid> port=<port>` line on stdout when it is set up,
//! and prefixes its stderr lines with its name.
//!
//! [`ExampleAgent`]s are the Python and Node agents of `fixtures/agents/`, written with
//! the patterns of the six common causes and their usual fixes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The fixture programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fixture {
    /// Control: a well-behaved server with default signal dispositions.
    Listener,
    /// A server that ignores SIGTERM.
    SigtermIgnorer,
    /// `Popen("a & b & wait", shell=True)`: killing the shell orphans its children.
    ShellForkTree,
    /// Catches SIGTERM/SIGINT and keeps the port for `--hold-ms` before exiting
    /// (`--hold-ms forever`: until killed).
    SlowPortHolder,
    /// The driver agent: starts another fixture plainly, in a new session or group, and
    /// reacts to SIGTERM/SIGINT by dying, forwarding, or killing the child's group.
    Agent,
    /// fork, setsid, fork: a daemon reparented before anyone tracks it.
    DoubleForkDaemon,
    /// A child that calls `setsid()`.
    SetsidEscaper,
    /// A child that calls `setpgid(0, 0)`.
    PgidEscaper,
    /// A child re-executed with an empty environment.
    EnvScrubber,
    /// A supervisor that restarts its server whenever it dies.
    Respawner,
    /// Keeps forking short- and long-lived children.
    ForkStorm,
    /// A SIGSTOPped child.
    StoppedChild,
    /// A parent that never reaps its exited children.
    ZombieMaker,
    /// Keeps writing files into `--dir`, like `tsc --watch`.
    FileWatcher,
    /// `npm run dev`: sh → sh → server.
    WrapperChain,
    /// Control: `sh -c 'exec server'`.
    ExecReplace,
    /// Control: a child with `PR_SET_PDEATHSIG=SIGKILL` (`--self`: the fixture too).
    PdeathsigChild,
    /// Follows its parent by polling `getppid()`, like gunicorn's workers.
    ParentPoller,
}

const CATALOG: &str = include_str!("../fixtures/catalog.tsv");

impl Fixture {
    /// Every fixture, in catalog order.
    pub const ALL: [Fixture; 18] = [
        Fixture::Listener,
        Fixture::SigtermIgnorer,
        Fixture::ShellForkTree,
        Fixture::SlowPortHolder,
        Fixture::Agent,
        Fixture::DoubleForkDaemon,
        Fixture::SetsidEscaper,
        Fixture::PgidEscaper,
        Fixture::EnvScrubber,
        Fixture::Respawner,
        Fixture::ForkStorm,
        Fixture::StoppedChild,
        Fixture::ZombieMaker,
        Fixture::FileWatcher,
        Fixture::WrapperChain,
        Fixture::ExecReplace,
        Fixture::PdeathsigChild,
        Fixture::ParentPoller,
    ];

    /// The fixture's name: `sigterm-ignorer`.
    pub fn name(self) -> &'static str {
        match self {
            Fixture::Listener => "listener",
            Fixture::SigtermIgnorer => "sigterm-ignorer",
            Fixture::ShellForkTree => "shell-fork-tree",
            Fixture::SlowPortHolder => "slow-port-holder",
            Fixture::Agent => "agent",
            Fixture::DoubleForkDaemon => "double-fork-daemon",
            Fixture::SetsidEscaper => "setsid-escaper",
            Fixture::PgidEscaper => "pgid-escaper",
            Fixture::EnvScrubber => "env-scrubber",
            Fixture::Respawner => "respawner",
            Fixture::ForkStorm => "fork-storm",
            Fixture::StoppedChild => "stopped-child",
            Fixture::ZombieMaker => "zombie-maker",
            Fixture::FileWatcher => "file-watcher",
            Fixture::WrapperChain => "wrapper-chain",
            Fixture::ExecReplace => "exec-replace",
            Fixture::PdeathsigChild => "pdeathsig-child",
            Fixture::ParentPoller => "parent-poller",
        }
    }

    /// The fixture with this name.
    pub fn from_name(name: &str) -> Option<Fixture> {
        Fixture::ALL.into_iter().find(|f| f.name() == name)
    }

    /// One sentence: which real failure it reproduces.
    pub fn summary(self) -> &'static str {
        CATALOG
            .lines()
            .find_map(|l| {
                l.strip_prefix(self.name())
                    .and_then(|r| r.strip_prefix('\t'))
            })
            .unwrap_or("")
    }

    /// The executable.
    pub fn path(self) -> PathBuf {
        fixture_dir().join(self.name())
    }

    /// A command that runs the fixture; add arguments (`--port N`, `--hold-ms N`…).
    ///
    /// ```
    /// use orphan_check::Fixture;
    ///
    /// let mut cmd = Fixture::Listener.command();
    /// let out = cmd.args(["--port", "not-a-number"]).output()?;
    /// assert_eq!(out.status.code(), Some(2), "a bad argument is refused");
    /// assert!(Fixture::from_name("sigterm-ignorer").is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn command(self) -> Command {
        Command::new(self.path())
    }
}

/// The directory holding the fixture binaries: the build script's output, or (when that
/// is gone, as after `cargo install`) a copy of the embedded binary in the temp dir.
pub fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = Path::new(env!("OUT_DIR")).join("fixtures");
        if built.join("orphan-check-fixture").is_file() {
            return built;
        }
        materialize().unwrap_or(built)
    })
}

const EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixtures/orphan-check-fixture"));

fn materialize() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "orphan-check-fixtures-{}-{}-{}",
        env!("CARGO_PKG_VERSION"),
        EMBEDDED.len(),
        rustix::process::getuid().as_raw()
    ));
    let binary = dir.join("orphan-check-fixture");
    if !binary.is_file() {
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".partial-{}", std::process::id()));
        std::fs::write(&tmp, EMBEDDED)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &binary)?;
    }
    for name in Fixture::ALL
        .map(Fixture::name)
        .into_iter()
        .chain([LAUNCHER])
    {
        let link = dir.join(name);
        if !link.exists() {
            let _ = std::fs::hard_link(&binary, &link);
        }
    }
    Ok(dir)
}

/// The name of the launcher [`KillPlan::parent_death`](crate::KillPlan::parent_death)
/// starts the agent through (a role of the fixture binary, not a fixture).
const LAUNCHER: &str = "launcher";

/// The launcher's executable: `launcher -- PROGRAM [ARGS...]` starts PROGRAM as its
/// child and waits for it.
pub(crate) fn launcher_path() -> PathBuf {
    fixture_dir().join(LAUNCHER)
}

/// The example agents in Python and Node, reproducing the six causes and the usual fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExampleAgent {
    /// Cause 1: a bare `Popen`, never terminated.
    Cause1NoCleanup,
    /// Cause 2: `terminate()` not in `finally`; an exception skips it.
    Cause2ExceptionPath,
    /// Cause 3: cleanup in `finally`/atexit, but SIGKILL runs none of it.
    Cause3SigkillUngrouped,
    /// Cause 4: `shell=True` and `.terminate()` on the shell.
    Cause4ShellTrue,
    /// Cause 5: the server's slow graceful shutdown holds the port.
    Cause5SlowShutdown,
    /// Cause 6: the agent as PID 1 of a PID namespace (needs `unshare`).
    Cause6Pid1,
    /// The `managed_subprocess` context manager fix.
    FixManagedSubprocess,
    /// The `atexit` + SIGTERM registry fix.
    FixAtexitRegistry,
    /// Node: `child_process.spawn` without `detached`.
    NodeNoDetached,
    /// Node: `npm run dev` → sh → node.
    NodeWrapperChain,
    /// A SIGTERM handler that forwards SIGTERM to a server that ignores it, then exits.
    ForwardSigterm,
}

impl ExampleAgent {
    /// Every example agent.
    pub const ALL: [ExampleAgent; 11] = [
        ExampleAgent::Cause1NoCleanup,
        ExampleAgent::Cause2ExceptionPath,
        ExampleAgent::Cause3SigkillUngrouped,
        ExampleAgent::Cause4ShellTrue,
        ExampleAgent::Cause5SlowShutdown,
        ExampleAgent::Cause6Pid1,
        ExampleAgent::FixManagedSubprocess,
        ExampleAgent::FixAtexitRegistry,
        ExampleAgent::NodeNoDetached,
        ExampleAgent::NodeWrapperChain,
        ExampleAgent::ForwardSigterm,
    ];

    /// The script's file name.
    pub fn file(self) -> &'static str {
        match self {
            ExampleAgent::Cause1NoCleanup => "cause1_no_cleanup.py",
            ExampleAgent::Cause2ExceptionPath => "cause2_exception_path.py",
            ExampleAgent::Cause3SigkillUngrouped => "cause3_sigkill_ungrouped.py",
            ExampleAgent::Cause4ShellTrue => "cause4_shell_true.py",
            ExampleAgent::Cause5SlowShutdown => "cause5_slow_shutdown.py",
            ExampleAgent::Cause6Pid1 => "cause6_pid1.py",
            ExampleAgent::FixManagedSubprocess => "fix_managed_subprocess.py",
            ExampleAgent::FixAtexitRegistry => "fix_atexit_registry.py",
            ExampleAgent::NodeNoDetached => "node_no_detached.js",
            ExampleAgent::NodeWrapperChain => "node_wrapper_chain.js",
            ExampleAgent::ForwardSigterm => "forward_sigterm.py",
        }
    }

    /// The script's path (in this crate's sources).
    pub fn path(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/agents")
            .join(self.file())
    }

    /// `python3 <script>` or `node <script>`; add `--port N`.
    pub fn command(self) -> Command {
        let interpreter = if self.file().ends_with(".js") {
            "node"
        } else {
            "python3"
        };
        let mut cmd = Command::new(interpreter);
        cmd.arg(self.path());
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enum_and_the_catalog_agree() {
        let names: Vec<&str> = CATALOG
            .lines()
            .filter_map(|l| l.split('\t').next())
            .collect();
        // The catalog also names the launcher role, last, which is not a fixture.
        let mut ours: Vec<&str> = Fixture::ALL.iter().map(|f| f.name()).collect();
        ours.push(LAUNCHER);
        assert_eq!(names, ours);
        assert!(launcher_path().is_file());
        for f in Fixture::ALL {
            assert!(!f.summary().is_empty(), "{} has no summary", f.name());
            assert_eq!(Fixture::from_name(f.name()), Some(f));
            assert!(f.path().is_file(), "{} was not built", f.path().display());
        }
    }

    #[test]
    fn example_agents_exist() {
        for a in ExampleAgent::ALL {
            assert!(a.path().is_file(), "{}", a.path().display());
        }
    }
}
