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

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

use crate::kill::KillPlan;
use crate::procs::ProcessInfo;
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

/// What the diagnosis knows about the scenario as a whole, indexed so that diagnosing
/// every survivor of a tree of thousands stays linear.
pub(crate) struct Context<'a> {
    plan: &'a KillPlan,
    /// The agent as it was at the start.
    agent: &'a ProcessInfo,
    /// The tree just before the kill, by pid.
    before_kill: HashMap<i32, &'a ProcessInfo>,
    /// The parent of everything alive now that is not a zombie.
    alive: HashMap<i32, i32>,
    /// The sentinel's pid (the subreaper every orphan is reparented to).
    sentinel: i32,
    /// How the agent ended when it exited on its own before the kill, with an error.
    agent_failed_before_kill: Option<String>,
    /// How the agent ended when it exited before it was ready (a launcher).
    launcher_exit: Option<String>,
    /// Survivors whose stdin pipe has no writer left.
    stdin_at_eof: std::collections::HashSet<i32>,
    /// How each process the sentinel reaped ended (raw wait status), by pid.
    ended: HashMap<i32, i32>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        plan: &'a KillPlan,
        agent: &'a ProcessInfo,
        before_kill: &'a [ProcessInfo],
        alive: &[ProcessInfo],
        sentinel: i32,
        agent_failed_before_kill: Option<String>,
        ended: HashMap<i32, i32>,
    ) -> Self {
        Context {
            plan,
            agent,
            before_kill: before_kill.iter().map(|p| (p.pid, p)).collect(),
            alive: alive
                .iter()
                .filter(|a| !a.is_zombie())
                .map(|a| (a.pid, a.ppid))
                .collect(),
            sentinel,
            agent_failed_before_kill,
            ended,
            launcher_exit: None,
            stdin_at_eof: Default::default(),
        }
    }

    /// The agent exited before it was ready, this way: its survivors were left by a
    /// launcher.
    pub(crate) fn launcher_exited(mut self, status: Option<String>) -> Self {
        self.launcher_exit = status;
        self
    }

    /// These survivors read a stdin pipe that has no writer left.
    pub(crate) fn stdin_at_eof(mut self, pids: std::collections::HashSet<i32>) -> Self {
        self.stdin_at_eof = pids;
        self
    }

    /// Whether the plan's signal went to `p` itself: it is the agent, or the plan aims at
    /// the agent's group and `p` is in it. The agent was started as the leader of its own
    /// group, so that group's id is the agent's pid, whatever group the agent moved to.
    fn reached(&self, p: &ProcessInfo) -> bool {
        p.pid == self.agent.pid || (self.plan.targets_group() && p.pgid == self.agent.pid)
    }
}

