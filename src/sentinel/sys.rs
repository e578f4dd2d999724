//! The sentinel's system calls through libc, each behind a small function with its
//! `// SAFETY:` comment, so that the code after the fork reads as ordinary Rust.
//!
//! Every function here is async-signal-safe: the call and `errno`, no allocation, no
//! lock, no `std` I/O. That is what the sentinel may do between `fork` and
//! `exec`/`_exit` (the list is in the [module docs](super)). Process creation is not
//! here but next to the process it creates (`_Fork` in `fork_start`, `clone` and
//! `clone3` in `agent`, `posix_spawn` in `exec_start`).
//!
//! Descriptors are raw numbers: after its fork or exec the sentinel owns its whole
//! descriptor table and keeps its pipes in fixed slots. Reading, writing and polling
//! one cannot break memory safety; the calls that change the table by number
//! ([`close`], [`dup_onto`], [`close_from`]) are `unsafe`, for a process that owns its
//! table (the sentinel after its fork or exec, the agent before its exec). Descriptors
//! these functions open come back as `OwnedFd`, closed when dropped. Errors are the raw
//! `errno`, which is what the events carry.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_int};

/// An `errno` value.
pub(super) type Errno = i32;

/// This thread's `errno`.
pub(super) fn errno() -> Errno {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// `Err(errno)` for a negative result.
fn check(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// Takes ownership of a descriptor a call just returned (or its `errno`).
fn owned(fd: c_int) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by the kernel as a new descriptor, owned by nobody.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `read` into `buf`: the count, 0 at end of file.
pub(super) fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write` of `buf`: the count written.
pub(super) fn write(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    check(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// `open`, always close-on-exec.
pub(super) fn open(path: &CStr, flags: c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated; no mode is read without O_CREAT.
    owned(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// `openat` relative to the directory `dir`, always close-on-exec.
pub(super) fn openat(dir: RawFd, path: &CStr, flags: c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated; no mode is read without O_CREAT.
    owned(unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// `getdents64` into `buf` (records of `struct linux_dirent64`): the bytes filled.
pub(super) fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    check(unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        ) as isize
    })
}

/// A close-on-exec copy of `fd` at the lowest number `floor` or above.
pub(super) fn dup_above(fd: RawFd, floor: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only creates a new descriptor.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) })
}

/// Makes `slot` a copy of `fd` (close-on-exec when `cloexec`), closing what was there.
///
/// # Safety
///
/// The caller owns its descriptor table: nothing else holds `slot`.
pub(super) unsafe fn dup_onto(fd: RawFd, slot: RawFd, cloexec: bool) {
    // SAFETY: dup2/dup3 take plain numbers; the caller owns `slot`.
    unsafe {
        if cloexec {
            libc::dup3(fd, slot, libc::O_CLOEXEC);
        } else {
            libc::dup2(fd, slot);
        }
    }
}

/// Closes `fd`.
///
/// # Safety
///
/// The caller owns `fd`, and nothing uses the number afterwards unless it is reopened.
pub(super) unsafe fn close(fd: RawFd) {
    // SAFETY: a plain number; the caller owns it.
    unsafe { libc::close(fd) };
}

/// Closes every descriptor from `first` up: `close_range`, or one by one up to the
/// descriptor limit on a kernel without it.
///
/// # Safety
///
/// The caller owns its whole descriptor table from `first` up.
pub(super) unsafe fn close_from(first: RawFd) {
    // SAFETY: close_range takes plain numbers; the caller owns them.
    if unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0) } == 0 {
        return;
    }
    // SAFETY: `limit` is a local the kernel writes.
    let max = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as RawFd
        } else {
            1024
        }
    };
    for fd in first..max {
        // SAFETY: as above, the caller owns these numbers.
        unsafe { close(fd) };
    }
}

/// `mkdir`.
pub(super) fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::mkdir(path.as_ptr(), mode) } as isize).map(drop)
}

/// `rmdir`.
pub(super) fn rmdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::rmdir(path.as_ptr()) } as isize).map(drop)
}

/// `chdir`.
pub(super) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::chdir(path.as_ptr()) } as isize).map(drop)
}

/// `mount`; `None` for a null source or type.
pub(super) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
) -> Result<(), Errno> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every string is NUL-terminated or null; no data argument.
    check(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            std::ptr::null(),
        )
    } as isize)
    .map(drop)
}

/// `setsid`: a new session, this process its leader.
pub(super) fn setsid() {
    // SAFETY: no arguments.
    unsafe { libc::setsid() };
}

/// `setpgid`.
pub(super) fn setpgid(pid: i32, pgid: i32) {
    // SAFETY: plain numbers.
    unsafe { libc::setpgid(pid, pgid) };
}

/// This process's pid.
pub(super) fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

/// `PR_SET_CHILD_SUBREAPER`: orphans of the subtree are reparented to this process.
pub(super) fn become_subreaper() {
    // SAFETY: prctl with plain numbers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// `PR_SET_NAME`: this thread's name in `/proc/<pid>/comm`.
pub(super) fn set_name(name: &CStr) {
    // SAFETY: the kernel reads at most 16 bytes of a NUL-terminated string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// `kill`: `pid` negative for a process group.
pub(super) fn kill(pid: i32, signal: c_int) -> Result<(), Errno> {
    // SAFETY: plain numbers.
    check(unsafe { libc::kill(pid, signal) } as isize).map(drop)
}

/// `pidfd_open`.
pub(super) fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain numbers.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as c_int)
}

/// `pidfd_send_signal`, without a `siginfo`.
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: c_int) -> Result<(), Errno> {
    // SAFETY: plain numbers and a null siginfo pointer, which the kernel accepts.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        ) as isize
    })
    .map(drop)
}

/// Reaps any child that has exited (`waitpid(-1, WNOHANG | __WALL)`): its pid and raw
/// wait status, or `None` while every child still runs.
pub(super) fn reap_any() -> Result<Option<(i32, i32)>, Errno> {
    let mut status = 0;
    // SAFETY: `waitpid` writes the status into a local.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    check(pid as isize).map(|pid| (pid > 0).then_some((pid as i32, status)))
}

/// `poll`, `timeout_ms` negative for no timeout: how many entries have events.
pub(super) fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, Errno> {
    // SAFETY: the kernel reads and writes `fds.len()` entries of `fds`.
    check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) } as isize)
}

/// A signal set of exactly `signals`.
pub(super) fn signal_set(signals: &[c_int]) -> libc::sigset_t {
    // SAFETY: all-zero bytes are a valid `sigset_t`; `sigemptyset` and `sigaddset` only
    // write into the set they are given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// The set of every signal.
pub(super) fn full_signal_set() -> libc::sigset_t {
    // SAFETY: all-zero bytes are a valid `sigset_t`; `sigfillset` writes into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        set
    }
}

/// A `sigaction` with this handler (`SIG_DFL`, `SIG_IGN`), no flags and an empty mask.
pub(super) fn disposition(handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: all-zero bytes are a valid `sigaction` (no handler, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_mask = signal_set(&[]);
    action
}

/// `sigaction(signal, action)`. The C library refuses (EINVAL) the numbers it
/// reserves for itself.
pub(super) fn set_disposition(signal: c_int, action: &libc::sigaction) -> Result<(), Errno> {
    // SAFETY: `action` is a valid, fully initialised sigaction; no old action is read.
    check(unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) } as isize).map(drop)
}

/// Sets `signal`'s disposition to the default through the system call itself, for the
/// signals the C library refuses to touch (glibc reserves 32 and 33 for its threads):
/// one the caller ignored would follow the agent through its `exec`. `sigset_bytes` is
/// the kernel's signal set size (`(SIGRTMAX + 1) / 8`: 8, or 16 on MIPS).
pub(super) fn set_default_disposition_raw(signal: c_int, sigset_bytes: usize) -> Result<(), Errno> {
    // The kernel's `struct sigaction` all zero, on every architecture's layout (none is
    // larger than this): SIG_DFL, no flags, no restorer, an empty mask.
    let action = [0u64; 6];
    // SAFETY: the kernel reads a `struct sigaction` from `action` (zeroed, large
    // enough) and writes no old action (null).
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            sigset_bytes,
        )
    };
    check(r as isize).map(drop)
}

/// `sigprocmask(SIG_SETMASK)`, in a single-threaded process (the sentinel, the agent).
pub(super) fn set_signal_mask(set: &libc::sigset_t) {
    // SAFETY: the kernel reads the set; no old set is written.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, set, std::ptr::null_mut()) };
}

/// `pthread_sigmask(SIG_SETMASK)` for the calling thread of a multi-threaded process:
/// returns the mask it replaced.
pub(super) fn swap_thread_signal_mask(set: &libc::sigset_t) -> libc::sigset_t {
    let mut old = signal_set(&[]);
    // SAFETY: reads `set`, writes the old mask into a local.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, set, &mut old) };
    old
}

/// A non-blocking, close-on-exec signalfd for `set` (blocked by the caller).
pub(super) fn signalfd(set: &libc::sigset_t) -> Result<OwnedFd, Errno> {
    // SAFETY: the kernel reads the set; -1 asks for a new descriptor.
    owned(unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })
}

/// A NULL-terminated array of pointers to C strings that outlive it: `argv` or `envp`
/// for [`execve`], built before the fork (it allocates).
pub(super) struct CStrArray<'a> {
    pointers: Pointers<'a>,
    strings: PhantomData<&'a CStr>,
}

/// Where a [`CStrArray`]'s pointers are: its own vector, or a NULL-terminated array
/// someone else built (a relaunch's mapped image: the sentinel may not allocate).
enum Pointers<'a> {
    Owned(Vec<*const c_char>),
    Borrowed(&'a [*const c_char]),
}

impl<'a> CStrArray<'a> {
    pub(super) fn new(strings: impl IntoIterator<Item = &'a CStr>) -> Self {
        CStrArray {
            pointers: Pointers::Owned(
                strings
                    .into_iter()
                    .map(CStr::as_ptr)
                    .chain(std::iter::once(std::ptr::null()))
                    .collect(),
            ),
            strings: PhantomData,
        }
    }

    /// An array already built: `pointers` ends with its one NULL, and every pointer
    /// before it is a NUL-terminated string that lives as long as `'a`.
    ///
    /// # Safety
    ///
    /// As said: the pointers are what `execve` reads, for as long as `'a`.
    pub(super) unsafe fn borrowed(pointers: &'a [*const c_char]) -> Self {
        debug_assert!(pointers.last().is_some_and(|p| p.is_null()));
        CStrArray {
            pointers: Pointers::Borrowed(pointers),
            strings: PhantomData,
        }
    }

    /// The array, for `execve` or `posix_spawn`.
    pub(super) fn as_ptr(&self) -> *const *const c_char {
        match &self.pointers {
            Pointers::Owned(v) => v.as_ptr(),
            Pointers::Borrowed(s) => s.as_ptr(),
        }
    }
}

/// Receives one record of at most `buf.len()` bytes from the socket `fd`, and up to
/// `fds.len()` descriptors passed with it (`SCM_RIGHTS`, close-on-exec): the record's
/// length (0 at end of file) and how many descriptors came. Descriptors beyond
/// `fds.len()` are closed by the kernel (`MSG_CTRUNC`).
pub(super) fn recv_with_fds(
    fd: RawFd,
    buf: &mut [u8],
    fds: &mut [RawFd; 8],
) -> Result<(usize, usize), Errno> {
    // Room for one SCM_RIGHTS header and 8 descriptors, aligned for `cmsghdr`.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below are to locals alive for
    // the call, with their true lengths.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg writes at most the lengths given into `buf` and `control`.
    let n = check(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) } as isize)?;
    let mut count = 0;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // `msg_controllen`; the data of an SCM_RIGHTS message is an array of ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<c_int>();
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<c_int>() {
                    let received = data.add(i).read_unaligned();
                    if count < fds.len() {
                        fds[count] = received;
                        count += 1;
                    } else {
                        libc::close(received);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, count))
}

