//! A launch as one image in a memfd: how a launch reaches a sentinel that is already
//! running (one started by exec, before `main`; an idle one, reused), which may not
//! allocate.
//!
//! The harness writes the strings and, in front of them, the `argv` and `envp` pointer
//! arrays as offsets into the image. The sentinel maps the memfd privately, checks every
//! offset, and adds the mapping's address to each entry: the arrays are then what
//! `execve` reads, with no copy and no allocation.
//!
//! | bytes      | field                                                         |
//! |------------|---------------------------------------------------------------|
//! | 0..8       | [`MAGIC`]                                                     |
//! | 8..16      | the image's length in bytes, `u64`                            |
//! | 16..24     | offset of the program's path                                  |
//! | 24..32     | offset of the working directory, 0 for none                   |
//! | 32..40     | offset of the cgroup's directory, 0 for none                  |
//! | 40..48     | `argc`                                                        |
//! | 48..56     | `envc`                                                        |
//! | 56..       | `argc` offsets and a 0, then `envc` offsets and a 0 (each 8 bytes) |
//! | after them | the strings, each NUL-terminated                              |
//!
//! Integers are native endian, as on the wire: both ends are the same program.

use std::ffi::CStr;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::raw::c_char;

use rustix::io::{retry_on_intr, write};

use super::spawn::Launch;
use super::sys::{self, CStrArray, Mapping};

/// The image's first 8 bytes (the last is the format's version).
const MAGIC: [u8; 8] = *b"OCLAUNC1";
const HEADER: usize = 56;
const WORD: usize = 8;
/// Larger than any launch (the kernel's `ARG_MAX` is far below): a corrupt length is
/// refused before it is mapped.
const MAX_IMAGE: usize = 256 << 20;

// Each pointer of the arrays is stored, then relocated, in one 8-byte word.
const _: () = assert!(std::mem::size_of::<*const c_char>() == WORD);

/// The image of `launch`, with `cwd` as its working directory (a reused sentinel was
/// started earlier, perhaps in another directory: its launch always says where).
pub(super) fn encode(launch: &Launch, cwd: Option<&CStr>) -> Vec<u8> {
    let table = (launch.argv.len() + 1 + launch.envp.len() + 1) * WORD;
    let mut strings: Vec<u8> = Vec::new();
    let first = HEADER + table;
    let mut place = |s: &CStr| {
        let at = first + strings.len();
        strings.extend_from_slice(s.to_bytes_with_nul());
        at as u64
    };
    let program = place(&launch.program);
    let cwd = cwd.map_or(0, &mut place);
    let cgroup = launch.cgroup_dir.as_deref().map_or(0, &mut place);
    let argv: Vec<u64> = launch.argv.iter().map(|a| place(a)).collect();
    let envp: Vec<u64> = launch.envp.iter().map(|e| place(e)).collect();
    let len = first + strings.len();
    let mut image = Vec::with_capacity(len);
    image.extend_from_slice(&MAGIC);
    for word in [
        len as u64,
        program,
        cwd,
        cgroup,
        argv.len() as u64,
        envp.len() as u64,
    ] {
        image.extend_from_slice(&word.to_ne_bytes());
    }
    for list in [&argv, &envp] {
        for &at in list.iter().chain(std::iter::once(&0)) {
            image.extend_from_slice(&at.to_ne_bytes());
        }
    }
    image.extend_from_slice(&strings);
    image
}