/// The escapes of one survivor: every reason that applies, most decisive first.
///
/// The order: what keeps it alive whatever is sent (a zombie's parent, a restart, being
/// stopped, PID 1 of a namespace, a signal that arrived and waits); what it did with the
/// plan's signal, when that signal reached it directly or through a parent that handles
/// it (and so may have forwarded it); how it left the agent's session or group; how it
/// lost its parent; and last, what it would do with a SIGTERM cleanup that was not sent.
pub(crate) fn escapes(
    p: &ProcessInfo,
    ports: &[u16],
    marker: Option<bool>,
    cx: &Context<'_>,
) -> Vec<Escape> {
    let mut out = Vec::new();
    let original = cx
        .before_kill
        .get(&p.pid)
        .copied()
        .filter(|b| b.same_process(p));
    let is_agent = p.pid == cx.agent.pid;
    // Its parent as it was at readiness (the agent is not in `before_kill` when it was
    // read only at its start).
    let parent = original.and_then(|o| {
        cx.before_kill
            .get(&o.ppid)
            .copied()
            .or((o.ppid == cx.agent.pid).then_some(cx.agent))
    });

    if p.is_zombie() {
        out.push(Escape::Zombie { parent: p.ppid });
        return out;
    }
    if original.is_none() && !is_agent && p.ppid != cx.sentinel {
        out.push(Escape::Respawned { parent: p.ppid });
    }
    if p.is_stopped() {
        out.push(Escape::Stopped);
    }
    if p.pid_in_namespace == Some(1) {
        out.push(Escape::ContainerInit);
    }
    if cx.stdin_at_eof.contains(&p.pid) {
        out.push(Escape::StdinEofIgnored);
    }

    // The signals that matter: the plan's (unless SIGKILL, which nothing survives), and
    // SIGTERM, what nearly every cleanup sends.
    let signal = cx.plan.first_signal();
    let mut stop_signals = Vec::new();
    if signal != Signal::Kill {
        stop_signals.push(signal);
    }
    if !stop_signals.contains(&Signal::Term) {
        stop_signals.push(Signal::Term);
    }
    for &s in &stop_signals {
        if p.has_pending(s.as_raw()) && (p.is_stopped() || p.blocks(s.as_raw())) {
            out.push(Escape::SignalPending { signal: s });
        }
    }

    // Did the plan's signal reach it, directly, or through a parent that got it and has
    // a handler for it (an agent, wrapper or shell `trap` that forwards it)?
    let direct = signal != Signal::Kill && cx.reached(p);
    let forwarded = signal != Signal::Kill
        && !direct
        && parent.is_some_and(|pp| cx.reached(pp) && pp.catches(signal.as_raw()));
    if direct || forwarded {
        if let Some(refused) = refusal(p, signal) {
            out.push(refused);
        } else if p.catches(signal.as_raw()) {
            if ports.is_empty() {
                out.push(Escape::SignalCaught { signal });
            } else {
                out.push(Escape::SlowShutdown {
                    ports: ports.to_vec(),
                });
            }
        }
    }
    // Something above explains why a signal that reached it did not end it.
    let defeated = out.iter().any(|e| {
        matches!(
            e,
            Escape::Stopped
                | Escape::ContainerInit
                | Escape::SignalIgnored { .. }
                | Escape::SignalBlocked { .. }
                | Escape::SignalCaught { .. }
                | Escape::SlowShutdown { .. }
        )
    });

    let agent_group = cx.agent.pid;
    if p.sid != cx.agent.sid {
        // A daemon runs in a session of its own and lost its parent on purpose: either it
        // was already the sentinel's child before the kill (the middle process of a
        // double fork exited), or its parent, not the agent, is gone.
        let orphaned_before_kill = !is_agent && original.is_some_and(|o| o.ppid == cx.sentinel);
        let lost_its_launcher = original.is_some_and(|o| {
            o.ppid != cx.agent.pid && o.ppid != cx.sentinel && !alive_pid(cx, o.ppid)
        });
        if (orphaned_before_kill || lost_its_launcher) && cx.launcher_exit.is_none() {
            out.push(Escape::Daemonized);
        } else {
            out.push(Escape::NewSession);
        }
    } else if p.pgid != agent_group {
        out.push(Escape::NewProcessGroup);
    }

    if marker == Some(false) {
        out.push(Escape::EnvironmentScrubbed);
    }

    if !is_agent {
        // Is its parent gone, and since when? A process already the sentinel's child at
        // readiness was orphaned by its own tree before the kill (the agent exited on its
        // own, or a middle process quit); one whose parent died since, or first seen only
        // now as the sentinel's child, was orphaned by the kill.
        let orphaned_before_kill = original.is_some_and(|o| o.ppid == cx.sentinel);
        let orphaned_by_kill = match original {
            Some(o) => o.ppid != cx.sentinel && !alive_pid(cx, o.ppid),
            None => p.ppid == cx.sentinel,
        };
        let daemonized = out.iter().any(|e| matches!(e, Escape::Daemonized));
        if let Some(status) = cx.launcher_exit.as_ref().filter(|_| orphaned_before_kill) {
            // Not cause 1, 2 or 3: the launcher's whole job was to leave it running.
            out.push(Escape::LauncherExited {
                agent_status: status.clone(),
            });
        } else if orphaned_before_kill && !daemonized {
            match &cx.agent_failed_before_kill {
                Some(status) => out.push(Escape::ExceptionPath {
                    agent_status: status.clone(),
                }),
                None => out.push(Escape::NoCleanup),
            }
        } else if orphaned_by_kill
            && cx.plan.needs_launcher()
            && original.is_some_and(|o| o.ppid == cx.agent.pid)
        {
            // The parent-death plan: the launcher (the diagnosis's "agent") was killed.
            out.push(Escape::ParentDied {
                parent: cx.agent.pid,
            });
        } else if orphaned_by_kill {
            // How the parent ended, when the sentinel reaped it: dying of the signal
            // itself means no handler ran; an exit status means one did.
            let parent_end = parent.and_then(|pp| cx.ended.get(&pp.pid).copied());
            let parent_died_of_signal = parent_end
                .is_some_and(|st| libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == signal.as_raw());
            if forwarded && defeated && !parent_died_of_signal {
                out.push(Escape::ParentHandledSignal {
                    parent: parent.map_or(p.ppid, |pp| pp.pid),
                    parent_exit: parent_end.map(crate::exit_status::describe_status),
                });
            } else if let Some(parent) = parent.filter(|pp| is_shell(pp)) {
                out.push(Escape::ShellTrue {
                    shell_pid: parent.pid,
                });
            } else if let Some(status) = &cx.agent_failed_before_kill {
                out.push(Escape::ExceptionPath {
                    agent_status: status.clone(),
                });
            } else if cx.plan.opening_signal() == Some(Signal::Kill)
                && !cx.plan.targets_group()
                && p.pgid == agent_group
            {
                out.push(Escape::UngroupedSigkill);
            } else if !daemonized {
                out.push(Escape::NoCleanup);
            }
        }
    }

    // What it would do with a SIGTERM nobody sent it: a cleanup that only sends SIGTERM
    // would fail on it the same way.
    for &s in &stop_signals {
        if (direct || forwarded) && s == signal {
            continue;
        }
        out.extend(refusal(p, s));
    }

    let respawned = out.iter().any(|e| matches!(e, Escape::Respawned { .. }));
    if !respawned && alive_pid(cx, p.ppid) && p.ppid != cx.sentinel {
        out.push(Escape::ParentSurvived { parent: p.ppid });
    }
    out
}

