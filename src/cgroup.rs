//! The optional cgroup v2 layer.
//!
//! When a writable cgroup v2 hierarchy is found, the sentinel creates a fresh cgroup and
//! the agent is born in it (`clone3` with `CLONE_INTO_CGROUP`; on a kernel without it, the
//! agent writes itself into `cgroup.procs` before its `exec`). That gives an
//! atomic cleanup (`cgroup.kill`, immune to fork storms), a member list that does not
//! depend on ancestry, and the CPU (and, where the controller is enabled, memory) a leak
//! costs. Nothing depends on it: without it the subreaper alone does the job, which is the
//! common case on CI runners that are not root.
//!
//! The hierarchy is found from the mount table (`cgroup2` entries of
//! `/proc/self/mountinfo`), never assumed at `/sys/fs/cgroup`: hybrid layouts mount it
//! elsewhere (for example `/sys/fs/cgroup/unified`). This process's own cgroup is the
//! unified (`0::`) entry of `/proc/self/cgroup`, read through `procfs` (13 µs against
//! 10 µs by hand: a small file that does not grow with the machine).
//!
//! A scenario's start looks for the hierarchy once per process and own cgroup
//! (`scenario_root`: the mount table does not change in practice). The mount table is
//! parsed here rather than by `procfs`'s `Process::mountinfo`, because [`writable_root`]
//! reads it at every call and procfs does more, and less, than this needs. More: it parses every line into hash maps of options (this machine's 21
//! lines: 52 µs against 38 µs with the read; a 501-line table, a container host's:
//! 856 µs against 37 µs, against a clean scenario's ≈ 2 ms), and one line it cannot
//! parse fails the whole table. Less: it keeps the kernel's octal escapes in the mount
//! point (`/a\040b` for `/a b`), which [`unescape_mount`] undoes. (procfs 0.18,
//! `cargo run --release --example procfs-cost`, docs/benchmarks.md.)

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{open, Mode, OFlags};

/// Whether scenarios use a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CgroupMode {
    /// Use one when a writable cgroup v2 hierarchy is found (the default).
    #[default]
    Auto,
    /// Never.
    Off,
    /// Always; running fails with an error when none can be created.
    Required,
}

impl CgroupMode {
    /// `Auto` yields to the `ORPHAN_CHECK_CGROUP` environment variable (`off`, `auto`,
    /// `required`), so a whole suite can be run without (or only with) the cgroup layer.
    pub(crate) fn resolved(self) -> CgroupMode {
        if self != CgroupMode::Auto {
            return self;
        }
        match std::env::var("ORPHAN_CHECK_CGROUP").as_deref() {
            Ok("off") => CgroupMode::Off,
            Ok("required") => CgroupMode::Required,
            _ => CgroupMode::Auto,
        }
    }
}

/// Where this process's cgroup v2 lives, when this process may create cgroups under it.
pub fn writable_root() -> Option<PathBuf> {
    root_under(&this_cgroup()?)
}

/// This process's cgroup, relative to the hierarchy's root (`/user.slice/…`), from
/// `/proc/self/cgroup` read in one go (≈ 4 µs; through procfs, which parses every
/// hierarchy's line into its own strings, ≈ 13 µs: it is read at every scenario's start).
fn this_cgroup() -> Option<String> {
    let fd = open(
        "/proc/self/cgroup",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = vec![0u8; 1024];
    let len = crate::procs::read_whole(&fd, &mut buf, false)?;
    own_cgroup(std::str::from_utf8(&buf[..len]).ok()?)
}

/// The directory of the cgroup `relative` (this process's), when it is writable.
fn root_under(relative: &str) -> Option<PathBuf> {
    let mountinfo = read_mountinfo()?;
    let mount = cgroup2_mount(&mountinfo)?;
    let dir = mount.join(relative.trim_start_matches('/'));
    let writable = writable(&dir) && dir.join("cgroup.procs").exists();
    writable.then_some(dir)
}

/// `/proc/self/mountinfo`, read into a buffer sized for it: its size reads as 0, so a
/// plain `read_to_string` would start with a handful of tiny reads, each generating
/// the table's text again up to where it stopped.
fn read_mountinfo() -> Option<String> {
    let mut file = fs::File::open("/proc/self/mountinfo").ok()?;
    let mut text = String::with_capacity(64 * 1024);
    std::io::Read::read_to_string(&mut file, &mut text).ok()?;
    Some(text)
}

fn writable(dir: &std::path::Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

/// [`writable_root`] for a scenario's start, remembered per process: the mount table
/// read and parsed costs ≈ 0.1 ms, a twentieth of a clean scenario, and does not change
/// in practice (nobody remounts the cgroup2 hierarchy under a running test). The answer
/// is kept with this process's own cgroup, which is read every time (≈ 13 µs): a
/// process moved to another cgroup looks again. A remembered root is also checked to be
/// still writable (one `access`), and looked up again when it is not (removed, or its
/// permissions changed). A remembered "none" (no cgroup2 mount, or not ours to write:
/// the unprivileged case) stays "none" for the same own cgroup.
fn scenario_root() -> Option<PathBuf> {
    static KNOWN: Mutex<Option<(String, Option<PathBuf>)>> = Mutex::new(None);
    let own = this_cgroup()?;
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cgroup, root)) = known.as_ref() {
        if *cgroup == own {
            match root {
                None => return None,
                Some(dir) if writable(dir) => return Some(dir.clone()),
                Some(_) => {}
            }
        }
    }
    let root = root_under(&own);
    *known = Some((own, root.clone()));
    root
}

