//! Calls split over two lines, and the pids of logs where some lines have none.

use super::assert_accounted;
use crate::replay::strace::{Event, Op, Parsed, Record, Ret, parse};

/// `(line, pid, op name)` of each record, for compact expectations.
fn summary(p: &Parsed) -> Vec<(usize, u64, String)> {
    p.records
        .iter()
        .map(|r| {
            let what = match &r.event {
                Event::Call {
                    op: Op::Other { name },
                    ..
                } => name.clone(),
                Event::Call { op, .. } => format!("{op:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string(),
                other => format!("{other:?}")
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            (r.line, r.pid, what)
        })
        .collect()
}

fn rec(line: usize, pid: u64, what: &str) -> (usize, u64, String) {
    (line, pid, what.to_string())
}

mod resumed {
    use super::*;

    /// Threads starting (strace -f -y -o, x.trace lines 39-62).
    const THREADS: &str = "\
13332 rt_sigprocmask(SIG_SETMASK, [],  <unfinished ...>
13333 rseq(0x7f8cc4e54fe0, 0x20, 0, 0x53053053 <unfinished ...>
13332 <... rt_sigprocmask resumed>NULL, 8) = 0
13332 mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7f8cc3e53000
13333 <... rseq resumed>)               = 0
13332 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f8cc4653990, parent_tid=0x7f8cc4653990, exit_signal=0, stack=0x7f8cc3e53000, stack_size=0x7fff80, tls=0x7f8cc46536c0} <unfinished ...>
13333 rt_sigprocmask(SIG_SETMASK, [], NULL, 8) = 0
13332 <... clone3 resumed> => {parent_tid=[13334]}, 88) = 13334
13333 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>
13334 set_robust_list(0x7f8cc46539a0, 24 <unfinished ...>
13333 <... mmap resumed>)               = 0x7f8cc5042000
13332 mprotect(0x7f8cc3653000, 8388608, PROT_READ|PROT_WRITE <unfinished ...>
13334 <... set_robust_list resumed>)    = 0
13333 madvise(0x7f8cc5042000, 4096, MADV_DONTNEED <unfinished ...>
13332 <... mprotect resumed>)           = 0
13333 <... madvise resumed>)            = 0
";

    #[test]
    fn interleaved_halves_join_at_the_resumed_line() {
        let p = assert_accounted(THREADS);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            summary(&p),
            [
                rec(3, 13332, "rt_sigprocmask"),
                rec(4, 13332, "Mmap"),
                rec(5, 13333, "rseq"),
                rec(7, 13333, "rt_sigprocmask"),
                rec(8, 13332, "Clone"),
                rec(11, 13333, "Mmap"),
                rec(13, 13334, "set_robust_list"),
                rec(15, 13332, "Mprotect"),
                rec(16, 13333, "Madvise"),
            ]
        );
        let by_line = |l: usize| p.records.iter().find(|r| r.line == l).unwrap().clone();
        // Each record spans from its head's line to its result's; an unsplit call is one line.
        let spans: Vec<(usize, usize)> = p.records.iter().map(|r| (r.start, r.line)).collect();
        assert_eq!(
            spans,
            [
                (1, 3),
                (4, 4),
                (2, 5),
                (7, 7),
                (6, 8),
                (9, 11),
                (10, 13),
                (12, 15),
                (14, 16)
            ]
        );
        assert_eq!(
            by_line(8).event,
            Event::Call {
                op: Op::Clone { flags: 0x003d_0f00 },
                ret: Ret::Val(13334)
            }
        );
        assert_eq!(
            by_line(11),
            Record {
                line: 11,
                start: 9,
                pid: 13333,
                event: Event::Call {
                    op: Op::Mmap {
                        addr: 0,
                        len: 4096,
                        prot: 3,
                        flags: 0x22,
                        fd: -1,
                        path: None,
                        off: 0
                    },
                    ret: Ret::Val(0x7f8c_c504_2000)
                }
            }
        );
        assert_eq!(
            by_line(15).event,
            Event::Call {
                op: Op::Mprotect {
                    addr: 0x7f8c_c365_3000,
                    len: 8_388_608,
                    prot: 3
                },
                ret: Ret::Val(0)
            }
        );
    }

    #[test]
    fn oldest_pending_is_the_first_head_still_unresumed() {
        let mut parser = crate::replay::strace::Parser::new();
        let oldest: Vec<Option<usize>> = THREADS
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let _ = parser.feed(i + 1, l);
                parser.oldest_pending()
            })
            .collect();
        let at = |l: &[usize]| l.iter().map(|&n| (n != 0).then_some(n)).collect::<Vec<_>>();
        assert_eq!(
            oldest,
            at(&[1, 1, 2, 2, 0, 6, 6, 0, 9, 9, 10, 10, 12, 12, 14, 0])
        );
    }

    #[test]
    fn a_child_may_run_before_its_clone_returns() {
        // vfork (x.trace 1023-1026) and posix_spawn's clone3 (sp.trace 16-20).
        let p = assert_accounted(
            "13332 vfork( <unfinished ...>\n\
             13337 exit_group(0)                     = ?\n\
             13337 +++ exited with 0 +++\n\
             13332 <... vfork resumed>)              = 13337\n\
             21306 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f24ccfee000, stack_size=0x9000}, 88 <unfinished ...>\n\
             21307 execve(\"/bin/true\", [\"/bin/true\"], 0x7fffbb139418 /* 39 vars */ <unfinished ...>\n\
             21306 <... clone3 resumed>)             = 21307\n\
             21307 <... execve resumed>)             = 0\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            summary(&p),
            [
                rec(2, 13337, "ExitGroup"),
                rec(3, 13337, "Exited"),
                rec(4, 13332, "Clone"),
                rec(7, 21306, "Clone"),
                rec(8, 21307, "Execve"),
            ]
        );
        assert_eq!(
            p.records[3].event,
            Event::Call {
                op: Op::Clone { flags: 0x4111 },
                ret: Ret::Val(21307)
            }
        );
    }

    #[test]
    fn a_call_strace_cannot_name_is_other() {
        // mtchurn: exit_group kills a thread as it enters a call.
        let p = assert_accounted(
            "9098  ???( <unfinished ...>\n\
             9097  <... munmap resumed>)             = ? <unavailable>\n\
             9098  <... ??? resumed>)                = ?\n",
        );
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].line, 2);
        assert_eq!(summary(&p), [rec(3, 9098, "???")]);
        assert_eq!(
            p.records[0].event,
            Event::Call {
                op: Op::Other { name: "???".into() },
                ret: Ret::Unknown
            }
        );
    }

    #[test]
    fn a_call_cut_by_death_resumes_with_unknown() {
        // e2.trace: the other threads die while the exec'ing one replaces the leader.
        let p = assert_accounted(
            "13916 clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=50000000},  <unfinished ...>\n\
             13918 execve(\"/bin/true\", [\"/bin/true\"], 0x7fff80061d10 /* 39 vars */ <unfinished ...>\n\
             13916 <... clock_nanosleep resumed> <unfinished ...>) = ?\n\
             13917 <... pause resumed>)              = ?\n\
             13917 +++ exited with 0 +++\n\
             13916 +++ superseded by execve in pid 13918 +++\n\
             13916 <... execve resumed>)             = 0\n\
             13916 munmap(0x1000, 4096 <unfinished ...>\n\
             13916 <... munmap resumed> <unfinished ...>) = ?\n",
        );
        // The `pause` head is not in this excerpt: one error, at its resumed line.
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].line, 4);
        assert_eq!(
            summary(&p),
            [
                rec(3, 13916, "clock_nanosleep"),
                rec(5, 13917, "Exited"),
                rec(7, 13916, "Execve"),
                rec(9, 13916, "Munmap"),
            ]
        );
        assert_eq!(
            p.records[2].event,
            Event::Call {
                op: Op::Execve {
                    path: "/bin/true".into()
                },
                ret: Ret::Val(0)
            }
        );
        assert_eq!(
            p.records[3].event,
            Event::Call {
                op: Op::Munmap {
                    addr: 0x1000,
                    len: 4096
                },
                ret: Ret::Unknown
            }
        );
    }

    #[test]
    fn orphans_and_mismatches_are_errors_at_their_lines() {
        let p = assert_accounted(
            "1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0 <unfinished ...>\n\
             1 munmap(0x1000, 4096 <unfinished ...>\n\
             2 <... munmap resumed>) = 0\n\
             1 <... mprotect resumed>) = 0\n\
             3 brk(NULL <unfinished ...>\n",
        );
        assert!(p.records.is_empty());
        let errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "line 1: mmap: unfinished call never resumed (pid 1 started another at line 2)",
                "line 3: <... munmap resumed> without an unfinished call of pid 2",
                "line 4: <... mprotect resumed> but the unfinished call of pid 1 (line 2) is munmap",
                "line 5: brk: unfinished call of pid 3 never resumed",
            ]
        );
    }

    #[test]
    fn exit_group_followed_by_nothing() {
        let p = assert_accounted(
            "3351  munmap(0x2000, 0)                 = -1 EINVAL (Invalid argument)\n\
             3351  exit_group(0)                     = ?\n",
        );
        assert!(p.errors.is_empty());
        assert_eq!(
            summary(&p),
            [rec(1, 3351, "Munmap"), rec(2, 3351, "ExitGroup")]
        );
    }
}