/// How `p` refuses `signal` whoever sends it: it ignores it, or it blocks it.
fn refusal(p: &ProcessInfo, signal: Signal) -> Option<Escape> {
    if p.ignores(signal.as_raw()) {
        Some(Escape::SignalIgnored { signal })
    } else if p.blocks(signal.as_raw()) {
        Some(Escape::SignalBlocked { signal })
    } else {
        None
    }
}

/// Which common cleanups would have missed this survivor.
pub(crate) fn missed_by(p: &ProcessInfo, marker: Option<bool>, cx: &Context<'_>) -> Vec<Cleanup> {
    let mut out = Vec::new();
    if p.pgid != cx.agent.pid {
        out.push(Cleanup::GroupKill);
    }
    if marker == Some(false) {
        out.push(Cleanup::EnvMarkerSweep);
    }
    // A walk from the agent finds only processes whose parent chain still reaches it.
    if p.pid != cx.agent.pid && !chain_reaches(p, cx.agent.pid, &cx.alive) {
        out.push(Cleanup::ParentWalk);
    }
    if !p.is_zombie() && (p.ignores(libc::SIGTERM) || p.blocks(libc::SIGTERM) || p.is_stopped()) {
        out.push(Cleanup::SigtermCleanup);
    }
    out
}

fn chain_reaches(p: &ProcessInfo, ancestor: i32, alive: &HashMap<i32, i32>) -> bool {
    let mut ppid = p.ppid;
    for _ in 0..alive.len() + 1 {
        if ppid == ancestor {
            return true;
        }
        match alive.get(&ppid) {
            Some(&grandparent) => ppid = grandparent,
            None => return false,
        }
    }
    false
}

fn alive_pid(cx: &Context<'_>, pid: i32) -> bool {
    cx.alive.contains_key(&pid)
}

