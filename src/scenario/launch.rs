//! What the sentinel needs to launch the agent, prepared before anything starts: the
//! program found as `execvp` would find it, argv, envp and the working directory as C
//! strings, container mode's namespaces; and what a failed launch means.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Scenario;
use crate::cgroup::ScenarioCgroup;
use crate::error::Error;
use crate::sentinel::{Launch, LaunchStage, Namespaces};
use crate::RUN_ENV;

impl Scenario {
    pub(super) fn launch_spec(
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
pub(super) fn resolve_program(command: &Command) -> Result<PathBuf, Error> {
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

/// A copy of a command's program, arguments, environment changes and directory.
pub(super) fn copy_command(c: &Command) -> Command {
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
pub(super) fn container_allowed() -> Result<(), Error> {
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
pub(super) fn namespaces() -> Result<Namespaces, Error> {
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

pub(super) fn launch_error(
    stage: LaunchStage,
    errno: i32,
    program: &Path,
    container: bool,
) -> Error {
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
