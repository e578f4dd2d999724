//! One look at what the report shows: the tree (every survivor, diagnosed), every
//! watched port, every watched directory. Verdicts look at the part they judge, the
//! report at all of it.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use super::Outcome;
use crate::diagnosis::{self, Context};
use crate::exit_status::describe_status;
use crate::files::{self, FileChange};
use crate::pipes;
use crate::ports::{self, Listening, PortVerdict};
use crate::procs::{self, FdLinks, ProcessInfo};
use crate::report::Survivor;

/// Survivors whose ports and environment are read (the rest are listed and diagnosed
/// from what the tree walk read).
const DETAIL_LIMIT: usize = 1000;

/// What one look saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Look {
    /// Descendants alive, diagnosed.
    pub survivors: Vec<Survivor>,
    /// Every watched port (and the port a verdict asked about), by port number.
    pub ports: Vec<PortVerdict>,
    /// Files written after the kill under every watched directory.
    pub files: Vec<FileChange>,
}

impl Outcome {
    /// Looks at everything now. A verdict passes what it has just seen (its survivors,
    /// its ports), which the look takes as they are instead of looking again, so that a
    /// failure's report shows what failed it.
    pub(super) fn look(&self, survivors: Option<Vec<Survivor>>, seen: Vec<PortVerdict>) -> Look {
        let survivors = survivors.unwrap_or_else(|| self.survivors_now());
        let unseen: Vec<u16> = self
            .run
            .watched_ports
            .iter()
            .copied()
            .filter(|&p| !seen.iter().any(|v| v.port == p))
            .collect();
        let mut ports = seen;
        // A zero deadline is one look, now.
        ports.extend(
            unseen
                .into_iter()
                .map(|p| self.port_verdict(p, Duration::ZERO)),
        );
        ports.sort_by_key(|p| p.port);
        Look {
            survivors,
            ports,
            files: self.files_now(),
        }
    }

    /// The survivors now: none once the sentinel has reported its tree empty.
    fn survivors_now(&self) -> Vec<Survivor> {
        if self.live.tracker.lock().empty_at.is_some() {
            Vec::new()
        } else {
            self.snapshot_survivors()
        }
    }

