//! Excerpts of real traces parse without an error: the three shared traces
//! (`shared/traces/{ls,perl,python}/trace`, captured with `capture-trace.sh`) and a Python
//! run with threads and a fork, captured the same way.

use super::assert_accounted;
use crate::replay::strace::{Event, Op, Parsed, Ret};

/// `shared/traces/ls/trace`, lines 1-6, 30-36 and 44-49.
const LS: &str = r#"3351  execve("/usr/bin/ls", ["ls", "-la", "/usr/lib"], 0x7ffe3d061ac8 /* 37 vars */) = 0
3351  brk(NULL)                         = 0x55ec6821c000
3351  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1ef2752000
3351  mmap(NULL, 4210816, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3</usr/local/lib/libdumpmaps.so>, 0) = 0x7f1ef2200000
3351  mmap(0x7f1ef2201000, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3</usr/local/lib/libdumpmaps.so>, 0x1000) = 0x7f1ef2201000
3351  mmap(0x7f1ef2202000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3</usr/local/lib/libdumpmaps.so>, 0x2000) = 0x7f1ef2202000
3351  mprotect(0x7f1ef278d000, 8192, PROT_READ) = 0
3351  munmap(0x7f1ef2749000, 33699)     = 0
3351  brk(NULL)                         = 0x55ec6821c000
3351  brk(0x55ec6823d000)               = 0x55ec6823d000
3351  mmap(NULL, 258, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_IDENTIFICATION>, 0) = 0x7f1ef2751000
3351  mmap(NULL, 27028, PROT_READ, MAP_SHARED, 3</usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache>, 0) = 0x7f1ef274a000
3351  mmap(NULL, 23, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_MEASUREMENT>, 0) = 0x7f1ef2749000
3351  mmap(NULL, 3360, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_TIME>, 0) = 0x7f1ef2677000
3351  mmap(NULL, 50, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_NUMERIC>, 0) = 0x7f1ef2676000
3351  mmap(NULL, 353616, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_CTYPE>, 0) = 0x7f1ef261f000
3351  munmap(0x1000, 0)                 = -1 EINVAL (Invalid argument)
3351  munmap(0x2000, 0)                 = -1 EINVAL (Invalid argument)
3351  exit_group(0)                     = ?
"#;

/// `shared/traces/perl/trace`, lines 1-2, 39-42, 60-64 and 292-295.
const PERL: &str = r#"4277  execve("/usr/bin/perl", ["perl", "-e", "my %h; for my $i (1..200000) { $"...], 0x7fff5e115398 /* 37 vars */) = 0
4277  brk(NULL)                         = 0x55d84f9ee000
4277  mmap(NULL, 48, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES>, 0) = 0x7f1270c0a000
4277  mmap(NULL, 270, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_MONETARY>, 0) = 0x7f1270c09000
4277  mmap(NULL, 127, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_ADDRESS>, 0) = 0x7f1270c08000
4277  mmap(NULL, 258, PROT_READ, MAP_PRIVATE, 3</usr/lib/locale/C.utf8/LC_IDENTIFICATION>, 0) = 0x7f1270c07000
4277  brk(0x55d84fba9000)               = 0x55d84fba9000
4277  brk(0x55d84fbca000)               = 0x55d84fbca000
4277  mremap(0x7f127051b000, 135168, 266240, MREMAP_MAYMOVE) = 0x7f12704b9000
4277  mremap(0x7f12704fa000, 135168, 266240, MREMAP_MAYMOVE) = 0x7f12704fa000
4277  brk(0x55d84fbeb000)               = 0x55d84fbeb000
4277  munmap(0x7f126f8b3000, 4198400)   = 0
4277  munmap(0x1000, 0)                 = -1 EINVAL (Invalid argument)
4277  munmap(0x2000, 0)                 = -1 EINVAL (Invalid argument)
4277  exit_group(0)                     = ?
"#;