/// The size of the file open as `fd` (`fstat`).
pub(super) fn file_size(fd: RawFd) -> Result<usize, Errno> {
    // SAFETY: fstat writes into a local stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(errno());
    }
    Ok(st.st_size as usize)
}

/// A private, writable mapping of the first `len` bytes of `fd` (writes stay in this
/// process). Ends with [`Mapping`]'s drop.
pub(super) fn map_private(fd: RawFd, len: usize) -> Result<Mapping, Errno> {
    // SAFETY: a new mapping the kernel places; nothing else refers to it.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            fd,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(Mapping {
        addr: addr.cast(),
        len,
    })
}

/// Memory mapped by [`map_private`], unmapped on drop.
pub(super) struct Mapping {
    addr: *mut u8,
    len: usize,
}

impl Mapping {
    /// The mapped bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes at `addr` are mapped readable, and written only through
        // `bytes_mut`, which needs this value mutably, for as long as it lives.
        unsafe { std::slice::from_raw_parts(self.addr, self.len) }
    }

    /// The mapped bytes, to write.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes at `addr` are mapped readable and writable, and only
        // through this value, for as long as it lives.
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns; nothing borrows it now
        // (borrows of `bytes_mut` end before the drop).
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// `execve`; returns only when it failed, with the `errno`.
pub(super) fn execve(program: &CStr, argv: &CStrArray<'_>, envp: &CStrArray<'_>) -> Errno {
    // SAFETY: `program` is NUL-terminated; `argv` and `envp` are NULL-terminated arrays
    // of NUL-terminated strings, alive for the call (their lifetime says so).
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// `_exit`: no destructor, no `atexit` handler, no stdio flush.
pub(super) fn exit(code: c_int) -> ! {
    // SAFETY: `_exit` ends the process at once.
    unsafe { libc::_exit(code) }
}

/// Sleeps `ms` milliseconds (a `poll` without descriptors).
pub(super) fn sleep_ms(ms: c_int) {
    let _ = poll(&mut [], ms);
}

/// The calling thread's scheduling attributes (`sched_getattr`): policy, nice value,
/// priority, and for the fair policies the time slice in `sched_runtime`. All zero
/// when the kernel cannot tell (before 3.14).
pub(crate) fn thread_sched_attr() -> libc::sched_attr {
    // SAFETY: a zeroed sched_attr is valid; the kernel writes at most `size` bytes.
    unsafe {
        let mut attr: libc::sched_attr = std::mem::zeroed();
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        attr.size = size;
        if libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) != 0 {
            attr = std::mem::zeroed();
        }
        attr
    }
}

