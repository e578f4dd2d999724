//! Running a plan through the sentinel, and recording what was sent.

use std::time::{Duration, Instant};

use super::{KillPlan, Plan, PlanRecord, SentSignal};
use crate::procs;
use crate::sentinel::{Request, SentinelHandle};
use crate::signal::{Recipient, Signal, Target};
use crate::tracker::Tracker;

use super::verified::signal_verified;

/// What the endings that are not kills need from the scenario.
pub(crate) struct Ending {
    /// How long [`KillPlan::own_exit`] waits for the agent.
    pub exit_timeout: Duration,
    /// The harness's write end of the agent's stdin, when stdin is a pipe.
    pub stdin: Option<std::os::fd::OwnedFd>,
}

/// How long to wait for the sentinel to acknowledge a command. It answers in
/// microseconds; this only bounds a sentinel that is gone.
const REPLY_PATIENCE: Duration = Duration::from_secs(5);

/// Runs `plan` against the sentinel's child: the agent, its launcher
/// ([`KillPlan::parent_death`]), or the container's PID 1 (`container`).
pub(crate) fn execute(
    plan: &KillPlan,
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    container: bool,
    ending: &mut Ending,
) -> PlanRecord {
    let mut record = PlanRecord {
        agent_exited_before_kill: tracker.lock().agent_exit().is_some(),
        ..PlanRecord::default()
    };
    // In container mode the sentinel's child, which the pid plans reach, is PID 1.
    let pid_label = if container {
        Recipient::Pid1
    } else {
        Recipient::Agent
    };
    match plan.plan {
        Plan::Once { signal, target } => {
            let label = match target {
                Target::Agent => pid_label,
                Target::Group => Recipient::Group,
            };
            send(sentinel, tracker, agent, signal, target, label, &mut record);
        }
        // The launcher is the sentinel's child: the pid plan's target.
        Plan::ParentDeath => send(
            sentinel,
            tracker,
            agent,
            Signal::Kill,
            Target::Agent,
            Recipient::Launcher,
            &mut record,
        ),
        Plan::TermThenKill { grace } | Plan::ContainerStop { grace } => {
            send(
                sentinel,
                tracker,
                agent,
                Signal::Term,
                Target::Agent,
                pid_label,
                &mut record,
            );
            sigkill_after(grace, sentinel, tracker, agent, pid_label, &mut record);
        }
        Plan::OwnExit => wait_for_own_exit(sentinel, tracker, agent, ending, &mut record),
        Plan::CloseStdin { grace } => {
            // Dropping the harness's write end is the whole act: the agent (and whoever
            // shares that pipe) reads end of file.
            if ending.stdin.take().is_some() {
                record.stdin_closed_at_ms = Some(tracker.clock.now().as_secs_f64() * 1000.0);
            }
            if let Some(grace) = grace {
                sigkill_after(grace, sentinel, tracker, agent, pid_label, &mut record);
            }
        }
    }
    record
}

/// Up to `grace` for the agent to exit after the plan's first act, then SIGKILL to it.
fn sigkill_after(
    grace: Duration,
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    label: Recipient,
    record: &mut PlanRecord,
) {
    let exited = tracker
        .wait_until(Instant::now() + grace, |s| {
            s.agent_exit().is_some() || s.sentinel_gone
        })
        .agent_exit()
        .is_some();
    if exited {
        return;
    }
    send(
        sentinel,
        tracker,
        agent,
        Signal::Kill,
        Target::Agent,
        label,
        record,
    );
    // The sentinel's answer decides, not our clock: on a loaded machine the agent may
    // have died of the first signal while this thread waited for the CPU, and then the
    // SIGKILL found it already reaped.
    record.agent_needed_sigkill = record
        .sent
        .last()
        .is_some_and(|s| s.signal == Signal::Kill && s.delivered);
}

/// Waits for the agent to exit by itself, up to the exit timeout, passing on every
/// signal a [`SignalForwarder`](super::SignalForwarder) hands over meanwhile.
fn wait_for_own_exit(
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    ending: &Ending,
    record: &mut PlanRecord,
) {
    let deadline = Instant::now() + ending.exit_timeout;
    loop {
        let mut state = tracker.wait_until(deadline, |s| {
            s.agent_exit().is_some() || s.sentinel_gone || !s.forward.is_empty()
        });
        let pending: Vec<Signal> = state.forward.drain(..).collect();
        let done = state.agent_exit().is_some() || state.sentinel_gone;
        drop(state);
        for signal in pending {
            // To the agent's group, as the runner's group signal or a terminal's Ctrl-C
            // would have reached it without a wrapper (member by member once it is gone).
            send(
                sentinel,
                tracker,
                agent,
                signal,
                Target::Group,
                Recipient::Forwarded,
                record,
            );
        }
        if done {
            return;
        }
        if Instant::now() >= deadline {
            record.did_not_finish = true;
            return;
        }
    }
}

fn send(
    sentinel: &SentinelHandle,
    tracker: &Tracker,
    agent: i32,
    signal: Signal,
    target: Target,
    label: Recipient,
    record: &mut PlanRecord,
) {
    // Every command gets exactly one `Signalled` reply: wait for the next one.
    let before = tracker.lock().signals.len();
    let command = match target {
        Target::Agent => Request::SignalAgent(signal.as_raw()),
        Target::Group => Request::SignalGroup(signal.as_raw()),
    };
    if sentinel.send(command).is_err() {
        return;
    }
    let state = tracker.wait_until(Instant::now() + REPLY_PATIENCE, |s| {
        s.signals.len() > before || s.sentinel_gone
    });
    let Some(sent) = state.signals.get(before).copied() else {
        return;
    };
    drop(state);
    let at_ms = sent.at.as_secs_f64() * 1000.0;
    record.sent.push(SentSignal {
        signal,
        target: label,
        to: sent.target,
        at_ms,
        delivered: sent.errno == 0,
    });
    if target == Target::Group && sent.errno == libc::ESRCH {
        // The agent was already reaped, so its pid no longer pins the group id. Signal
        // whoever is still in the group, one verified member at a time.
        for member in procs::subtree(sentinel.pid())
            .into_iter()
            .filter(|p| p.pgid == agent)
        {
            let delivered = signal_verified(&member, sentinel.pid(), signal);
            record.sent.push(SentSignal {
                signal,
                target: Recipient::Member,
                to: member.pid,
                at_ms: tracker.clock.now().as_secs_f64() * 1000.0,
                delivered,
            });
        }
    }
}
