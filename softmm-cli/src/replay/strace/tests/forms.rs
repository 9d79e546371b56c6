//! One line, one record: the exact values each line form decodes to.

use super::{call, error, one, op};
use crate::replay::strace::{Event, Op, Ret, parse};

mod prefix {
    use super::*;

    const BODY: &str = "munmap(0x7f1ef2749000, 33699) = 0";

    #[track_caller]
    fn pid_of(line: &str) -> u64 {
        let r = one(line);
        assert_eq!(
            r.event,
            Event::Call {
                op: Op::Munmap {
                    addr: 0x7f1e_f274_9000,
                    len: 33699
                },
                ret: Ret::Val(0)
            },
            "{line}"
        );
        r.pid
    }

    #[test]
    fn pid_forms() {
        assert_eq!(pid_of(&format!("3351  {BODY}")), 3351);
        assert_eq!(pid_of(&format!("13332 {BODY}")), 13332);
        assert_eq!(pid_of(&format!("[pid  1234] {BODY}")), 1234);
        assert_eq!(pid_of(&format!("[pid 13663] {BODY}")), 13663);
        // No pid (no -f): the first process.
        assert_eq!(pid_of(BODY), 0);
    }

    #[test]
    fn timestamps_and_ip() {
        assert_eq!(pid_of(&format!("02:35:25 {BODY}")), 0);
        assert_eq!(pid_of(&format!("02:35:25.812713 {BODY}")), 0);
        assert_eq!(pid_of(&format!("1795574125.847019 {BODY}")), 0);
        assert_eq!(pid_of(&format!("     0.000123 {BODY}")), 0);
        assert_eq!(pid_of(&format!("3351  02:35:25.812713 {BODY}")), 3351);
        assert_eq!(pid_of(&format!("3351  1795574125.847019 {BODY}")), 3351);
        assert_eq!(
            pid_of(&format!("[pid 13663] 02:35:25.812713 {BODY}")),
            13663
        );
        assert_eq!(pid_of(&format!("3351  [00007f8cc4e7e123] {BODY}")), 3351);
        assert_eq!(pid_of(&format!("3351  {BODY}\r")), 3351);
    }

    #[test]
    fn blank_and_notes_are_ignored() {
        let p = parse(
            "\n   \nstrace: Process 13667 attached\n[ Process PID=5 runs in 32 bit mode. ]\n\
             13332 --- stopped by SIGSTOP ---\n",
        );
        assert_eq!(p, Default::default());
    }
}

mod results {
    use super::*;

    #[track_caller]
    fn ret(line: &str) -> Ret {
        call(line).1
    }

    #[test]
    fn values_errors_and_unknown() {
        assert_eq!(
            ret("3351  brk(NULL)                         = 0x55ec6821c000"),
            Ret::Val(0x55ec_6821_c000)
        );
        assert_eq!(
            ret("3351  munmap(0x7f1ef2749000, 33699)     = 0"),
            Ret::Val(0)
        );
        assert_eq!(
            ret("3351  munmap(0x1000, 0)                 = -1 EINVAL (Invalid argument)"),
            Ret::Err(22)
        );
        assert_eq!(
            ret(
                "13332 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|0x400000, -1, 0) = -1 ENOMEM (Cannot allocate memory)"
            ),
            Ret::Err(12)
        );
        // strace's name for an errno number without one.
        assert_eq!(
            ret("1 munmap(0x1000, 0) = -1 ERRNO_4000 (Unknown error 4000)"),
            Ret::Err(4000)
        );
        assert_eq!(
            ret("3351  exit_group(0)                     = ?"),
            Ret::Unknown
        );
        // strace 5.5+ when the process vanished; ERESTARTSYS for a restarted call.
        assert_eq!(
            ret("1234  munmap(0x1000, 4096) = ? <unavailable>"),
            Ret::Unknown
        );
        assert_eq!(
            ret(
                "1234  wait4(-1, 0x7ffd4d54a0dc, 0, NULL) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"
            ),
            Ret::Unknown
        );
    }

