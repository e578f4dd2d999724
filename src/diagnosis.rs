//! How a survivor escaped, in the words of the six common causes of orphaned
//! subprocesses, and which common cleanup strategies would have missed it.
//!
//! The causes, as the report names them:
//!
//! 1. the agent exits without calling cleanup: no signal is sent to its children;
//! 2. an exception path skips the cleanup (it is not in `finally`);
//! 3. the agent is SIGKILLed and its children were not grouped for a group kill;
//! 4. `shell=True`: the signal reaches the shell, not the program the shell started;
//! 5. a slow graceful shutdown keeps holding the port;
//! 6. signals are not propagated by the process at the top (PID 1 of a container).
//!
//! Every diagnosis ends in a one-line hint toward the fix.

// This file is the vocabulary: `Escape` and `Cleanup`, with the words, causes and
// hints the report gives them. Deciding which apply is in `diagnosis/`: `context.rs`
// (what is known of the scenario as a whole), `escapes.rs` (every escape of one
// survivor, in order) and `missed.rs` (the cleanups that would have missed it).

mod context;
mod escapes;
mod missed;

pub(crate) use context::Context;
pub(crate) use escapes::escapes;
pub(crate) use missed::missed_by;

use serde::Serialize;
use std::fmt;

use crate::signal::Signal;

/// One way a survivor escaped cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Escape {
    /// Cause 1: its parent died and nothing cleaned it up; it was reparented.
    NoCleanup,
    /// Cause 2: the agent exited on its own with an error before the kill, skipping its
    /// cleanup.
    ExceptionPath {
        /// How the agent ended.
        agent_status: String,
    },
    /// Cause 3: SIGKILL reached only the agent; this process shared the agent's group,
    /// so a group kill would have taken it.
    UngroupedSigkill,
    /// Cause 4: the signal reached a shell (`sh -c`), and the shell's child lived on.
    ShellTrue {
        /// The shell that was signalled or died.
        shell_pid: i32,
    },
    /// Cause 5: it caught the signal and is shutting down slowly, still holding ports.
    SlowShutdown {
        /// The ports it still holds.
        ports: Vec<u16>,
    },
    /// It left the agent's session (`setsid`): out of reach of any group kill.
    NewSession,
    /// It left the agent's process group (`setpgid`): out of reach of a kill of the
    /// agent's group.
    NewProcessGroup,
    /// It daemonized (double fork): its original parent is gone and it runs in a
    /// session of its own.
    Daemonized,
    /// It ignores the signal (`SigIgn`): the plan's signal, when it reached it directly or
    /// through a parent that forwards it, did nothing; and for `SIGTERM`, every cleanup
    /// that sends SIGTERM (`terminate()`, `killpg(SIGTERM)`, `docker stop`, tree-kill)
    /// would do nothing either.
    SignalIgnored {
        /// The signal.
        signal: Signal,
    },
    /// The plan's signal reached it (directly, or through a parent that handles it and
    /// may forward it), it has a handler, and it did not exit in time.
    SignalCaught {
        /// The signal.
        signal: Signal,
    },
    /// It is stopped (SIGSTOP, SIGTSTP): it acts on no signal but SIGKILL until it is
    /// continued.
    Stopped,
    /// It blocks the signal (`SigBlk`): sent to it, the signal stays pending and is never
    /// acted on (launchers such as `unshare` block SIGTERM while they wait).
    SignalBlocked {
        /// The signal.
        signal: Signal,
    },
    /// The signal is pending (`SigPnd`/`ShdPnd`): it was sent to it, directly or
    /// forwarded, and it has not acted on it because it is stopped or blocks it.
    SignalPending {
        /// The signal.
        signal: Signal,
    },
    /// Its parent got the plan's signal, had a handler for it and exited on its own: it
    /// may well have passed the signal on (a forwarding agent, wrapper or shell `trap`),
    /// and this process outlived that for the reasons named before this one. Not cause 1:
    /// a cleanup ran, and it was not enough.
    ParentHandledSignal {
        /// The parent.
        parent: i32,
        /// How the parent ended, when the sentinel reaped it: `exit status 0`.
        parent_exit: Option<String>,
    },
    /// It exited, but its parent (which survived) never reaped it.
    Zombie {
        /// The parent that does not reap.
        parent: i32,
    },
    /// Its environment no longer carries `ORPHAN_CHECK_RUN`: it scrubbed it.
    EnvironmentScrubbed,
    /// It was started after the kill, by a surviving parent that restarts children.
    Respawned {
        /// The parent that started it.
        parent: i32,
    },
    /// Cause 6: it is PID 1 of a PID namespace (a container's init). The kernel drops
    /// every signal it has no handler for, and nothing forwards signals to its children.
    ContainerInit,
    /// Its parent survived (see the parent's escape) and keeps it alive.
    ParentSurvived {
        /// The surviving parent.
        parent: i32,
    },
    /// Its parent (the launcher the parent-death plan killed) died, and it did not
    /// follow: no `PR_SET_PDEATHSIG`, no poll of its parent pid.
    ParentDied {
        /// The parent that died.
        parent: i32,
    },
    /// The agent was a launcher that exited before it was ready (`setsid cmd`,
    /// `nohup cmd &`, `pm2 start`) and left this process running on purpose.
    LauncherExited {
        /// How the launcher ended: "exit status 0".
        agent_status: String,
    },
    /// Its stdin is a pipe with no writer left (the client is gone, or the harness
    /// closed it), so its reads return end of file, and it did not exit.
    StdinEofIgnored,
}

