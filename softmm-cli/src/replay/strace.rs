//! The parser of `strace -f -y` logs: text in, [`Record`]s out, one per completed call or
//! process event, in the order the log completes them.
//!
//! It is pure (no dependency on the replay engine) and lenient: a malformed line becomes a
//! [`ParseError`] and is skipped, and no input makes it panic. [`parse`] reads a whole text;
//! [`Parser`] is the same machine fed one line at a time, to drive a progress bar.
//!
//! # Line forms
//!
//! A line is `[PID] [TIMESTAMP] [IP] BODY`:
//! - PID is `1234  ` (`-f -o FILE`), `[pid  1234] ` (`-f` to stderr) or absent (no `-f`);
//!   see "Pids" below for lines without one;
//! - TIMESTAMP is any of `-t` (`02:35:25`), `-tt` (`02:35:25.812713`), `-ttt`
//!   (`1795574125.847019`) and `-r` (`0.000123`); IP is `-i`'s `[00007f...]`; both are skipped;
//! - BODY is a call `name(args) = result`, an unfinished call `name(args <unfinished ...>`,
//!   its completion `<... name resumed>args) = result`, an exit `+++ exited with N +++`, a
//!   death `+++ killed by SIGKILL [(core dumped)] +++`, a signal `--- SIGCHLD {...} ---`, or
//!   one of strace's own notes (ignored: `+++ superseded by execve in pid N +++`,
//!   `--- stopped by SIGSTOP ---`, `strace: ...`, `[ Process PID=... ]`).
//!
//! # Rules
//!
//! 1. **One line, one outcome.** Every line fed is exactly one of: a record at that line, an
//!    error at that line, ignored (blank, strace's notes), or the head of an unfinished call
//!    that a later `resumed` line consumes ([`Stats`] counts each). So nothing is lost
//!    silently, and the property test checks it.
//! 2. **A split call is one record, at its `resumed` line** (its [`Record::start`] is the
//!    head's line), with the argument text of the two halves joined; interleaved lines of other pids do not disturb it. A head that never
//!    resumes is an error at its own line, reported by [`Parser::finish`] (or when the same pid
//!    starts another call). Consequence for the engine: a child's first records may come
//!    *before* the parent's [`Op::Clone`] record (`vfork`, `clone3` with `CLONE_VFORK`, or any
//!    clone that is still unfinished when the child runs), so records of a pid not seen yet
//!    must wait for the clone that returns it.
//! 3. **Results.** `= N` / `= 0x...` is [`Ret::Val`] (a leading annotation `3</path>` and
//!    anything after the number, such as `-T`'s `<0.000012>` or `(flags ...)`, is dropped);
//!    `= -1 ENAME (...)` is [`Ret::Err`] with the errno number; `= ?` (also `= ? <unavailable>`,
//!    `= ? ERESTARTSYS (...)`) is [`Ret::Unknown`].
//! 4. **Only the calls the replay needs are decoded**: the memory calls of [`Op`], `clone`,
//!    `clone3`, `fork`, `vfork`, `execve` (and `execveat`), `exit_group`. Any other name is
//!    [`Op::Other`] without looking at its arguments, so exotic argument syntax never turns
//!    into an error. `pkey_mprotect` is decoded as [`Op::Mprotect`] (its key dropped).
//! 5. **Arguments** are split at top-level commas, skipping `"strings"` (C escapes),
//!    `/* comments */`, `[...]`, `{...}`, `(...)` and `-y` annotations `3</path>`. Numbers are
//!    decimal, `0x` hex or `NULL`; flags are `|`-joined names (the `script::consts` tables,
//!    plus `CLONE_*` and signal names), hex leftovers (`|0x40000`) and shifts
//!    (`21<<MAP_HUGE_SHIFT`); `-X verbose`'s `0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */` and
//!    `-X raw`'s plain numbers work too.
//! 6. **`-y` paths** are unescaped (`\76` is `>`); strace 6 prints a deleted file as
//!    `3</memfd:x>(deleted)`, older ones as `3</memfd:x (deleted)>`: both give the path
//!    `/memfd:x (deleted)`, as `/proc/PID/maps` shows it. `-yy`'s device suffix
//!    (`/dev/zero<char 1:5>`) is dropped.
//! 7. **Clone flags** carry the exit signal in their low byte, as `clone(2)` does: `clone3`'s
//!    `exit_signal` is or-ed into its `flags`, `fork` is `SIGCHLD` (17) and `vfork` is
//!    `CLONE_VM|CLONE_VFORK|SIGCHLD`.
//!
//! # Pids
//!
//! A line without a pid belongs to "the only traced process": pid 0 names the first process.
//! Without `-f` that is the whole story. With `-f` to stderr, strace writes `[pid N]` only
//! while several processes are traced; the parser then recognises the first process's real
//! pid (the first `[pid N]` that no clone returned and that is not a child running before its
//! clone returns) and reports it as 0 too, and a later pid-less line goes to the one process
//! still alive if it knows which. With `-f -o FILE` (the capture script) every line has its
//! pid and these rules never apply.