mod pids {
    use super::*;

    /// strace -f to stderr, without -q (y.trace 36-45 and 1024-1031): `[pid N]` only while
    /// several processes are traced, and strace's note cutting lines in two.
    const STDERR: &str = "\
02:35:25.812438 brk(0x5653cfb64000)     = 0x5653cfb64000 <0.000035>
02:35:25.812603 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f596bb0f990, parent_tid=0x7f596bb0f990, exit_signal=0, stack=0x7f596b30f000, stack_size=0x7fff80, tls=0x7f596bb0f6c0}strace: Process 13664 attached
 => {parent_tid=[13664]}, 88) = 13664 <0.000074>
[pid 13663] 02:35:25.812713 rt_sigprocmask(SIG_SETMASK, [],  <unfinished ...>
[pid 13664] 02:35:25.812727 rseq(0x7f596bb0ffe0, 0x20, 0, 0x53053053 <unfinished ...>
[pid 13663] 02:35:25.812742 <... rt_sigprocmask resumed>NULL, 8) = 0 <0.000018>
[pid 13663] 02:35:25.812754 mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0 <unfinished ...>
[pid 13664] 02:35:25.812761 <... rseq resumed>) = 0 <0.000028>
[pid 13663] 02:35:25.812780 <... mmap resumed>) = 0x7f596ab0e000 <0.000022>
[pid 13664] 02:35:25.836950 +++ exited with 3 +++
02:35:25.836955 <... wait4 resumed>NULL, 0, NULL) = 13667 <0.000907>
02:35:25.836983 vfork(strace: Process 13668 attached
 <unfinished ...>
[pid 13668] 02:35:25.837092 exit_group(0) = ?
[pid 13663] 02:35:25.837173 <... vfork resumed>) = 13668 <0.000185>
[pid 13668] 02:35:25.837178 +++ exited with 0 +++
02:35:25.837188 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=13668, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
";

    #[test]
    fn the_first_process_is_zero_under_both_names() {
        let p = assert_accounted(STDERR);
        // The excerpt starts a wait4 head-less.
        let errors: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(errors, [11]);
        assert_eq!(
            summary(&p),
            [
                rec(1, 0, "Brk"),
                rec(3, 0, "Clone"),
                rec(6, 0, "rt_sigprocmask"),
                rec(8, 13664, "rseq"),
                rec(9, 0, "Mmap"),
                rec(10, 13664, "Exited"),
                rec(14, 13668, "ExitGroup"),
                rec(15, 0, "Clone"),
                rec(16, 13668, "Exited"),
                rec(17, 0, "Signal"),
            ]
        );
        assert_eq!(
            p.records[1].event,
            Event::Call {
                op: Op::Clone { flags: 0x003d_0f00 },
                ret: Ret::Val(13664)
            }
        );
    }

    #[test]
    fn without_f_everything_is_zero() {
        let p = parse(
            "execve(\"/usr/bin/ls\", [\"ls\"], 0x7ffcb51f2140 /* 39 vars */) = 0\n\
             brk(NULL)                      = 0x5576a8009000\n\
             clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f8cc4e55a10) = 13336\n\
             wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 13336\n\
             exit_group(0)                  = ?\n\
             +++ exited with 0 +++\n",
        );
        assert!(p.errors.is_empty());
        assert_eq!(p.records.len(), 6);
        assert!(p.records.iter().all(|r| r.pid == 0));
    }

    #[test]
    fn a_cut_line_never_continued_is_an_error() {
        let p = assert_accounted("02:35:25.836983 vfork(strace: Process 13668 attached\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 1);
    }
}
