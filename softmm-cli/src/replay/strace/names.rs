//! The names strace prints that `script::consts` does not know: `CLONE_*` flags, signal
//! names (a clone's exit signal), and the kernel-internal errnos strace may show.
//!
//! Name resolution tries the caller's tables first (so `PROT_READ` is found among six
//! entries, not a hundred and fifty), then [`consts::lookup`](crate::script::consts::lookup)
//! for aliases and `MAP_HUGE_*`, then the tables here.

use crate::script::{consts, errno};

/// `CLONE_*` bits (`linux/sched.h`), for `clone`'s `flags=` and `clone3`'s `{flags=...}`.
pub(super) const CLONE: &[(&str, u64)] = &[
    ("CLONE_NEWTIME", 0x80),
    ("CLONE_VM", 0x100),
    ("CLONE_FS", 0x200),
    ("CLONE_FILES", 0x400),
    ("CLONE_SIGHAND", 0x800),
    ("CLONE_PIDFD", 0x1000),
    ("CLONE_PTRACE", 0x2000),
    ("CLONE_VFORK", 0x4000),
    ("CLONE_PARENT", 0x8000),
    ("CLONE_THREAD", 0x10000),
    ("CLONE_NEWNS", 0x20000),
    ("CLONE_SYSVSEM", 0x40000),
    ("CLONE_SETTLS", 0x80000),
    ("CLONE_PARENT_SETTID", 0x10_0000),
    ("CLONE_CHILD_CLEARTID", 0x20_0000),
    ("CLONE_DETACHED", 0x40_0000),
    ("CLONE_UNTRACED", 0x80_0000),
    ("CLONE_CHILD_SETTID", 0x100_0000),
    ("CLONE_NEWCGROUP", 0x200_0000),
    ("CLONE_NEWUTS", 0x400_0000),
    ("CLONE_NEWIPC", 0x800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
    ("CLONE_IO", 0x8000_0000),
    ("CLONE_CLEAR_SIGHAND", 0x1_0000_0000),
    ("CLONE_INTO_CGROUP", 0x2_0000_0000),
];

/// `SIGCHLD`: `fork`'s flags.
pub(super) const SIGCHLD: u64 = 17;

/// `CLONE_VM|CLONE_VFORK|SIGCHLD`: `vfork`'s flags.
pub(super) const VFORK_FLAGS: u64 = 0x100 | 0x4000 | SIGCHLD;

/// Signal numbers (x86-64), with the aliases strace may print.
const SIGNALS: &[(&str, u64)] = &[
    ("SIGCHLD", 17),
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGIOT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPOLL", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
    ("SIGRTMIN", 32),
    ("SIGRTMAX", 64),
];

/// The kernel's own signal base: strace prints signal 33 as `SIGRT_1`.
const SIGRT_BASE: u64 = 32;

/// Kernel-internal errnos (`linux/errno.h`), which strace prints by name.
const KERNEL_ERRNOS: &[(&str, i32)] = &[
    ("ERESTARTSYS", 512),
    ("ERESTARTNOINTR", 513),
    ("ERESTARTNOHAND", 514),
    ("ENOIOCTLCMD", 515),
    ("ERESTART_RESTARTBLOCK", 516),
    ("EPROBE_DEFER", 517),
    ("EOPENSTALE", 518),
    ("ENOPARAM", 519),
    ("EBADHANDLE", 521),
    ("ENOTSYNC", 522),
    ("EBADCOOKIE", 523),
    ("ENOTSUPP", 524),
    ("ETOOSMALL", 525),
    ("ESERVERFAULT", 526),
    ("EBADTYPE", 527),
    ("EJUKEBOX", 528),
    ("EIOCBQUEUED", 529),
    ("ERECALLCONFLICT", 530),
];

/// The value of a flag or constant name: `tables` first, then every name strace may use.
pub(super) fn resolve(name: &str, tables: &[&[(&str, u64)]]) -> Option<u64> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .or_else(|| consts::lookup(name))
        .or_else(|| CLONE.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
        .or_else(|| signal(name))
}

/// A signal's number by name (`SIGCHLD`, `SIGRT_3`).
pub(super) fn signal(name: &str) -> Option<u64> {
    if let Some(n) = name.strip_prefix("SIGRT_") {
        return super::line::decimal(n)
            .filter(|&n| n <= 32)
            .map(|n| SIGRT_BASE + n);
    }
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// An errno's number by name: glibc's names, the kernel-internal ones, and strace's
/// `ERRNO_N` for numbers without a name.
pub(super) fn errno_number(name: &str) -> Option<i32> {
    if let Some(n) = name.strip_prefix("ERRNO_") {
        return super::line::decimal(n).and_then(|n| i32::try_from(n).ok());
    }
    errno::errno_by_name(name).or_else(|| {
        KERNEL_ERRNOS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| *e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_and_signal_names() {
        assert_eq!(resolve("CLONE_VM", &[]), Some(0x100));
        assert_eq!(resolve("CLONE_CHILD_SETTID", &[]), Some(0x100_0000));
        assert_eq!(resolve("SIGCHLD", &[CLONE]), Some(17));
        assert_eq!(signal("SIGRT_1"), Some(33));
        assert_eq!(signal("SIGRTMIN"), Some(32));
        assert_eq!(signal("SIGRT_99"), None);
        assert_eq!(signal("SIGFOO"), None);
    }

    #[test]
    fn consts_names_through_the_fallback() {
        assert_eq!(resolve("MAP_ANON", &[consts::MAP_BITS]), Some(0x20));
        assert_eq!(resolve("PROT_NONE", &[consts::PROT]), Some(0));
        assert_eq!(resolve("MAP_HUGE_SHIFT", &[]), Some(26));
        assert_eq!(resolve("MAP_HUGE_2MB", &[]), Some(21 << 26));
        assert_eq!(resolve("NOPE", &[consts::PROT]), None);
    }

    #[test]
    fn errnos() {
        assert_eq!(errno_number("ENOMEM"), Some(12));
        assert_eq!(errno_number("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_number("ERESTARTSYS"), Some(512));
        assert_eq!(errno_number("ERRNO_4000"), Some(4000));
        assert_eq!(errno_number("ERRNO_"), None);
        assert_eq!(errno_number("EBOGUS"), None);
    }
}