/// `shared/traces/python/trace`, lines 1-3, 100-104, 200-203 and 295-303.
const PYTHON: &str = r#"3363  execve("/opt/python/bin/python3.11", ["/opt/python/bin"..., "-c", "import json,random; d=[random.ra"...], 0x7fffc70431b8 /* 37 vars */) = 0
3363  brk(NULL)                         = 0x5608b4a8e000
3363  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f66c383d000
3363  mmap(0x7f66c274d000, 8192, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 4</opt/python/lib/python3.11/lib-dynload/_random.cpython-311-x86_64-linux-gnu.so>, 0x2000) = 0x7f66c274d000
3363  mmap(0x7f66c274f000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 4</opt/python/lib/python3.11/lib-dynload/_random.cpython-311-x86_64-linux-gnu.so>, 0x4000) = 0x7f66c274f000
3363  mmap(0x7f66c2750000, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 4</opt/python/lib/python3.11/lib-dynload/_random.cpython-311-x86_64-linux-gnu.so>, 0x4000) = 0x7f66c2750000
3363  mprotect(0x7f66c2750000, 4096, PROT_READ) = 0
3363  mmap(NULL, 34024, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 4</opt/python/lib/python3.11/lib-dynload/_sha512.cpython-311-x86_64-linux-gnu.so>, 0) = 0x7f66c2742000
3363  mremap(0x7f66bf66d000, 8450048, 9506816, MREMAP_MAYMOVE) = 0x7f66bed5c000
3363  mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f66c042d000
3363  mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f66c032d000
3363  mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f66c022d000
3363  munmap(0x7f66c24e7000, 1048576)   = 0
3363  munmap(0x7f66bc107000, 17129472)  = 0
3363  munmap(0x7f66c26e7000, 208896)    = 0
3363  munmap(0x7f66c27e7000, 1048576)   = 0
3363  munmap(0x7f66c25e7000, 1048576)   = 0
3363  munmap(0x7f66c380d000, 16384)     = 0
3363  munmap(0x1000, 0)                 = -1 EINVAL (Invalid argument)
3363  munmap(0x2000, 0)                 = -1 EINVAL (Invalid argument)
3363  exit_group(0)                     = ?
"#;

/// `python3 -c` starting three threads that map, advise and unmap, then forking a child
/// (`capture-trace.sh`'s options): the last 41 lines.
const PY_THREADS: &str = r#"21037 mprotect(0x7fc980549000, 8388608, PROT_READ|PROT_WRITE) = 0
21037 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7fc980d48990, parent_tid=0x7fc980d48990, exit_signal=0, stack=0x7fc980548000, stack_size=0x7fff80, tls=0x7fc980d486c0} => {parent_tid=[21136]}, 88) = 21136
21136 mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7fc978400000
21136 munmap(0x7fc978400000, 62914560)  = 0
21136 munmap(0x7fc980000000, 4194304)   = 0
21136 mprotect(0x7fc97c000000, 135168, PROT_READ|PROT_WRITE) = 0
21136 mmap(NULL, 16384, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7fc980e81000
21136 mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0) = 0x7fc980448000
21136 madvise(0x7fc980448000, 1048576, MADV_DONTNEED) = 0
21136 munmap(0x7fc980448000, 1048576)   = 0
21037 mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7fc97b7ff000
21037 mprotect(0x7fc97b800000, 8388608, PROT_READ|PROT_WRITE) = 0
21037 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7fc97bfff990, parent_tid=0x7fc97bfff990, exit_signal=0, stack=0x7fc97b7ff000, stack_size=0x7fff80, tls=0x7fc97bfff6c0} => {parent_tid=[21137]}, 88) = 21137
21137 mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7fc973600000
21137 munmap(0x7fc973600000, 10485760 <unfinished ...>
21136 munmap(0x7fc980e81000, 16384)     = 0
21137 <... munmap resumed>)             = 0
21137 munmap(0x7fc978000000, 56623104 <unfinished ...>
21136 madvise(0x7fc980548000, 8368128, MADV_DONTNEED) = 0
21137 <... munmap resumed>)             = 0
21137 mprotect(0x7fc974000000, 135168, PROT_READ|PROT_WRITE) = 0
21137 mmap(NULL, 16384, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7fc980e81000
21137 mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0) = 0x7fc980448000
21137 madvise(0x7fc980448000, 1048576, MADV_DONTNEED) = 0
21137 munmap(0x7fc980448000, 1048576)   = 0
21037 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7fc980d48990, parent_tid=0x7fc980d48990, exit_signal=0, stack=0x7fc980548000, stack_size=0x7fff80, tls=0x7fc980d486c0} => {parent_tid=[21138]}, 88) = 21138
21137 munmap(0x7fc980e81000, 16384)     = 0
21137 madvise(0x7fc97b7ff000, 8368128, MADV_DONTNEED) = 0
21138 mmap(NULL, 16384, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7fc980e81000
21138 mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0) = 0x7fc980448000
21138 madvise(0x7fc980448000, 1048576, MADV_DONTNEED) = 0
21138 munmap(0x7fc980448000, 1048576)   = 0
21138 munmap(0x7fc980e81000, 16384)     = 0
21138 madvise(0x7fc980548000, 8368128, MADV_DONTNEED) = 0
21037 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7fc981ab0e50) = 21139
21139 exit_group(5)                     = ?
21037 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=21139, si_uid=0, si_status=5, si_utime=0, si_stime=0} ---
21037 munmap(0x7fc980e49000, 208896)    = 0
21037 munmap(0x7fc980f1e000, 1048576)   = 0
21037 munmap(0x7fc9819f3000, 16384)     = 0
21037 exit_group(0)                     = ?
"#;