/// Whether a process is a POSIX shell (what `shell=True` and `npm run` start).
pub(crate) fn is_shell(p: &ProcessInfo) -> bool {
    matches!(
        p.comm.as_str(),
        "sh" | "dash" | "bash" | "zsh" | "ash" | "busybox"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, ppid: i32, pgid: i32, sid: i32, comm: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            pgid,
            sid,
            state: 'S',
            comm: comm.into(),
            cmdline: vec![comm.into()],
            start_ticks: pid as u64,
            uid: 0,
            sig_ignored: 0,
            sig_caught: 0,
            sig_blocked: 0,
            sig_pending: 0,
            pid_in_namespace: None,
        }
    }

    const SENTINEL: i32 = 10;

    fn cx<'a>(
        plan: &'a KillPlan,
        agent: &'a ProcessInfo,
        before: &'a [ProcessInfo],
        alive: &'a [ProcessInfo],
    ) -> Context<'a> {
        Context::new(plan, agent, before, alive, SENTINEL, None, HashMap::new())
    }

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

    #[test]
    fn a_child_of_a_killed_shell_is_shell_true() {
        let agent = proc(11, SENTINEL, 11, SENTINEL, "sh");
        let child = proc(12, 11, 11, SENTINEL, "listener");
        let before = [agent.clone(), child.clone()];
        let mut now = child.clone();
        now.ppid = SENTINEL;
        let alive = [now.clone()];
        let plan = KillPlan::sigterm();
        let got = escapes(&now, &[], Some(true), &cx(&plan, &agent, &before, &alive));
        assert_eq!(got, [Escape::ShellTrue { shell_pid: 11 }]);
        assert_eq!(
            missed_by(&now, Some(true), &cx(&plan, &agent, &before, &alive)),
            [Cleanup::ParentWalk]
        );
    }

    #[test]
    fn sigkill_of_the_agent_leaves_its_grouped_child_as_cause_3() {
        let agent = proc(11, SENTINEL, 11, SENTINEL, "python3");
        let child = proc(12, 11, 11, SENTINEL, "listener");
        let before = [agent.clone(), child.clone()];
        let mut now = child;
        now.ppid = SENTINEL;
        let alive = [now.clone()];
        let plan = KillPlan::sigkill();
        let got = escapes(&now, &[], Some(true), &cx(&plan, &agent, &before, &alive));
        assert_eq!(got, [Escape::UngroupedSigkill]);
        assert_eq!(got[0].cause(), Some(3));
    }

    #[test]
    fn a_setsid_child_escapes_a_group_kill() {
        let agent = proc(11, SENTINEL, 11, SENTINEL, "setsid-escaper");
        let child = proc(12, 11, 12, 12, "setsid-escaper");
        let before = [agent.clone(), child.clone()];
        let mut now = child;
        now.ppid = SENTINEL;
        let alive = [now.clone()];
        let plan = KillPlan::sigkill_group();
        let c = cx(&plan, &agent, &before, &alive);
        let got = escapes(&now, &[], Some(true), &c);
        assert_eq!(got, [Escape::NewSession, Escape::NoCleanup]);
        assert_eq!(
            missed_by(&now, Some(true), &c),
            [Cleanup::GroupKill, Cleanup::ParentWalk]
        );
    }

    /// The escapes of an agent that survived alone, holding port 4000.
    fn lone_agent(agent: &ProcessInfo, plan: &KillPlan) -> (Vec<Escape>, Vec<Cleanup>) {
        let before = [agent.clone()];
        let alive = [agent.clone()];
        let c = cx(plan, agent, &before, &alive);
        (
            escapes(agent, &[4000], Some(true), &c),
            missed_by(agent, Some(true), &c),
        )
    }

    #[test]
    fn an_ignored_sigterm_is_read_from_sigign() {
        let mut agent = proc(11, SENTINEL, 11, SENTINEL, "sigterm-ignorer");
        agent.sig_ignored = 1 << (libc::SIGTERM - 1);
        let (got, missed) = lone_agent(&agent, &KillPlan::sigterm());
        assert_eq!(
            got,
            [Escape::SignalIgnored {
                signal: Signal::Term
            }]
        );
        assert_eq!(missed, [Cleanup::SigtermCleanup]);
    }

    #[test]
    fn a_caught_sigterm_with_a_port_is_a_slow_shutdown() {
        let mut agent = proc(11, SENTINEL, 11, SENTINEL, "slow-port-holde");
        agent.sig_caught = 1 << (libc::SIGTERM - 1);
        let (got, _) = lone_agent(&agent, &KillPlan::sigterm());
        assert_eq!(got, [Escape::SlowShutdown { ports: vec![4000] }]);
        assert_eq!(got[0].cause(), Some(5));
        // The same handler under SIGKILL means nothing: SIGKILL is never caught.
        let (got, _) = lone_agent(&agent, &KillPlan::sigkill());
        assert!(got.is_empty());
    }

    #[test]
    fn zombies_and_scrubbed_environments() {
        let agent = proc(11, SENTINEL, 11, SENTINEL, "zombie-maker");
        let mut z = proc(12, 11, 11, SENTINEL, "zombie-maker");
        z.state = 'Z';
        let before = [agent.clone(), z.clone()];
        let alive = [agent.clone(), z.clone()];
        let plan = KillPlan::sigterm();
        let c = cx(&plan, &agent, &before, &alive);
        assert_eq!(escapes(&z, &[], None, &c), [Escape::Zombie { parent: 11 }]);
        let mut scrubbed = proc(13, 11, 11, SENTINEL, "env-scrubber");
        scrubbed.ppid = 11;
        let before = [agent.clone(), scrubbed.clone()];
        let alive = [agent.clone(), scrubbed.clone()];
        let c = cx(&plan, &agent, &before, &alive);
        // Its parent, the agent, is alive too: both reasons apply.
        assert_eq!(
            escapes(&scrubbed, &[], Some(false), &c),
            [
                Escape::EnvironmentScrubbed,
                Escape::ParentSurvived { parent: 11 }
            ]
        );
        assert_eq!(
            missed_by(&scrubbed, Some(false), &c),
            [Cleanup::EnvMarkerSweep]
        );
    }

    const TERM: u64 = 1 << (libc::SIGTERM - 1);

    /// The agent (pid 11, its group's leader) and its child 12 in its group, as at
    /// readiness; `ended` says how the agent ended when it is gone.
    fn forwarding_case(
        agent: &ProcessInfo,
        child: &ProcessInfo,
        plan: &KillPlan,
        agent_alive: bool,
        ended: Option<i32>,
    ) -> (Vec<Escape>, Vec<Cleanup>) {
        let before = [agent.clone(), child.clone()];
        let mut now = child.clone();
        if !agent_alive {
            now.ppid = SENTINEL;
        }
        let alive: Vec<ProcessInfo> = if agent_alive {
            vec![agent.clone(), now.clone()]
        } else {
            vec![now.clone()]
        };
        let ended: HashMap<i32, i32> = ended.map(|st| (agent.pid, st)).into_iter().collect();
        let c = Context::new(plan, agent, &before, &alive, SENTINEL, None, ended);
        (
            escapes(&now, &[], Some(true), &c),
            missed_by(&now, Some(true), &c),
        )
    }

    #[test]
    fn a_sigterm_forwarded_by_the_agent_to_a_child_that_ignores_it_is_not_cause_1() {
        // The agent has a SIGTERM handler that forwards it to the child and exits 0; the
        // child ignores SIGTERM. The agent did clean up: the child's disposition is why
        // it lives, and every SIGTERM cleanup would fail the same way.
        let mut agent = proc(11, SENTINEL, 11, SENTINEL, "python3");
        agent.sig_caught = TERM;
        let mut child = proc(12, 11, 11, SENTINEL, "python3");
        child.sig_ignored = TERM;
        let (got, missed) = forwarding_case(&agent, &child, &KillPlan::sigterm(), false, Some(0));
        assert_eq!(
            got,
            [
                Escape::SignalIgnored {
                    signal: Signal::Term
                },
                Escape::ParentHandledSignal {
                    parent: 11,
                    parent_exit: Some("exit status 0".into())
                }
            ]
        );
        assert!(got.iter().all(|e| e.cause() != Some(1)), "{got:?}");
        assert_eq!(missed, [Cleanup::ParentWalk, Cleanup::SigtermCleanup]);
    }

    #[test]
    fn an_agent_without_a_handler_is_cause_1_and_the_ignored_sigterm_comes_second() {
        // The agent died of SIGTERM's default action: nothing was forwarded, so cause 1
        // decides; that the child ignores SIGTERM says a SIGTERM cleanup would not have
        // been enough either.
        let agent = proc(11, SENTINEL, 11, SENTINEL, "python3");
        let mut child = proc(12, 11, 11, SENTINEL, "python3");
        child.sig_ignored = TERM;
        let (got, _) = forwarding_case(
            &agent,
            &child,
            &KillPlan::sigterm(),
            false,
            Some(libc::SIGTERM),
        );
        assert_eq!(
            got,
            [
                Escape::NoCleanup,
                Escape::SignalIgnored {
                    signal: Signal::Term
                }
            ]
        );
        // Under SIGKILL of the agent alone, cause 3 decides.
        let (got, _) = forwarding_case(
            &agent,
            &child,
            &KillPlan::sigkill(),
            false,
            Some(libc::SIGKILL),
        );
        assert_eq!(
            got,
            [
                Escape::UngroupedSigkill,
                Escape::SignalIgnored {
                    signal: Signal::Term
                }
            ]
        );
    }

    #[test]
    fn a_shell_that_traps_and_forwards_is_not_shell_true() {
        let mut child = proc(12, 11, 11, SENTINEL, "sigterm-ignorer");
        child.sig_ignored = TERM;
        // `trap 'kill -TERM $c; exit 0' TERM`: the shell handles SIGTERM and exits 0.
        let mut trapping = proc(11, SENTINEL, 11, SENTINEL, "sh");
        trapping.sig_caught = TERM;
        let (got, _) = forwarding_case(&trapping, &child, &KillPlan::sigterm(), false, Some(0));
        assert_eq!(
            got,
            [
                Escape::SignalIgnored {
                    signal: Signal::Term
                },
                Escape::ParentHandledSignal {
                    parent: 11,
                    parent_exit: Some("exit status 0".into())
                }
            ]
        );
        // A shell without a trap dies of SIGTERM and forwards nothing: cause 4 first.
        let plain = proc(11, SENTINEL, 11, SENTINEL, "sh");
        let (got, _) = forwarding_case(
            &plain,
            &child,
            &KillPlan::sigterm(),
            false,
            Some(libc::SIGTERM),
        );
        assert_eq!(
            got,
            [
                Escape::ShellTrue { shell_pid: 11 },
                Escape::SignalIgnored {
                    signal: Signal::Term
                }
            ]
        );
    }

    #[test]
    fn a_wrapper_that_forwards_and_waits_keeps_a_child_that_ignores_the_signal() {
        // tini-like: the wrapper handles SIGTERM, forwards it and waits for the child,
        // which ignores it; both live.
        let mut wrapper = proc(11, SENTINEL, 11, SENTINEL, "agent");
        wrapper.sig_caught = TERM;
        let mut child = proc(12, 11, 11, SENTINEL, "sigterm-ignorer");
        child.sig_ignored = TERM;
        let (got, _) = forwarding_case(&wrapper, &child, &KillPlan::sigterm(), true, None);
        assert_eq!(
            got,
            [
                Escape::SignalIgnored {
                    signal: Signal::Term
                },
                Escape::ParentSurvived { parent: 11 }
            ]
        );
    }

    #[test]
    fn a_forwarded_signal_that_waits_is_read_from_the_pending_and_blocked_masks() {
        let mut agent = proc(11, SENTINEL, 11, SENTINEL, "python3");
        agent.sig_caught = TERM;
        // A stopped child: the forwarded SIGTERM is pending.
        let mut stopped = proc(12, 11, 11, SENTINEL, "stopped-child");
        stopped.state = 'T';
        stopped.sig_pending = TERM;
        let (got, missed) = forwarding_case(&agent, &stopped, &KillPlan::sigterm(), false, Some(0));
        assert_eq!(
            got,
            [
                Escape::Stopped,
                Escape::SignalPending {
                    signal: Signal::Term
                },
                Escape::ParentHandledSignal {
                    parent: 11,
                    parent_exit: Some("exit status 0".into())
                }
            ]
        );
        assert!(missed.contains(&Cleanup::SigtermCleanup));
        // A child that blocks SIGTERM (as `unshare` does while it waits).
        let mut blocking = proc(12, 11, 11, SENTINEL, "unshare");
        blocking.sig_blocked = TERM;
        blocking.sig_pending = TERM;
        let (got, _) = forwarding_case(&agent, &blocking, &KillPlan::sigterm(), false, Some(0));
        assert_eq!(
            got,
            [
                Escape::SignalPending {
                    signal: Signal::Term
                },
                Escape::SignalBlocked {
                    signal: Signal::Term
                },
                Escape::ParentHandledSignal {
                    parent: 11,
                    parent_exit: Some("exit status 0".into())
                }
            ]
        );
    }

    #[test]
    fn a_forwarded_sigterm_caught_by_a_server_holding_its_port_is_cause_5() {
        // The article's cause 5: the agent's handler calls terminate() and exits; the
        // server catches SIGTERM and keeps its port through a slow shutdown.
        let mut agent = proc(11, SENTINEL, 11, SENTINEL, "python3");
        agent.sig_caught = TERM;
        let mut server = proc(12, 11, 11, SENTINEL, "python3");
        server.sig_caught = TERM;
        let before = [agent.clone(), server.clone()];
        let mut now = server.clone();
        now.ppid = SENTINEL;
        let alive = [now.clone()];
        let plan = KillPlan::sigterm();
        let ended = HashMap::from([(11, 143 << 8)]);
        let c = Context::new(&plan, &agent, &before, &alive, SENTINEL, None, ended);
        let got = escapes(&now, &[3000], Some(true), &c);
        assert_eq!(
            got,
            [
                Escape::SlowShutdown { ports: vec![3000] },
                Escape::ParentHandledSignal {
                    parent: 11,
                    parent_exit: Some("exit status 143".into())
                }
            ]
        );
        assert_eq!(got[0].cause(), Some(5));
    }
}
