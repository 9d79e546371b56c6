//! The interface between the script executor and a memory manager.
//!
//! The executor ([`run`](super::run)) evaluates a line's arguments, turns them into a typed
//! [`Call`] and hands it to a [`Backend`] together with the pid of the process the line runs
//! in; the backend answers with an [`Outcome`]. The executor keeps the table of processes
//! (pid 1 from the start, a child once `fork` returned its pid, none after `exit_group`), so a
//! backend only sees pids it created. Backends for one address space (no `fork`) answer
//! [`Outcome::Error`] for the calls they do not implement.
//!
//! [`layout_text`] renders the `layout()` pseudo-call from a VMA list exactly as linux-run
//! renders it from `/proc/PID/maps`, so every backend gives the same text.

/// A process of a script: 1 is the first one, others are what `fork` returned.
pub type Pid = u64;

/// Bytes a call writes: given by the script, or read from the process's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Buf {
    /// Bytes from a string (or a variable holding bytes).
    Bytes(Vec<u8>),
    /// An address in the process (an integer where a string may be given).
    Addr(u64),
}

/// A call with its arguments evaluated (integers in Linux x86-64 encoding, modulo 2^64).
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    missing_docs,
    reason = "the fields are the system calls' own arguments"
)]
pub enum Call {
    Mmap {
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        off: u64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u64,
    },
    /// `new_addr` is 0 when the script gave 4 arguments.
    Mremap {
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    },
    Madvise {
        addr: u64,
        len: u64,
        advice: u64,
    },
    Brk {
        addr: u64,
    },
    Mlock {
        addr: u64,
        len: u64,
    },
    Mlock2 {
        addr: u64,
        len: u64,
        flags: u64,
    },
    Munlock {
        addr: u64,
        len: u64,
    },
    Mlockall {
        flags: u64,
    },
    Munlockall,
    Msync {
        addr: u64,
        len: u64,
        flags: u64,
    },
    MemfdCreate {
        name: Vec<u8>,
        flags: u64,
    },
    /// `mode` is 0 when the script gave 3 arguments.
    Openat {
        dirfd: u64,
        path: Vec<u8>,
        flags: u64,
        mode: u64,
    },
    Ftruncate {
        fd: u64,
        len: u64,
    },
    /// Bytes given by the script are zero-padded up to `len` (at most 16 MiB).
    Pwrite64 {
        fd: u64,
        data: Buf,
        len: u64,
        off: u64,
    },
    Close {
        fd: u64,
    },
    Fork,
    ExitGroup {
        code: u64,
    },
    /// Write `data` at `addr` through the MMU.
    Poke {
        addr: u64,
        data: Vec<u8>,
    },
    /// Write `len` copies of `byte` at `addr`.
    Fill {
        addr: u64,
        len: u64,
        byte: u8,
    },
    /// Read `len` bytes at `addr` (at most 16 MiB).
    Peek {
        addr: u64,
        len: u64,
    },
    /// Read `len` bytes at `addr` and count those equal to `byte`.
    Count {
        addr: u64,
        len: u64,
        byte: u8,
    },
    /// The VMAs covering `[addr, addr+len)` (see [`layout_text`]).
    Layout {
        addr: u64,
        len: u64,
    },
    /// Resident pages of the range (mincore).
    Resident {
        addr: u64,
        len: u64,
    },
    /// An smaps field (kB) of the VMA containing `addr`.
    Smaps {
        addr: u64,
        field: String,
    },
    /// The VmFlags of the VMA containing `addr`.
    Vmflags {
        addr: u64,
    },
    /// `/proc/PID/maps`.
    Maps,
    /// `/proc/PID/smaps`.
    SmapsAll,
}

/// What a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A successful integer result (an address for mmap/mremap/brk, a count, 0, a pid).
    Int(u64),
    /// The call failed with this errno (`-1 ENAME`).
    Err(i32),
    /// The memory access faulted with this signal number (SIGSEGV, SIGBUS).
    Signal(i32),
    /// Bytes read (`peek`).
    Bytes(Vec<u8>),
    /// A text result (`layout`, `vmflags`).
    Text(String),
    /// Text printed instead of a result (`maps()`, `smaps()`).
    Print(String),
    /// The process exited (`exit_group`); later calls in it fail with `ESRCH`.
    Exit,
    /// The line could not be run at all; the message is the FAIL line's text and the line
    /// counts as failed whatever it expected.
    Error(String),
}

/// A memory manager that runs script calls.
pub trait Backend {
    /// Runs `call` in process `pid` (1, or a pid this backend returned from `fork`).
    fn call(&mut self, pid: Pid, call: &Call) -> Outcome;
}

/// One VMA as `layout` sees it: `[start, end)` and its maps permission string (`rw-p`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaView {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// The permission column of `/proc/PID/maps`.
    pub perms: String,
}

/// The `layout(ADDR, LEN)` text over VMAs in address order: `"PERMS LEN, ..."` with the bytes
/// each VMA covers inside the window and `unmapped LEN` for holes, exactly as linux-run
/// computes it from `/proc/PID/maps`.
pub fn layout_text(vmas: &[VmaView], addr: u64, len: u64) -> String {
    let end = u128::from(addr) + u128::from(len);
    let mut parts = Vec::new();
    let mut pos = u128::from(addr);
    for v in vmas {
        let (s, e) = (u128::from(v.start), u128::from(v.end));
        if e <= pos || s >= end {
            continue;
        }
        if s > pos {
            parts.push(format!("unmapped {}", s - pos));
            pos = s;
        }
        let hi = e.min(end);
        parts.push(format!("{} {}", v.perms, hi - pos));
        pos = hi;
    }
    if pos < end {
        parts.push(format!("unmapped {}", end - pos));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64, perms: &str) -> VmaView {
        VmaView {
            start,
            end,
            perms: perms.to_string(),
        }
    }

    #[test]
    fn layout_of_holes_and_neighbours() {
        let vmas = [
            vma(0x1000, 0x3000, "rw-p"),
            vma(0x3000, 0x4000, "rw-p"),
            vma(0x6000, 0x8000, "r--s"),
        ];
        assert_eq!(
            layout_text(&vmas, 0, 0x9000),
            "unmapped 4096, rw-p 8192, rw-p 4096, unmapped 8192, r--s 8192, unmapped 4096"
        );
        assert_eq!(layout_text(&vmas, 0x2000, 0x1800), "rw-p 4096, rw-p 2048");
        assert_eq!(layout_text(&vmas, 0x4000, 0x2000), "unmapped 8192");
        assert_eq!(layout_text(&vmas, 0x1000, 0), "");
        assert_eq!(layout_text(&[], 0x1000, 0x1000), "unmapped 4096");
    }

    #[test]
    fn layout_window_at_the_top_of_the_address_space() {
        let vmas = [vma(u64::MAX - 0xfff, u64::MAX, "---p")];
        assert_eq!(
            layout_text(&vmas, u64::MAX - 0x1fff, 0x2000),
            "unmapped 4096, ---p 4095, unmapped 1"
        );
    }
}