/// Parses `text`, checking that every line is a record and nothing is an error.
#[track_caller]
fn clean(text: &str) -> Parsed {
    let p = assert_accounted(text);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p
}

#[track_caller]
fn call_at(p: &Parsed, line: usize) -> (u64, Op, Ret) {
    let r = p.records.iter().find(|r| r.line == line).unwrap();
    match &r.event {
        Event::Call { op, ret } => (r.pid, op.clone(), *ret),
        other => panic!("line {line}: {other:?}"),
    }
}

#[test]
fn ls() {
    let p = clean(LS);
    assert_eq!(p.records.len(), LS.lines().count());
    assert!(p.records.iter().all(|r| r.pid == 3351));
    assert_eq!(
        call_at(&p, 1),
        (
            3351,
            Op::Execve {
                path: "/usr/bin/ls".into()
            },
            Ret::Val(0)
        )
    );
    assert_eq!(
        call_at(&p, 5),
        (
            3351,
            Op::Mmap {
                addr: 0x7f1e_f220_1000,
                len: 4096,
                prot: 5,
                flags: 0x812,
                fd: 3,
                path: Some("/usr/local/lib/libdumpmaps.so".into()),
                off: 0x1000
            },
            Ret::Val(0x7f1e_f220_1000)
        )
    );
    // The maps-dump markers and the end.
    assert_eq!(
        call_at(&p, 17),
        (
            3351,
            Op::Munmap {
                addr: 0x1000,
                len: 0
            },
            Ret::Err(22)
        )
    );
    assert_eq!(
        call_at(&p, 18),
        (
            3351,
            Op::Munmap {
                addr: 0x2000,
                len: 0
            },
            Ret::Err(22)
        )
    );
    assert_eq!(
        call_at(&p, 19),
        (3351, Op::ExitGroup { code: 0 }, Ret::Unknown)
    );
}

#[test]
fn perl() {
    let p = clean(PERL);
    assert_eq!(p.records.len(), PERL.lines().count());
    assert_eq!(
        call_at(&p, 1).1,
        Op::Execve {
            path: "/usr/bin/perl".into()
        }
    );
    assert_eq!(
        call_at(&p, 9),
        (
            4277,
            Op::Mremap {
                old_addr: 0x7f12_7051_b000,
                old_len: 135_168,
                new_len: 266_240,
                flags: 1,
                new_addr: None
            },
            Ret::Val(0x7f12_704b_9000)
        )
    );
}

#[test]
fn python() {
    let p = clean(PYTHON);
    assert_eq!(p.records.len(), PYTHON.lines().count());
    assert_eq!(
        call_at(&p, 1).1,
        Op::Execve {
            path: "/opt/python/bin/python3.11".into()
        }
    );
    let path = "/opt/python/lib/python3.11/lib-dynload/_random.cpython-311-x86_64-linux-gnu.so";
    assert_eq!(
        call_at(&p, 4).1,
        Op::Mmap {
            addr: 0x7f66_c274_d000,
            len: 8192,
            prot: 5,
            flags: 0x812,
            fd: 4,
            path: Some(path.into()),
            off: 0x2000
        }
    );
}

#[test]
fn python_threads_and_fork() {
    let p = clean(PY_THREADS);
    // 41 lines: 2 heads joined at their resumed lines, one signal.
    assert_eq!(p.records.len(), 39);
    let clones: Vec<(u64, Op, Ret)> = p
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Call {
                op: op @ Op::Clone { .. },
                ret,
            } => Some((r.pid, op.clone(), *ret)),
            _ => None,
        })
        .collect();
    let thread = Op::Clone { flags: 0x003d_0f00 };
    let fork = Op::Clone { flags: 0x0120_0011 };
    assert_eq!(
        clones,
        [
            (21037, thread.clone(), Ret::Val(21136)),
            (21037, thread.clone(), Ret::Val(21137)),
            (21037, thread, Ret::Val(21138)),
            (21037, fork, Ret::Val(21139)),
        ]
    );
    assert_eq!(
        call_at(&p, 17),
        (
            21137,
            Op::Munmap {
                addr: 0x7fc9_7360_0000,
                len: 10_485_760
            },
            Ret::Val(0)
        )
    );
    let signal = p.records.iter().find(|r| r.line == 37).unwrap();
    assert_eq!(
        signal.event,
        Event::Signal {
            name: "SIGCHLD".into()
        }
    );
}