impl Escape {
    /// The number of the common cause this escape is (1–6), if it is one of them.
    pub fn cause(&self) -> Option<u8> {
        self.told().cause
    }

    /// One line toward the fix.
    pub fn hint(&self) -> &'static str {
        self.told().hint
    }

    /// What the report tells of this escape: one row per escape, so that its cause, the
    /// sentence that names it and its hint never drift apart.
    fn told(&self) -> Told {
        let told = |cause: Option<u8>, says: String, hint: &'static str| Told { cause, says, hint };
        let says = |s: &str| s.to_string();
        match self {
            Escape::NoCleanup => told(Some(1), says("no cleanup: its parent died without stopping it and it was reparented (cause 1)"), "stop children in `finally`/atexit and on SIGTERM; better, start them with start_new_session=True and killpg the group"),
            Escape::ExceptionPath { agent_status } => told(Some(2), format!("exception path: the agent exited on its own ({agent_status}), skipping cleanup (cause 2)"), "move terminate() into a `finally` block or a context manager (managed_subprocess)"),
            Escape::UngroupedSigkill => told(Some(3), says("SIGKILL of an ungrouped tree: only the agent was killed; it was in the agent's group, so a group kill would have reached it (cause 3)"), "SIGKILL runs no cleanup: kill the whole process group (kill -9 -PGID), or run the agent under a supervisor that owns its tree (cgroup, subreaper)"),
            Escape::ShellTrue { shell_pid } => told(Some(4), format!("shell=True: the signal reached the shell (pid {shell_pid}), not this child of it (cause 4)"), "avoid shell=True (use the exec form), `exec` the last command in scripts, or signal the whole process group"),
            Escape::SlowShutdown { ports } => told(Some(5), format!("slow graceful shutdown: caught the signal and still holds port {} (cause 5)", join(ports)), "after SIGTERM, wait a bounded time and then SIGKILL; wait for the port to be free before the next run"),
            Escape::NewSession => told(None, says("new session: it called setsid(), out of reach of group kills"), "a process that calls setsid() escapes every group kill: track the tree by cgroup or subreaper, or do not let it detach"),
            Escape::NewProcessGroup => told(None, says("new process group: it left the agent's group, out of reach of a kill of that group"), "a process in its own group escapes kill -PGID of the agent: kill its group too, or track the tree by cgroup"),
            Escape::Daemonized => told(None, says("daemonized: double fork into a session of its own"), "do not daemonize under an agent (run in the foreground); a cgroup or subreaper is the only way to find a double-forked daemon"),
            Escape::SignalIgnored { signal } => told(None, format!("{signal} ignored (SigIgn): no {signal}, sent by the plan or forwarded by a parent's cleanup, stops it"), "a process that ignores the stop signal needs SIGKILL after a grace period (managed_subprocess's timeout path, docker stop's SIGKILL)"),
            Escape::SignalCaught { signal } => told(None, format!("{signal} caught (SigCgt) without exiting in time"), "its handler did not exit: make it exit promptly, or follow with SIGKILL after a grace period"),
            Escape::Stopped => told(None, says("stopped: it acts on nothing but SIGKILL until continued"), "a stopped process ignores SIGTERM until continued: send SIGKILL, or SIGCONT after SIGTERM"),
            Escape::SignalBlocked { signal } => told(None, format!("{signal} blocked (SigBlk): sent to it, it stays pending"), "a process that blocks the stop signal never acts on it: SIGKILL after a grace period, or unblock it before waiting"),
            Escape::SignalPending { signal } => told(None, format!("{signal} pending (SigPnd): it was sent to it and not acted on"), "the signal arrived and waits: only SIGKILL (or SIGCONT for a stopped process) ends it now"),
            Escape::ParentHandledSignal { parent, parent_exit } => told(
                None,
                format!(
                    "its parent (pid {parent}) handled the signal and exited{}: whatever its handler sent did not stop this process",
                    parent_exit.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
                "forwarding the signal is not enough: after it, wait a bounded time for the child and SIGKILL its group before exiting",
            ),
            Escape::Zombie { parent } => told(None, format!("zombie: exited, but its parent (pid {parent}) survived and never reaped it"), "its parent survived and never reaps: kill the parent (the zombie goes with it) and reap children in your code"),
            Escape::EnvironmentScrubbed => told(None, says("environment scrubbed: ORPHAN_CHECK_RUN is gone from its environment"), "an environment-marker sweep (CI runners' tracking variables) cannot find it: track by cgroup or subreaper"),
            Escape::Respawned { parent } => told(None, format!("respawned: started after the kill by pid {parent}"), "a supervisor restarted it after the kill: stop the supervisor first, or kill the whole tree at once (cgroup.kill)"),
            Escape::ContainerInit => told(Some(6), says("PID 1 of a PID namespace: signals without a handler are dropped and none are forwarded to its children (cause 6)"), "run a real init as PID 1 (tini, dumb-init, docker run --init) that forwards signals and reaps, or install handlers for SIGTERM/SIGINT"),
            Escape::ParentSurvived { parent } => told(None, format!("its parent (pid {parent}) survived and keeps it"), "it goes when its parent goes: fix the parent's escape first"),
            Escape::ParentDied { parent } => told(None, format!("its parent (pid {parent}) was killed and it did not follow: no PR_SET_PDEATHSIG, no parent-pid poll"), "follow the parent: prctl(PR_SET_PDEATHSIG, SIGTERM) at start (then check getppid() against the parent you expect), or poll the parent pid and exit when it changes, as gunicorn's workers do"),
            Escape::LauncherExited { agent_status } => told(None, format!("daemonized by a launcher that exited at once ({agent_status}), before the agent was ready"), "a launcher that returns at once hands its server to nobody: run the server in the foreground under the caller, or stop it explicitly (its pid file, `pm2 stop`, `docker stop`)"),
            Escape::StdinEofIgnored => told(None, says("ignored end of file on stdin: its stdin pipe has no writer left, and it did not exit"), "a stdio server must exit when a read of stdin returns end of file (its client is gone): treat EOF as shutdown"),
        }
    }
}