    /// Files written after the kill under every watched directory, now.
    fn files_now(&self) -> Vec<FileChange> {
        let roots = self.live.dirs.roots();
        let mut out: Vec<FileChange> = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            // A directory watched twice, or inside another watched one, is listed once.
            let covered = roots[..i].iter().any(|r| root.starts_with(r))
                || roots[i + 1..]
                    .iter()
                    .any(|r| root.starts_with(r) && r != root);
            if !covered {
                out.extend(self.changes_under(root, root));
            }
        }
        out
    }

    /// Files under `dir` (inside the watched `root`) written after the kill, with the
    /// survivors that likely wrote them.
    pub(super) fn changes_under(&self, dir: &Path, root: &Path) -> Vec<FileChange> {
        let alive = procs::subtree_pids(self.live.sentinel.pid());
        let mut changes = self.live.dirs.changes_under(dir);
        for c in &mut changes {
            c.writers = files::likely_writers(&c.path, root, &alive);
        }
        changes
    }

    /// True when the sentinel is gone without having reported its tree empty.
    pub(super) fn lost_track(&self) -> bool {
        let (empty, gone) = {
            let state = self.live.tracker.lock();
            (state.empty_at.is_some(), state.sentinel_gone)
        };
        // The sentinel is our unreaped child until the outcome drops: its pid is its own,
        // and so is its pidfd, readable once it has exited.
        let sentinel = &self.live.sentinel;
        let dead = || {
            sentinel
                .has_exited()
                .unwrap_or_else(|| ProcessInfo::read(sentinel.pid()).is_none_or(|p| p.is_zombie()))
        };
        !empty && (gone || dead())
    }

    /// The survivors now, diagnosed.
    pub(super) fn snapshot_survivors(&self) -> Vec<Survivor> {
        let sentinel = self.live.sentinel.pid();
        let run = &self.run;
        let mut alive: Vec<ProcessInfo> = procs::subtree(sentinel)
            .into_iter()
            // A zombie child of the sentinel is a process the sentinel is reaping now, and
            // a process with SIGKILL pending is dying: neither survived.
            .filter(|p| !(p.is_being_killed() || p.is_zombie() && p.ppid == sentinel))
            .collect();
        if self.lost_track() {
            // The sentinel's orphans went to init: only the cgroup and the marker find them.
            for p in crate::lost::find(&run.run_id, self.live.cgroup.as_ref()) {
                if !p.is_being_killed() && !alive.iter().any(|a| a.pid == p.pid) {
                    alive.push(p);
                }
            }
        }
        if let Some(cg) = &self.live.cgroup {
            // The cgroup also sees what left the tree by other means; add what the walk
            // missed (nothing, while the sentinel lives).
            for pid in cg.members() {
                if !alive.iter().any(|p| p.pid == pid) {
                    if let Some(info) = ProcessInfo::read(pid) {
                        alive.push(info);
                    }
                }
            }
        }
        // Each detailed survivor's descriptors, read once for its ports, the agent's
        // pipes it holds, its stdin and the pipes it writes (a zombie has none left).
        let links: HashMap<i32, FdLinks> = alive
            .iter()
            .take(DETAIL_LIMIT)
            .filter(|p| !p.is_zombie())
            .map(|p| (p.pid, FdLinks::read(p.pid)))
            .collect();
        // The LISTEN table only when one of them holds a socket: without one, no
        // survivor can be listening.
        let any_socket = links
            .values()
            .any(|l| !ports::socket_inodes_in(l).is_empty());
        let listening = if any_socket {
            Listening::read().unwrap_or_default()
        } else {
            Listening::default()
        };
        let now = self.live.tracker.clock.now();
        let agent_failed = {
            let state = self.live.tracker.lock();
            // Before the kill, or as the ending itself (its own exit, unprompted).
            let own = run.plan.is_own_exit() && run.plan_record.sent.is_empty();
            state
                .agent_exit()
                .filter(|e| (e.at <= run.kill_started_at || own) && e.status != 0)
                .map(|e| describe_status(e.status))
        };
        let launcher = self
            .exited_before_ready()
            .then(|| {
                self.live
                    .tracker
                    .lock()
                    .agent_exit()
                    .map(|e| describe_status(e.status))
            })
            .flatten();
        let stdin_at_eof = self.stdin_at_eof(&alive, &links);
        // The diagnosis reasons about the process the plan signalled (the group leader).
        // How each reaped process ended: a parent that died of the signal ran no handler.
        let ended: HashMap<i32, i32> = self
            .live
            .tracker
            .lock()
            .reaped
            .iter()
            .map(|r| (r.pid, r.status))
            .collect();
        let cx = Context::new(
            &run.plan,
            &run.top,
            &run.before_kill,
            &alive,
            sentinel,
            agent_failed,
            ended,
        )
        .launcher_exited(launcher)
        .stdin_at_eof(stdin_at_eof);
        let mut observed = self.observed();
        alive
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Ports and the environment take a few reads per process: for a fork storm
                // of thousands, only the first survivors get them (port verdicts are
                // complete either way), so the verdict stays fast.
                let detailed = i < DETAIL_LIMIT;
                let no_links = FdLinks::default();
                let own_links = links.get(&p.pid).unwrap_or(&no_links);
                let ports = if detailed {
                    listening.ports_in(own_links)
                } else {
                    Vec::new()
                };
                // A zombie has no environment left to read.
                let marker = if p.is_zombie() || !detailed {
                    None
                } else {
                    procs::carries_marker(p.pid, &run.run_id)
                };
                let escapes = diagnosis::escapes(p, &ports, marker, &cx);
                let holds_pipes = if detailed && !p.is_zombie() {
                    pipes::agent_streams_held(own_links, &self.live.pipes)
                } else {
                    Vec::new()
                };
                let missed_by = diagnosis::missed_by(p, marker, &cx);
                let entry = observed
                    .seen
                    .entry((p.pid, p.start_ticks))
                    .or_insert_with(|| (p.clone(), now));
                // An exec since the first sighting changed what it runs, not who started
                // it: the report names it for its program, under its original parent.
                entry.0.comm.clone_from(&p.comm);
                entry.0.cmdline.clone_from(&p.cmdline);
                Survivor {
                    process: p.clone(),
                    ports,
                    original_parent: Some(entry.0.ppid),
                    env_marker: marker,
                    hints: escapes.iter().map(|e| e.hint()).collect(),
                    escapes,
                    missed_by,
                    holds_pipes,
                }
            })
            .collect()
    }

    /// Survivors whose stdin is a pipe nobody can write any more: nothing of the tree
    /// holds a write end, and it is not the harness's open stdin pipe nor the caller's
    /// own stdin (whose writer is outside the tree).
    fn stdin_at_eof(&self, alive: &[ProcessInfo], links: &HashMap<i32, FdLinks>) -> HashSet<i32> {
        // The detailed survivors (the first DETAIL_LIMIT, zombies aside) are `links`.
        let readers: Vec<(i32, u64)> = alive
            .iter()
            .filter_map(|p| Some((p.pid, pipes::stdin_pipe_in(links.get(&p.pid)?)?)))
            .collect();
        if readers.is_empty() {
            return HashSet::new();
        }
        let pids: Vec<i32> = alive.iter().map(|p| p.pid).collect();
        let written = pipes::pipes_written_by(&pids, links);
        let ours = self.live.pipes.stdin;
        let harness_writes = self.live.stdin.is_some().then_some(ours).flatten();
        let callers = pipes::pipe_inode(std::io::stdin().as_fd());
        readers
            .into_iter()
            .filter(|(_, inode)| {
                !written.contains(inode)
                    && Some(*inode) != harness_writes
                    && (Some(*inode) == ours || Some(*inode) != callers)
            })
            .map(|(pid, _)| pid)
            .collect()
    }
}
