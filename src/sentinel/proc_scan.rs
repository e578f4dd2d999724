//! The sentinel's direct children, read from `/proc` without allocating (the cleanup
//! loop runs after the fork): stack buffers, digits parsed by hand.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd};

use super::sys;

/// Calls `f` with every direct child of this process (this thread's, which in the
/// single-threaded sentinel is the same).
///
/// The children come from `/proc/thread-self/children`, or, on a kernel without it
/// (`CONFIG_PROC_CHILDREN` off), from a scan of `/proc` for processes whose parent is
/// this process.
pub(super) fn for_each_own_child(f: &mut impl FnMut(i32)) {
    let Ok(children) = sys::open(c"/proc/thread-self/children", libc::O_RDONLY) else {
        for_each_child_by_scan(sys::getpid(), f);
        return;
    };
    let mut buf = [0u8; 4096];
    let mut current: i32 = 0;
    let mut in_number = false;
    while let Ok(n @ 1..) = sys::read(children.as_raw_fd(), &mut buf) {
        for &b in &buf[..n] {
            if b.is_ascii_digit() {
                current = current.wrapping_mul(10).wrapping_add((b - b'0') as i32);
                in_number = true;
            } else if in_number {
                f(current);
                current = 0;
                in_number = false;
            }
        }
    }
    if in_number {
        f(current);
    }
}

/// Calls `f` with every process whose parent is `parent`, found by reading
/// `/proc/<pid>/stat` for each entry of `/proc` (`getdents64`: no allocation).
fn for_each_child_by_scan(parent: i32, f: &mut impl FnMut(i32)) {
    let Ok(dir) = sys::open(c"/proc", libc::O_RDONLY | libc::O_DIRECTORY) else {
        return;
    };
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = sys::getdents64(dir.as_fd(), &mut buf) {
        let mut off = 0usize;
        while off + 19 < n {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &buf[off + 19..(off + reclen).min(n)];
            let mut pid: i32 = 0;
            let mut digits = 0;
            for &b in name.iter().take_while(|b| **b != 0) {
                if !b.is_ascii_digit() {
                    digits = 0;
                    break;
                }
                pid = pid.wrapping_mul(10).wrapping_add((b - b'0') as i32);
                digits += 1;
            }
            if digits > 0 && parent_of(pid) == parent {
                f(pid);
            }
            off += reclen;
        }
    }
}

/// The parent pid in `/proc/<pid>/stat` (the field after the state, which follows the
/// last `)`: the command name may contain one), or 0.
fn parent_of(pid: i32) -> i32 {
    let mut path = [0u8; 32];
    let prefix = b"/proc/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut rest = pid as u32;
    loop {
        digits[n] = b'0' + (rest % 10) as u8;
        n += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        path[len] = digits[i];
        len += 1;
    }
    path[len..len + 5].copy_from_slice(b"/stat");
    // The rest of `path` is zeros: NUL-terminated.
    let Ok(path) = CStr::from_bytes_until_nul(&path) else {
        return 0;
    };
    let Ok(file) = sys::open(path, libc::O_RDONLY) else {
        return 0;
    };
    let mut stat = [0u8; 1024];
    let got = match sys::read(file.as_raw_fd(), &mut stat) {
        Ok(n) if n > 0 => n,
        _ => return 0,
    };
    drop(file);
    let stat = &stat[..got];
    let Some(close) = stat.iter().rposition(|b| *b == b')') else {
        return 0;
    };
    // ") S 1234 ..."
    let mut ppid = 0i32;
    for &b in stat.iter().skip(close + 4) {
        if !b.is_ascii_digit() {
            break;
        }
        ppid = ppid.wrapping_mul(10).wrapping_add((b - b'0') as i32);
    }
    ppid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proc_scan_finds_the_same_children_as_the_children_file() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let me = std::process::id() as i32;
        let mut found: Vec<i32> = Vec::new();
        for_each_child_by_scan(me, &mut |pid| found.push(pid));
        let listed = crate::procs::children(me);
        let _ = child.kill();
        let _ = child.wait();
        // Other tests start children meanwhile: compare on the one we know.
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        assert!(listed.contains(&(child.id() as i32)), "{listed:?}");
        assert!(!found.contains(&me));
        assert_eq!(parent_of(me), std::os::unix::process::parent_id() as i32);
    }
}