    #[test]
    fn annotations_and_suffixes_after_the_value() {
        assert_eq!(
            ret("13332 openat(AT_FDCWD</tmp/st>, \"/dev/zero\", O_RDONLY) = 3</dev/zero>"),
            Ret::Val(3)
        );
        assert_eq!(
            ret("13332 memfd_create(\"my mem>fd\", MFD_CLOEXEC) = 3</memfd:my mem\\76fd>(deleted)"),
            Ret::Val(3)
        );
        assert_eq!(
            ret("02:35:25.809254 brk(NULL)               = 0x5653cfb43000 <0.000034>"),
            Ret::Val(0x5653_cfb4_3000)
        );
        assert_eq!(
            ret("13332 set_tid_address(0x7f8cc4e55a10)   = 13332"),
            Ret::Val(13332)
        );
    }
}

mod memory_calls {
    use super::*;

    #[test]
    fn mmap_anonymous_and_file() {
        assert_eq!(
            op(
                "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1ef2752000"
            ),
            Op::Mmap {
                addr: 0,
                len: 8192,
                prot: 3,
                flags: 0x22,
                fd: -1,
                path: None,
                off: 0
            }
        );
        assert_eq!(
            op(
                "3363  mmap(0x7f1ef2201000, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3</usr/local/lib/libdumpmaps.so>, 0x1000) = 0x7f1ef2201000"
            ),
            Op::Mmap {
                addr: 0x7f1e_f220_1000,
                len: 4096,
                prot: 5,
                flags: 0x812,
                fd: 3,
                path: Some("/usr/local/lib/libdumpmaps.so".into()),
                off: 0x1000,
            }
        );
    }