/// Sets the calling thread's scheduling attributes (`sched_setattr`); a refusal (an
/// older kernel, a policy that needs a privilege) leaves them as they were.
pub(crate) fn set_thread_sched_attr(attr: &libc::sched_attr) {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: the kernel reads `size` bytes of a valid sched_attr.
    unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
}

/// The calling thread's personality (`personality(0xffffffff)` only reads it).
pub(super) fn personality() -> i32 {
    // SAFETY: with 0xffffffff, personality changes nothing and returns the current one.
    unsafe { libc::personality(0xffff_ffff) }
}

/// Registers `f` to run at `exit` (for the harness: the idle sentinels' end, see
/// `pool`).
pub(super) fn at_exit(f: extern "C" fn()) {
    // SAFETY: registers a function with C linkage that takes no argument.
    unsafe { libc::atexit(f) };
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `std::time::Instant` uses on Linux.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// How a process ended, read through a pidfd opened while it was alive: its raw wait
/// status, once it has exited and been reaped by whoever its parent was. This works
/// for any process, not only the sentinel's children (`PIDFD_GET_INFO` with
/// `PIDFD_INFO_EXIT`, Linux 6.15), which is how the report tells a process inside a
/// container that exited on its own from one the namespace's SIGKILL took. `None` while
/// it lives, or on an older kernel.
pub(crate) fn pidfd_exit_status(pidfd: &OwnedFd) -> Option<i32> {
    /// `struct pidfd_info` of linux/pidfd.h, version 0 (64 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct PidfdInfo {
        mask: u64,
        cgroupid: u64,
        pid: u32,
        tgid: u32,
        ppid: u32,
        ids: [u32; 8],
        exit_code: i32,
    }
    const PIDFD_INFO_EXIT: u64 = 1 << 3;
    // _IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)
    const PIDFD_GET_INFO: libc::c_ulong = (3 << 30) | (64 << 16) | (0xFF << 8) | 11;
    const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: the ioctl reads and writes at most `size_of::<PidfdInfo>()` bytes (the
    // size encoded in the request) of a local, fully initialised struct.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) };
    (r == 0 && info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::{Pid, PidfdFlags};

    #[test]
    fn a_pidfd_tells_how_its_process_ended_once_reaped() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _; exit 3"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let pid = Pid::from_raw(child.id() as i32).expect("a pid");
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty()).expect("pidfd");
        assert_eq!(pidfd_exit_status(&pidfd), None, "alive: no exit status");
        drop(child.stdin.take());
        child.wait().expect("reaped");
        // PIDFD_INFO_EXIT exists from Linux 6.15 on; before that the answer is None.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let expected = (version >= (6, 15)).then_some(3 << 8);
        assert_eq!(pidfd_exit_status(&pidfd), expected, "kernel {release}");
    }

    #[test]
    fn event_times_use_the_monotonic_clock() {
        // Sentinel timestamps are compared with `Instant`, which is CLOCK_MONOTONIC:
        // reading any other clock would put them days or decades away.
        let ts = |t: rustix::time::Timespec| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
        let before = ts(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ));
        let ours = monotonic_ns();
        let after = ts(rustix::time::clock_gettime(
            rustix::time::ClockId::Monotonic,
        ));
        assert!(
            before <= ours && ours <= after,
            "{before} <= {ours} <= {after}"
        );
    }
}