/// The mount point of the cgroup2 filesystem, from `/proc/self/mountinfo` text.
pub(crate) fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mount(mount_point)))
    })
}

/// The unified entry of `/proc/<pid>/cgroup` text: the line `0::/path` (hierarchy 0, no
/// controllers; the path may hold colons).
fn own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Mount points escape space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // An escape is a backslash and exactly three octal digits, all within the text.
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(v) = digits.and_then(|d| {
            d.iter()
                .try_fold(0u8, |v, b| v.checked_mul(8)?.checked_add(b - b'0'))
        }) {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory name of run `run_id`'s cgroup: `orphan-check-<run id>`, with every
/// character other than ASCII alphanumerics and '-' replaced by '_'. A prefix of a run
/// id gives a prefix of its directory name.
pub(crate) fn dir_name(run_id: &str) -> String {
    let name: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("orphan-check-{name}")
}

/// A cgroup made for one scenario, removed when dropped.
#[derive(Debug)]
pub(crate) struct ScenarioCgroup {
    dir: PathBuf,
    /// [`remove`](ScenarioCgroup::remove) has run: nothing is left for the drop.
    removal_done: bool,
}

impl ScenarioCgroup {
    /// Names `<own cgroup>/orphan-check-<run id>` under a writable hierarchy; the
    /// sentinel creates it.
    pub(crate) fn create(run_id: &str) -> io::Result<ScenarioCgroup> {
        let root = scenario_root()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no writable cgroup v2"))?;
        let dir = root.join(dir_name(run_id));
        Ok(ScenarioCgroup {
            dir,
            removal_done: false,
        })
    }

    /// The cgroup's directory.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The pids in the cgroup now.
    pub(crate) fn members(&self) -> Vec<i32> {
        let Ok(fd) = open(
            self.dir.join("cgroup.procs"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        // Read to its end of file: a `seq_file`, like `children` (`procs::read_whole`).
        let mut buf = vec![0u8; 512];
        let Some(n) = crate::procs::read_whole(&fd, &mut buf, false) else {
            return Vec::new();
        };
        buf[..n]
            .split(u8::is_ascii_whitespace)
            .filter_map(|l| std::str::from_utf8(l).ok()?.parse().ok())
            .collect()
    }

    /// CPU time used by everything that ran in the cgroup, in microseconds.
    pub(crate) fn cpu_usage_usec(&self) -> Option<u64> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Current memory use in bytes, where the memory controller is enabled.
    pub(crate) fn memory_bytes(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("memory.current"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }

    /// Kills every member at once (`cgroup.kill`, Linux 5.14+).
    pub(crate) fn kill(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.kill"), b"1")
    }

    /// True while any process is in the cgroup.
    pub(crate) fn populated(&self) -> bool {
        fs::read_to_string(self.dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    /// Waits (on `cgroup.events` notifications) until the cgroup is empty.
    pub(crate) fn wait_empty(&self, deadline: Instant) -> bool {
        let Ok(events) = open(
            self.dir.join("cgroup.events"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return !self.populated();
        };
        loop {
            if !self.populated() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let left = (deadline - now).min(Duration::from_millis(50));
            let timeout = rustix::event::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            };
            let mut fds = [PollFd::new(&events, PollFlags::PRI)];
            let _ = poll(&mut fds, Some(&timeout));
        }
    }
}

/// How long a cgroup dropped on its own waits for its last members to be gone. An
/// [`Outcome`](crate::Outcome)'s drop passes what is left of its one deadline to
/// [`ScenarioCgroup::remove`] instead.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(5);

impl ScenarioCgroup {
    /// Removes the cgroup, waiting for its members until `deadline` at most; true when
    /// it is gone. The sentinel removed it when it exited: this is for a sentinel that
    /// could not (it was killed), or that is still killing a tree that cannot die yet
    /// (then it removes the cgroup itself once it is done). Runs once: a second call, or
    /// the drop, does nothing more.
    pub(crate) fn remove(&mut self, deadline: Instant) -> bool {
        if std::mem::replace(&mut self.removal_done, true) {
            return !self.dir.exists();
        }
        if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
            return true;
        }
        let _ = self.kill();
        self.wait_empty(deadline);
        fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
    }
}

impl Drop for ScenarioCgroup {
    fn drop(&mut self) {
        self.remove(Instant::now() + REMOVAL_PATIENCE);
    }
}

#[cfg(test)]
impl ScenarioCgroup {
    /// A directory that looks like a cgroup whose members never leave: `rmdir` fails
    /// (it is not empty) and `cgroup.events` says populated.
    pub(crate) fn stuck() -> (tempfile::TempDir, ScenarioCgroup) {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("orphan-check-stuck");
        fs::create_dir(&dir).expect("mkdir");
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("events");
        let cgroup = ScenarioCgroup {
            dir,
            removal_done: false,
        };
        (parent, cgroup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_root_is_the_root_looked_up() {
        // Twice: the first call may fill the memory, the second answers from it.
        assert_eq!(scenario_root(), writable_root());
        assert_eq!(scenario_root(), writable_root());
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_removal_past_its_deadline_kills_once_and_the_drop_adds_no_wait() {
        let (_parent, mut cgroup) = ScenarioCgroup::stuck();
        let kill = cgroup.dir().join("cgroup.kill");
        assert!(
            !cgroup.remove(Instant::now()),
            "members that never leave keep the cgroup"
        );
        assert_eq!(fs::read_to_string(&kill).ok().as_deref(), Some("1"));
        // The step had the deadline it was given; dropping the cgroup starts no second
        // removal (no second kill, no wait of its own).
        fs::remove_file(&kill).expect("rm cgroup.kill");
        assert!(!cgroup.remove(Instant::now() + Duration::from_secs(3600)));
        drop(cgroup);
        assert!(!kill.exists(), "the drop removed the cgroup again");
    }

    #[test]
    fn a_cgroup_the_sentinel_removed_needs_no_kill() {
        let (_parent, mut cgroup) = ScenarioCgroup::stuck();
        fs::remove_file(cgroup.dir().join("cgroup.events")).expect("rm");
        fs::remove_dir(cgroup.dir()).expect("rmdir");
        assert!(cgroup.remove(Instant::now()));
        assert!(!cgroup.dir().join("cgroup.kill").exists());
    }

    #[test]
    fn finds_the_cgroup2_mount_in_a_hybrid_layout() {
        assert_eq!(
            cgroup2_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/vda rw\n"), None);
    }

    #[test]
    fn reads_the_unified_entry_of_proc_self_cgroup() {
        let text = "4:memory:/x\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            own_cgroup(text).as_deref(),
            Some("/user.slice/session-1.scope")
        );
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
        // A named v1 hierarchy is not the unified one, and a path may hold colons.
        let text = "1:name=systemd:/\n0::/a:b\n";
        assert_eq!(own_cgroup(text).as_deref(), Some("/a:b"));
    }

    #[test]
    fn the_own_cgroup_of_this_process_is_its_unified_entry() {
        // What the kernel wrote, as procfs reads it: the one read must find the same.
        let by_procfs = procfs::process::Process::myself()
            .unwrap()
            .cgroups()
            .unwrap()
            .into_iter()
            .find(|g| g.hierarchy == 0 && g.controllers.is_empty())
            .map(|g| g.pathname);
        assert!(by_procfs.is_some(), "a unified entry");
        assert_eq!(this_cgroup(), by_procfs);
    }

    #[test]
    fn a_cgroup2_mount_point_with_a_space_is_unescaped() {
        // As the kernel wrote it for `mount -t cgroup2 none "/tmp/…/my cgroups"`.
        let text =
            "65 44 0:38 / /tmp/tmp.o7eup5mXLR/my\\040cgroups rw,relatime - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_mount(text),
            Some(PathBuf::from("/tmp/tmp.o7eup5mXLR/my cgroups"))
        );
        let text = "41 31 0:38 / /run/a\\011b\\134c rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(text), Some(PathBuf::from("/run/a\tb\\c")));
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount(r"/a\134b\011"), "/a\\b\t");
    }

    #[test]
    fn a_short_or_non_octal_escape_stays_as_written() {
        // Two digits at the end are no escape.
        assert_eq!(unescape_mount(r"/a\04"), r"/a\04");
        assert_eq!(unescape_mount(r"/a\"), r"/a\");
        assert_eq!(unescape_mount(r"/a\+12"), r"/a\+12");
        assert_eq!(unescape_mount(r"/a\777"), r"/a\777");
        // Non-ASCII after a backslash: no slicing inside a character.
        assert_eq!(unescape_mount("/a\\ééx"), "/a\\ééx");
    }
}