    #[track_caller]
    fn mmap_path(line: &str) -> Option<String> {
        match op(line) {
            Op::Mmap { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mmap_paths_from_y() {
        // strace 6 escapes `>` in paths and prints `(deleted)` after the annotation.
        assert_eq!(
            mmap_path(
                "13332 mmap(NULL, 8192, PROT_READ, MAP_SHARED, 3</memfd:my mem\\76fd>(deleted), 0) = 0x7f8cc5041000"
            ),
            Some("/memfd:my mem>fd (deleted)".into())
        );
        assert_eq!(
            mmap_path(
                "13332 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4</tmp/st/dir with space\\76x/file>, 0) = 0x7f8cc503f000"
            ),
            Some("/tmp/st/dir with space>x/file".into())
        );
        assert_eq!(
            mmap_path(
                "mmap(NULL, 4096, PROT_READ, MAP_SHARED, 4</memfd:a\\\"b\\\\c\\n>(deleted), 0) = 0x7f4a8c8d6000"
            ),
            Some("/memfd:a\"b\\c\n (deleted)".into())
        );
        // -yy: the device suffix is dropped.
        assert_eq!(
            mmap_path(
                "mmap(NULL, 4096, PROT_READ|0x10, MAP_PRIVATE, 3</dev/zero<char 1:5>>, 0) = 0x7f4a8c8d7000"
            ),
            Some("/dev/zero".into())
        );
        // Older strace: (deleted) inside, `>` and `, ` unescaped (hand-written).
        assert_eq!(
            mmap_path(
                "1  mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3</memfd:name (deleted)>, 0) = 0x1000"
            ),
            Some("/memfd:name (deleted)".into())
        );
        assert_eq!(
            mmap_path("1  mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3</a>b,c/d>, 0) = 0x1000"),
            Some("/a>b,c/d".into())
        );
    }

    #[test]
    fn mmap_flag_forms() {
        // Hex leftovers, huge-page shifts, -X raw, -X verbose.
        let flags = |line: &str| match op(line) {
            Op::Mmap { prot, flags, .. } => (prot, flags),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            flags(
                "1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|0x40000, -1, 0) = 0x1000"
            ),
            (3, 0x40022)
        );
        assert_eq!(
            flags(
                "mmap(NULL, 2097152, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT, -1, 0) = -1 ENOMEM (Cannot allocate memory)"
            ),
            (1, 0x22 | 0x40000 | 21 << 26)
        );
        assert_eq!(
            flags(
                "mmap(NULL, 8192, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE|16<<MAP_HUGE_SHIFT, -1, 0) = 0"
            ),
            (0, 0x100021 | 16 << 26)
        );
        assert_eq!(
            flags(
                "mmap(NULL, 4096, 0x1, 0x1, 4</memfd:a\\\"b\\\\c\\n>(deleted), 0) = 0x7f9796484000"
            ),
            (1, 1)
        );
        assert_eq!(
            flags(
                "mmap(NULL, 4096, 0x1 /* PROT_READ */, 0x11 /* MAP_SHARED|MAP_FIXED */, 77, 0xfffffffffffff000) = -1 EBADF (Bad file descriptor)"
            ),
            (1, 0x11)
        );
    }

    #[test]
    fn unmap_protect_remap() {
        assert_eq!(
            op("3351  munmap(0x1000, 0)                 = -1 EINVAL (Invalid argument)"),
            Op::Munmap {
                addr: 0x1000,
                len: 0
            }
        );
        assert_eq!(
            op("3363  mprotect(0x7f66c2ded000, 16384, PROT_READ) = 0"),
            Op::Mprotect {
                addr: 0x7f66_c2de_d000,
                len: 16384,
                prot: 1
            }
        );
        assert_eq!(
            op(
                "mprotect(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC|PROT_SEM|PROT_GROWSDOWN) = -1 EINVAL (Invalid argument)"
            ),
            Op::Mprotect {
                addr: 0,
                len: 4096,
                prot: 0x0100_000f
            }
        );
        // pkey_mprotect is decoded as mprotect (hand-written).
        assert_eq!(
            op("1  pkey_mprotect(0x7f0000000000, 4096, PROT_READ, 1) = 0"),
            Op::Mprotect {
                addr: 0x7f00_0000_0000,
                len: 4096,
                prot: 1
            }
        );
        assert_eq!(
            op("4277  mremap(0x7f127051b000, 135168, 266240, MREMAP_MAYMOVE) = 0x7f12704b9000"),
            Op::Mremap {
                old_addr: 0x7f12_7051_b000,
                old_len: 135_168,
                new_len: 266_240,
                flags: 1,
                new_addr: None
            }
        );
        assert_eq!(
            op(
                "13332 mremap(0x7f8cc5041000, 8192, 16384, MREMAP_MAYMOVE|MREMAP_FIXED, 0x700000000000) = 0x700000000000"
            ),
            Op::Mremap {
                old_addr: 0x7f8c_c504_1000,
                old_len: 8192,
                new_len: 16384,
                flags: 3,
                new_addr: Some(0x7000_0000_0000)
            }
        );
        assert_eq!(
            op("mremap(NULL, 4096, 4096, 0)             = 0"),
            Op::Mremap {
                old_addr: 0,
                old_len: 4096,
                new_len: 4096,
                flags: 0,
                new_addr: None
            }
        );
    }

    #[test]
    fn advice_brk_locks_sync() {
        let cases = [
            (
                "13333 madvise(0x7f8cc5042000, 4096, MADV_DONTNEED) = 0",
                Op::Madvise {
                    addr: 0x7f8c_c504_2000,
                    len: 4096,
                    advice: 4,
                },
            ),
            (
                "madvise(NULL, 4096, 0x3e8 /* MADV_??? */) = -1 EINVAL (Invalid argument)",
                Op::Madvise {
                    addr: 0,
                    len: 4096,
                    advice: 1000,
                },
            ),
            (
                "3351  brk(NULL)                         = 0x55ec6821c000",
                Op::Brk { addr: 0 },
            ),
            (
                "3363  brk(0x5608b4aaf000)               = 0x5608b4aaf000",
                Op::Brk {
                    addr: 0x5608_b4aa_f000,
                },
            ),
            (
                "13332 mlock(0x7f8cc5041000, 4096)       = 0",
                Op::Mlock {
                    addr: 0x7f8c_c504_1000,
                    len: 4096,
                },
            ),
            (
                "13332 mlock2(0x7f8cc5041000, 4096, MLOCK_ONFAULT) = 0",
                Op::Mlock2 {
                    addr: 0x7f8c_c504_1000,
                    len: 4096,
                    flags: 1,
                },
            ),
            (
                "13332 munlock(0x7f8cc5041000, 4096)     = 0",
                Op::Munlock {
                    addr: 0x7f8c_c504_1000,
                    len: 4096,
                },
            ),
            (
                "13332 mlockall(MCL_CURRENT|MCL_FUTURE)  = 0",
                Op::Mlockall { flags: 3 },
            ),
            (
                "mlockall(0)                             = -1 EINVAL (Invalid argument)",
                Op::Mlockall { flags: 0 },
            ),
            (
                "13332 munlockall()                      = 0",
                Op::Munlockall,
            ),
            (
                "13332 msync(0x7f8cc5041000, 4096, MS_ASYNC|MS_INVALIDATE) = 0",
                Op::Msync {
                    addr: 0x7f8c_c504_1000,
                    len: 4096,
                    flags: 3,
                },
            ),
            (
                "msync(NULL, 4096, 0)                    = 0",
                Op::Msync {
                    addr: 0,
                    len: 4096,
                    flags: 0,
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(op(line), want, "{line}");
        }
    }
}

mod processes {
    use super::*;

    #[test]
    fn clone_fork_vfork() {
        assert_eq!(
            call(
                "13332 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f8cc4e55a10) = 13336"
            ),
            (
                Op::Clone {
                    flags: 0x0120_0000 | 17
                },
                Ret::Val(13336)
            )
        );
        assert_eq!(
            call(
                "13332 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f8cc4e54990, parent_tid=0x7f8cc4e54990, exit_signal=0, stack=0x7f8cc4654000, stack_size=0x7fff80, tls=0x7f8cc4e546c0} => {parent_tid=[13333]}, 88) = 13333"
            ),
            (Op::Clone { flags: 0x003d_0f00 }, Ret::Val(13333))
        );
        // posix_spawn: the exit signal is or-ed into the flags.
        assert_eq!(
            op(
                "1 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f24ccfee000, stack_size=0x9000}, 88) = 21307"
            ),
            Op::Clone { flags: 0x4111 }
        );
        assert_eq!(
            op("1238  fork()                            = 1239"),
            Op::Clone { flags: 17 }
        );
        assert_eq!(
            op("1237  vfork()                           = 1238"),
            Op::Clone { flags: 0x4111 }
        );
        // -X raw prints clone's flags as its first argument (hand-written).
        assert_eq!(
            op("1 clone(0x1200011, 0, 0, 0x7f8cc4e55a10, 0) = 2"),
            Op::Clone { flags: 0x0120_0011 }
        );
    }

    #[test]
    fn execve_and_exit_group() {
        assert_eq!(
            call(
                "3363  execve(\"/opt/python/bin/python3.11\", [\"/opt/python/bin\"..., \"-c\", \"import json,random; d=[random.ra\"...], 0x7fffc70431b8 /* 37 vars */) = 0"
            ),
            (
                Op::Execve {
                    path: "/opt/python/bin/python3.11".into()
                },
                Ret::Val(0)
            )
        );
        assert_eq!(
            call(
                "21037 execve(\"/root/.cargo/bin/bash\", [\"bash\", \"/root/.pyenv/shims/python3\", \"-c\", \"\\nimport os, threading, mmap\\ndef \"...], 0x7ffef7692fe8 /* 39 vars */) = -1 ENOENT (No such file or directory)"
            ),
            (
                Op::Execve {
                    path: "/root/.cargo/bin/bash".into()
                },
                Ret::Err(2)
            )
        );
        assert_eq!(
            op("1 execveat(AT_FDCWD</tmp>, \"a\\\"b\", [\"a\"], NULL, 0) = 0"),
            Op::Execve {
                path: "a\"b".into()
            }
        );
        assert_eq!(
            call("13336 exit_group(3)                     = ?"),
            (Op::ExitGroup { code: 3 }, Ret::Unknown)
        );
        assert_eq!(
            op("13336 exit_group(-1)                    = ?"),
            Op::ExitGroup { code: -1 }
        );
    }

    #[test]
    fn exits_kills_and_signals() {
        let event = |line: &str| one(line).event;
        assert_eq!(
            event("13336 +++ exited with 3 +++"),
            Event::Exited { code: 3 }
        );
        assert_eq!(
            event("13338 +++ killed by SIGKILL +++"),
            Event::Killed {
                signal: "SIGKILL".into()
            }
        );
        assert_eq!(
            event("13339 +++ killed by SIGABRT (core dumped) +++"),
            Event::Killed {
                signal: "SIGABRT".into()
            }
        );
        assert_eq!(
            event(
                "13332 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_DUMPED, si_pid=13339, si_uid=0, si_status=SIGABRT, si_utime=0, si_stime=2 /* 0.02 s */} ---"
            ),
            Event::Signal {
                name: "SIGCHLD".into()
            }
        );
        assert_eq!(
            event(
                "02:35:25.838635 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_KILLED, si_pid=13669, si_uid=0, si_status=SIGKILL, si_utime=0, si_stime=0} ---"
            ),
            Event::Signal {
                name: "SIGCHLD".into()
            }
        );
    }

    #[test]
    fn other_calls_keep_their_name_only() {
        assert_eq!(
            call(
                "13332 read(3</usr/lib/x86_64-linux-gnu/libc.so.6>, \"\\177ELF\\2\\1\\1\\3\\0\\0\\0\\0\\0\\0\\0\\0\\3\\0>\\0\\1\\0\\0\\0\\20t\\2\\0\\0\\0\\0\\0\"..., 832) = 832"
            ),
            (
                Op::Other {
                    name: "read".into()
                },
                Ret::Val(832)
            )
        );
        assert_eq!(
            call(
                "1795574125.853523 wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 13677"
            ),
            (
                Op::Other {
                    name: "wait4".into()
                },
                Ret::Val(13677)
            )
        );
        assert_eq!(
            op("1 restart_syscall(<... resuming interrupted read ...>) = 0"),
            Op::Other {
                name: "restart_syscall".into()
            }
        );
        // A string holding ` = ` and `)`: the result is the last `) = `.
        assert_eq!(
            call("1 write(1, \"f(x) = 5\\n\", 9) = 9"),
            (
                Op::Other {
                    name: "write".into()
                },
                Ret::Val(9)
            )
        );
    }
}

mod malformed {
    use super::*;

    #[test]
    fn cut_lines() {
        for line in [
            "3351  mmap(NULL, 8192, PROT_READ|PROT_WR",
            "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) =",
            "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = ",
            "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 EN",
            "3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, 3</usr/lib/x",
            "3351",
            "3351  ",
            "33",
            "3351  exit_gr",
            "3351  +++ exited with 0",
            "3351  --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD",
        ] {
            let e = error(line);
            assert_eq!(e.line, 1, "{line}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let msg = |line: &str| error(line).to_string();
        assert_eq!(
            msg("1 mmap(NULL, 8192, PROT_READ|PROT_BOGUS, MAP_PRIVATE, -1, 0) = 0x1000"),
            "line 1: mmap: argument 3: unknown flag `PROT_BOGUS`"
        );
        assert_eq!(
            msg("1 munmap(0x1000) = 0"),
            "line 1: munmap: expected 2 arguments, found 1"
        );
        assert_eq!(
            msg("1 brk(0x12g) = 0"),
            "line 1: brk: argument 1: bad number `0x12g`"
        );
        assert_eq!(
            msg("1 brk(NULL) = -1 EBOGUS (Bogus)"),
            "line 1: brk: unknown errno `EBOGUS`"
        );
        assert_eq!(
            msg("1 mmap(NULL, 1, PROT_READ, MAP_SHARED, 3</a, 0) = 0x1000"),
            "line 1: mmap: unterminated `<...>` annotation"
        );
        assert_eq!(
            msg("hello world"),
            "line 1: expected `name(` at `hello world`"
        );
        assert_eq!(
            msg("1 +++ vanished +++"),
            "line 1: unknown `+++ vanished +++` line"
        );
    }

    #[test]
    fn non_ascii_text_never_splits_a_character() {
        // Found by the property test: a multi-byte character right before `=`.
        assert_eq!(error("1 f(é= 1").line, 1);
        assert_eq!(
            error("1 mmap(é, 1, PROT_READ, MAP_SHARED, 3</é>, 0) = 0x1000").line,
            1
        );
        assert_eq!(
            call("1 write(1, \"é = ü\", 7) = 7"),
            (
                Op::Other {
                    name: "write".into()
                },
                Ret::Val(7)
            )
        );
    }
}