mod args;
mod line;
mod names;
mod ops;
mod parser;
mod pids;
#[cfg(test)]
mod tests;

pub use self::parser::{Parser, Stats};

/// One completed call or process event of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line where the call completed (the `resumed` line of a split call).
    pub line: usize,
    /// 1-based line where the call started: the `<unfinished ...>` line of a split call,
    /// `line` otherwise. The kernel carried the call out somewhere between the two.
    pub start: usize,
    /// The process (thread) id; 0 for "the first process" of a log without pids.
    pub pid: u64,
    /// What happened.
    pub event: Event,
}

/// What a [`Record`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A system call and its result.
    Call {
        /// The call with its decoded arguments.
        op: Op,
        /// Its result.
        ret: Ret,
    },
    /// `+++ exited with N +++`.
    Exited {
        /// The exit status.
        code: i64,
    },
    /// `+++ killed by SIGNAME +++` (with or without `(core dumped)`).
    Killed {
        /// The signal's name, as strace prints it (`SIGKILL`).
        signal: String,
    },
    /// `--- SIGNAME {...} ---`: a signal delivered to the process.
    Signal {
        /// The signal's name (`SIGCHLD`).
        name: String,
    },
}

/// The result of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// A non-negative result: an address, a size, a pid, 0.
    Val(u64),
    /// `-1 ENAME`: the errno number (12 for `ENOMEM`).
    Err(i32),
    /// `?`: the call did not return (`exit_group`, `execve` of a dying thread, a killed
    /// process).
    Unknown,
}

/// A decoded system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `mmap(addr, len, prot, flags, fd, off)`.
    Mmap {
        /// Address hint (or fixed address), 0 for `NULL`.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
        /// `MAP_*` bits (type, flags and huge-page size).
        flags: u64,
        /// The file descriptor, -1 for anonymous mappings.
        fd: i64,
        /// The file behind `fd`, from `-y` (`/usr/lib/libc.so.6`, `/memfd:x (deleted)`).
        path: Option<String>,
        /// Offset in the file.
        off: u64,
    },
    /// `munmap(addr, len)`.
    Munmap {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mprotect(addr, len, prot)` (and `pkey_mprotect`, its key dropped).
    Mprotect {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
    },
    /// `mremap(old_addr, old_len, new_len, flags[, new_addr])`.
    Mremap {
        /// Address of the mapping to resize or move.
        old_addr: u64,
        /// Its length.
        old_len: u64,
        /// The new length.
        new_len: u64,
        /// `MREMAP_*` bits.
        flags: u64,
        /// The fifth argument, present with `MREMAP_FIXED`.
        new_addr: Option<u64>,
    },
    /// `madvise(addr, len, advice)`.
    Madvise {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `MADV_*` value.
        advice: u64,
    },
    /// `brk(addr)`; 0 for `brk(NULL)`.
    Brk {
        /// The requested break.
        addr: u64,
    },
    /// `mlock(addr, len)`.
    Mlock {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mlock2(addr, len, flags)`.
    Mlock2 {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `MLOCK_*` bits.
        flags: u64,
    },
    /// `munlock(addr, len)`.
    Munlock {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mlockall(flags)`.
    Mlockall {
        /// `MCL_*` bits.
        flags: u64,
    },
    /// `munlockall()`.
    Munlockall,
    /// `msync(addr, len, flags)`.
    Msync {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `MS_*` bits.
        flags: u64,
    },
    /// `clone`, `clone3`, `fork`, `vfork`; the child's pid is the result.
    Clone {
        /// `CLONE_*` bits, with the exit signal in the low byte (rule 7).
        flags: u64,
    },
    /// `execve(path, ...)` (and `execveat(dirfd, path, ...)`).
    Execve {
        /// The program, unescaped; the raw argument text when strace could not read it.
        path: String,
    },
    /// `exit_group(code)`.
    ExitGroup {
        /// The exit status.
        code: i64,
    },
    /// Any other system call, kept so that the replay can count it as ignored.
    Other {
        /// Its name.
        name: String,
    },
}

/// A line that could not be parsed (or an unfinished call that never completed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Everything [`parse`] found in a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The records, in the order the log completes them.
    pub records: Vec<Record>,
    /// The malformed lines and never-completed calls, in the order they were found (those
    /// that [`Parser::finish`] reports come last).
    pub errors: Vec<ParseError>,
}

/// Parses a whole log, leniently: malformed lines become errors and are skipped.
pub fn parse(text: &str) -> Parsed {
    let mut parser = Parser::new();
    // A typical line is 60 to 120 bytes.
    let mut records = Vec::with_capacity(text.len() / 80);
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parser.feed(i + 1, line) {
            Some(Ok(record)) => records.push(record),
            Some(Err(error)) => errors.push(error),
            None => {}
        }
    }
    errors.extend(parser.finish());
    Parsed { records, errors }
}