/// `image` in a new memfd (close-on-exec), for the sentinel to map.
pub(super) fn to_memfd(image: &[u8]) -> io::Result<OwnedFd> {
    let memfd = rustix::fs::memfd_create("orphan-check-launch", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut written = 0;
    while written < image.len() {
        written += retry_on_intr(|| write(&memfd, &image[written..]))?;
    }
    Ok(memfd)
}

/// A launch image mapped in the sentinel, checked and relocated: its arrays point into
/// the mapping, which lives as long as this value.
pub(super) struct MappedLaunch {
    map: Mapping,
    program: usize,
    cwd: usize,
    cgroup: usize,
    argc: usize,
    envc: usize,
}

impl MappedLaunch {
    /// Maps the image in `fd`; `None` when it is not one [`encode`] writes (a wrong
    /// magic or length, an offset outside the strings, a string without its NUL, an
    /// array without its 0). The descriptor may be closed afterwards. Allocation-free.
    pub(super) fn map(fd: RawFd) -> Option<MappedLaunch> {
        let len = sys::file_size(fd).ok()?;
        if !(HEADER..=MAX_IMAGE).contains(&len) {
            return None;
        }
        let mut map = sys::map_private(fd, len).ok()?;
        let bytes = map.bytes_mut();
        let word = |bytes: &[u8], at: usize| -> usize {
            let mut w = [0u8; WORD];
            w.copy_from_slice(&bytes[at..at + WORD]);
            u64::from_ne_bytes(w) as usize
        };
        if bytes[..8] != MAGIC || word(bytes, 8) != len {
            return None;
        }
        let (argc, envc) = (word(bytes, 40), word(bytes, 48));
        let entries = argc.checked_add(envc)?.checked_add(2)?;
        let strings = entries.checked_mul(WORD)?.checked_add(HEADER)?;
        if strings > len {
            return None;
        }
        // A string starts among the strings and ends with a NUL inside the image.
        let is_string =
            |bytes: &[u8], at: usize| at >= strings && at < len && bytes[at..].contains(&0);
        let (program, cwd, cgroup) = (word(bytes, 16), word(bytes, 24), word(bytes, 32));
        if !is_string(bytes, program)
            || (cwd != 0 && !is_string(bytes, cwd))
            || (cgroup != 0 && !is_string(bytes, cgroup))
        {
            return None;
        }
        let ends = [HEADER + argc * WORD, HEADER + (argc + 1 + envc) * WORD];
        for i in 0..entries {
            let at = HEADER + i * WORD;
            let entry = word(bytes, at);
            let fine = if ends.contains(&at) {
                entry == 0
            } else {
                is_string(bytes, entry)
            };
            if !fine {
                return None;
            }
        }
        // Relocate: each offset becomes the address of its string in this mapping.
        let base = bytes.as_ptr() as usize;
        for i in 0..entries {
            let at = HEADER + i * WORD;
            if !ends.contains(&at) {
                let address = (base + word(bytes, at)) as u64;
                bytes[at..at + WORD].copy_from_slice(&address.to_ne_bytes());
            }
        }
        Some(MappedLaunch {
            map,
            program,
            cwd,
            cgroup,
            argc,
            envc,
        })
    }

    fn string(&self, at: usize) -> &CStr {
        CStr::from_bytes_until_nul(&self.map.bytes()[at..]).expect("checked by `map`")
    }

    fn optional(&self, at: usize) -> Option<&CStr> {
        (at != 0).then(|| self.string(at))
    }

    pub(super) fn program(&self) -> &CStr {
        self.string(self.program)
    }

    pub(super) fn cwd(&self) -> Option<&CStr> {
        self.optional(self.cwd)
    }

    pub(super) fn cgroup_dir(&self) -> Option<&CStr> {
        self.optional(self.cgroup)
    }

    /// The `n` pointers (and the NULL after them) from the table's entry `first`.
    fn array(&self, first: usize, n: usize) -> CStrArray<'_> {
        let bytes = &self.map.bytes()[HEADER + first * WORD..HEADER + (first + n + 1) * WORD];
        // SAFETY: the mapping is page-aligned and the table starts 56 bytes in, so each
        // entry is an aligned word; `map` relocated every entry into the address of a
        // NUL-terminated string inside the mapping (and left each array's last entry
        // 0, a NULL), which lives as long as `self`.
        unsafe {
            let pointers =
                std::slice::from_raw_parts(bytes.as_ptr().cast::<*const c_char>(), n + 1);
            CStrArray::borrowed(pointers)
        }
    }

    pub(super) fn argv(&self) -> CStrArray<'_> {
        self.array(0, self.argc)
    }

    pub(super) fn envp(&self) -> CStrArray<'_> {
        self.array(self.argc + 1, self.envc)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;

    use super::*;

    /// The strings an array points at.
    fn strings(array: &CStrArray<'_>) -> Vec<CString> {
        let mut out = Vec::new();
        let mut at = array.as_ptr();
        // SAFETY: a NULL-terminated array of NUL-terminated strings (`map` checked it).
        unsafe {
            while !(*at).is_null() {
                out.push(CStr::from_ptr(*at).to_owned());
                at = at.add(1);
            }
        }
        out
    }

    fn mapped(image: &[u8]) -> Option<MappedLaunch> {
        let fd = to_memfd(image).expect("memfd");
        MappedLaunch::map(fd.as_raw_fd())
    }

    #[test]
    fn an_image_maps_back_to_its_launch() {
        let launch = Launch {
            envp: vec![c"A=1".into(), c"SECRET=x=y".into()],
            cgroup_dir: Some(c"/sys/fs/cgroup/orphan-check-1".into()),
            ..Launch::bare(c"/bin/agent", &[c"agent", c"", c"--flag=a b"])
        };
        let image = encode(&launch, Some(c"/tmp/work dir"));
        let m = mapped(&image).expect("a valid image");
        assert_eq!(m.program(), c"/bin/agent");
        assert_eq!(m.cwd(), Some(c"/tmp/work dir"));
        assert_eq!(m.cgroup_dir(), Some(c"/sys/fs/cgroup/orphan-check-1"));
        let argv: Vec<CString> = vec![c"agent".into(), c"".into(), c"--flag=a b".into()];
        assert_eq!(strings(&m.argv()), argv);
        let envp: Vec<CString> = vec![c"A=1".into(), c"SECRET=x=y".into()];
        assert_eq!(strings(&m.envp()), envp);
        // None of them: no cwd, no cgroup, empty lists.
        let bare = encode(&Launch::bare(c"/bin/true", &[]), None);
        let m = mapped(&bare).expect("a valid image");
        assert_eq!((m.cwd(), m.cgroup_dir()), (None, None));
        assert!(strings(&m.argv()).is_empty() && strings(&m.envp()).is_empty());
    }

    #[test]
    fn an_image_that_is_not_one_is_refused() {
        let image = encode(&Launch::bare(c"/bin/agent", &[c"agent"]), None);
        assert!(mapped(&image).is_some());
        let set = |at: usize, value: u64| {
            let mut bad = image.clone();
            bad[at..at + 8].copy_from_slice(&value.to_ne_bytes());
            bad
        };
        // The first string (the program's path), after a table of three entries.
        let strings_at = (HEADER + 3 * WORD) as u64;
        let refused = [
            ("too short", image[..HEADER - 1].to_vec()),
            ("cut short", image[..image.len() - 1].to_vec()),
            ("another magic", set(0, u64::from_ne_bytes(*b"OCLAUNC0"))),
            (
                "a length that is not the file's",
                set(8, image.len() as u64 + 1),
            ),
            ("the program outside the image", set(16, image.len() as u64)),
            ("the program inside the table", set(16, HEADER as u64)),
            ("argc past the image", set(40, u64::MAX / 16)),
            ("an argument outside", set(HEADER, 1 << 40)),
            ("argv without its 0", set(HEADER + WORD, strings_at)),
            ("a cwd in the header", set(24, 8)),
        ];
        for (what, bad) in refused {
            assert!(mapped(&bad).is_none(), "{what}: mapped");
        }
        // A string whose NUL is missing: the last byte of the image is the last NUL.
        let mut no_nul = image.clone();
        *no_nul.last_mut().expect("bytes") = b'x';
        assert!(
            mapped(&no_nul).is_none(),
            "a string without its NUL: mapped"
        );
    }
}