/// One escape as the report tells it.
struct Told {
    /// The common cause (1–6) it is, if it is one.
    cause: Option<u8>,
    /// The sentence that names it (its `Display`).
    says: String,
    /// One line toward the fix.
    hint: &'static str,
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.told().says)
    }
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cleanup strategy people commonly use instead of a subreaper or cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cleanup {
    /// `kill -9 -PGID` of the agent's process group.
    GroupKill,
    /// Killing every process whose environment carries a marker variable.
    EnvMarkerSweep,
    /// Walking parent pids down from the agent (`ps --ppid`, psutil `children`).
    ParentWalk,
    /// Sending SIGTERM and waiting: `terminate()`, `killpg(SIGTERM)`, `docker stop`'s
    /// first signal, tree-kill's default.
    SigtermCleanup,
}

impl fmt::Display for Cleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cleanup::GroupKill => "a kill of the agent's process group",
            Cleanup::EnvMarkerSweep => "an environment-marker sweep",
            Cleanup::ParentWalk => "a parent-pid walk from the agent",
            Cleanup::SigtermCleanup => "a SIGTERM cleanup (terminate(), killpg(SIGTERM), docker stop, tree-kill) without a SIGKILL after it",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each escape.
    fn every_escape() -> Vec<Escape> {
        let status = || "exit status 1".to_string();
        vec![
            Escape::NoCleanup,
            Escape::ExceptionPath {
                agent_status: status(),
            },
            Escape::UngroupedSigkill,
            Escape::ShellTrue { shell_pid: 2 },
            Escape::SlowShutdown { ports: vec![80] },
            Escape::NewSession,
            Escape::NewProcessGroup,
            Escape::Daemonized,
            Escape::SignalIgnored {
                signal: Signal::Term,
            },
            Escape::SignalCaught {
                signal: Signal::Term,
            },
            Escape::Stopped,
            Escape::SignalBlocked {
                signal: Signal::Term,
            },
            Escape::SignalPending {
                signal: Signal::Term,
            },
            Escape::ParentHandledSignal {
                parent: 2,
                parent_exit: None,
            },
            Escape::Zombie { parent: 2 },
            Escape::EnvironmentScrubbed,
            Escape::Respawned { parent: 2 },
            Escape::ContainerInit,
            Escape::ParentSurvived { parent: 2 },
            Escape::ParentDied { parent: 2 },
            Escape::LauncherExited {
                agent_status: status(),
            },
            Escape::StdinEofIgnored,
        ]
    }

    #[test]
    fn each_escape_names_its_cause_exactly_when_it_is_one() {
        let mut causes = Vec::new();
        for e in every_escape() {
            let text = e.to_string();
            match e.cause() {
                Some(n) => {
                    assert!(text.ends_with(&format!("(cause {n})")), "{e:?}: {text}");
                    causes.push(n);
                }
                None => assert!(!text.contains("(cause"), "{e:?}: {text}"),
            }
            assert!(!e.hint().is_empty());
        }
        assert_eq!(causes, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_signal_escape_names_the_signal_in_text_and_json() {
        let e = Escape::SignalIgnored {
            signal: Signal::Hup,
        };
        assert_eq!(
            e.to_string(),
            "SIGHUP ignored (SigIgn): no SIGHUP, sent by the plan or forwarded by a parent's cleanup, stops it"
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "signal_ignored", "signal": "SIGHUP"})
        );
    }
}
