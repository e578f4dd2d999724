//! Every escape of one survivor, most decisive first, from its `/proc` status, the tree
//! before the kill and how its parent ended.
//!
//! Over 500 lines because nearly two thirds of it are its cases: the classifier is a
//! pure function of captured process facts, and, as for every pure classifier in this
//! crate, its tests sit inline with it, one per situation it tells apart.

use super::context::alive_pid;
use super::{Context, Escape};
use crate::procs::ProcessInfo;
use crate::signal::Signal;

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

/// Whether a process is a POSIX shell (what `shell=True` and `npm run` start).
fn is_shell(p: &ProcessInfo) -> bool {
    matches!(
        p.comm.as_str(),
        "sh" | "dash" | "bash" | "zsh" | "ash" | "busybox"
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::diagnosis::{missed_by, Cleanup};
    use crate::kill::KillPlan;

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
