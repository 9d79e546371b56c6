//! Every trace under `traces/` replayed: every call's result as in the trace, and for every
//! `maps.PID` Linux wrote, softmm's maps of that process at its dump marker equal to Linux's
//! page by page (permissions, path, file offset) and VMA by VMA, over all the memory the
//! traced calls created.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use softmm::Config;
use softmm_cli::replay::run::{compare_pid, dump_files, maps_files, replay_against, replay_text};

fn traces() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("traces/ exists")
        .flatten()
        .map(|e| e.path().join("trace"))
        .filter(|p| p.exists())
        .collect();
    v.sort();
    v
}

#[test]
fn every_trace_replays_exactly_and_its_maps_match_linux() {
    let all = traces();
    assert!(
        all.len() >= 16,
        "expected the shipped traces, found {all:?}"
    );
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut maps_checked = 0;
    for t in &all {
        let text = std::fs::read_to_string(t).unwrap();
        let dumps = dump_files(t);
        let out = replay_against(
            &text,
            Config::default(),
            true,
            &ProgressBar::hidden(),
            &dumps,
        )
        .unwrap_or_else(|e| panic!("{}:{e}", t.display()));
        let s = out.replay.summary();
        report.push(format!(
            "{}: {} calls, {} matched, {} outside view, {} diverged, {} reordered",
            t.display(),
            s.calls,
            s.matched,
            s.outside_view,
            s.diverged,
            s.reordered
        ));
        if s.diverged != 0 || s.matched == 0 {
            failures.push(format!("{}: {:?}", t.display(), s.divergences));
        }
        let files = maps_files(t);
        assert!(!files.is_empty(), "{}: no maps.PID", t.display());
        for (pid, path) in files {
            let linux = std::fs::read_to_string(&path).unwrap();
            let c = compare_pid(&out, pid, &linux).unwrap();
            maps_checked += 1;
            match c.result {
                None => failures.push(format!("{}: no process {pid}", t.display())),
                Some(r) => {
                    report.push(format!(
                        "  maps.{pid}: {}/{} pages, {}/{} VMAs",
                        r.matched, r.pages, r.vmas_identical, r.vmas
                    ));
                    if r.matched != r.pages || r.pages == 0 || r.vmas_identical != r.vmas {
                        failures.push(format!("{}: {:?}", path.display(), r.mismatches));
                    }
                }
            }
        }
    }
    eprintln!("{}\n{maps_checked} maps files compared", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_lines_are_reported_and_skipped_or_fatal_with_strict() {
    let text = "1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
                1 mmap(NULL, 4096, PROT_READ\n\
                1 munmap(0x7f0000000000, 4096) = 0\n";
    let out = replay_text(text, Config::default(), false, &ProgressBar::hidden()).unwrap();
    assert_eq!(out.malformed.len(), 1);
    assert_eq!(out.malformed[0].line, 2);
    let s = out.replay.summary();
    assert_eq!((s.calls, s.matched, s.diverged), (2, 2, 0));
    let err = replay_text(text, Config::default(), true, &ProgressBar::hidden())
        .err()
        .expect("strict fails");
    assert_eq!(err.line, 2);
}

#[test]
fn a_result_that_differs_is_a_divergence() {
    // The kernel says the second mmap failed; softmm succeeds: one divergence, reported
    // with its line; the outside-view munmap is not run.
    let text = "1 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
                1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)\n\
                1 munmap(0x500000, 4096) = 0\n\
                1 mprotect(0x7f0000000000, 4096, PROT_NONE) = 0\n";
    let out = replay_text(text, Config::default(), true, &ProgressBar::hidden()).unwrap();
    let s = out.replay.summary();
    assert_eq!(
        (s.calls, s.matched, s.diverged, s.outside_view),
        (4, 2, 1, 1)
    );
    assert_eq!(s.divergences[0].line, 2);
    assert_eq!(s.divergences[0].expected, "-1 ENOMEM");
    let maps = &out.replay.snapshot(1).unwrap().maps;
    assert!(maps.starts_with("7f0000000000-7f0000001000 ---p"), "{maps}");
}

#[test]
fn a_child_that_runs_before_its_clone_returns_waits_for_it() {
    // vfork-style: the child (8) maps memory in the shared address space before the
    // parent's clone line completes; a forked child (9) then sees that mapping.
    let text = "7 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n\
                7 vfork( <unfinished ...>\n\
                8 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000020000\n\
                8 exit_group(0) = ?\n\
                7 <... vfork resumed>) = 8\n\
                9 munmap(0x7f0000020000, 4096) = 0\n\
                7 fork() = 9\n\
                7 munmap(0x7f0000010000, 8192) = 0\n\
                7 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n";
    let out = replay_text(text, Config::default(), true, &ProgressBar::hidden()).unwrap();
    let s = out.replay.summary();
    assert_eq!((s.diverged, s.processes), (0, 3), "{:?}", s.divergences);
    assert_eq!((s.matched, s.outside_view), (5, 0));
    // The parent kept the vfork child's mapping; the fork child unmapped its own copy.
    let parent = &out.replay.snapshot(7).unwrap().maps;
    assert!(
        parent.starts_with("7f0000020000-7f0000021000 r--p"),
        "{parent}"
    );
    let child = &out.replay.snapshot(9).unwrap().maps;
    assert!(
        child.starts_with("7f0000010000-7f0000012000 rw-p"),
        "{child}"
    );
    assert!(!child.contains("7f0000020000"), "{child}");
}

/// A thread (pid 2) of process 1, made by a traced clone.
const THREAD: &str = "1 clone(child_stack=0x7f0000100000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, parent_tid=[2], tls=0x7f0000200000) = 2\n";

fn replay_lines(lines: &[&str], dumps: &[(u64, String)]) -> softmm_cli::replay::run::Outcome {
    let text = lines.concat();
    replay_against(
        &text,
        Config::default(),
        true,
        &ProgressBar::hidden(),
        dumps,
    )
    .unwrap()
}

#[test]
fn an_in_flight_munmap_is_applied_before_the_mmap_that_reused_its_range() {
    // Thread 2's mmap got the range thread 1 was unmapping: in the kernel the munmap took
    // effect first, though strace printed its result later.
    let out = replay_lines(
        &[
            "1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
            THREAD,
            "1 munmap(0x7f0000010000, 8192 <unfinished ...>\n",
            "2 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000011000\n",
            "1 <... munmap resumed>) = 0\n",
            "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        ],
        &[],
    );
    let s = out.replay.summary();
    assert_eq!(
        (s.matched, s.diverged, s.reordered),
        (4, 0, 1),
        "{:?}",
        s.divergences
    );
    let maps = &out.replay.snapshot(1).unwrap().maps;
    assert_eq!(maps, "7f0000011000-7f0000012000 r--p 00000000 00:00 0 \n");
}

#[test]
fn a_move_onto_a_mapping_no_call_in_flight_removes_is_a_divergence() {
    // The kernel moved the mapping to a range that is taken in the replay, and no call in
    // flight frees it (the mprotect is tried first, in vain): the replay reports it and
    // keeps both mappings (it does not replace one with a forced MREMAP_FIXED).
    let out = replay_lines(
        &[
            "1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
            "1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000020000\n",
            THREAD,
            "2 mprotect(0x7f0000010000, 4096, PROT_READ <unfinished ...>\n",
            "1 mremap(0x7f0000010000, 8192, 16384, MREMAP_MAYMOVE) = 0x7f0000020000\n",
            "2 <... mprotect resumed>) = 0\n",
            "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        ],
        &[],
    );
    let s = out.replay.summary();
    assert_eq!((s.diverged, s.reordered), (1, 1), "{:?}", s.divergences);
    assert_eq!(
        (s.divergences[0].line, s.divergences[0].got.as_str()),
        (5, "-1 EEXIST")
    );
    let maps = &out.replay.snapshot(1).unwrap().maps;
    assert_eq!(
        maps,
        "7f0000010000-7f0000011000 r--p 00000000 00:00 0 \n\
         7f0000011000-7f0000012000 rw-p 00000000 00:00 0 \n\
         7f0000020000-7f0000021000 r--p 00000000 00:00 0 \n"
    );
}

#[test]
fn an_in_place_mremap_is_not_moved_elsewhere() {
    // The kernel grew it in place: the range above was free then because thread 2's munmap
    // had taken effect. Applied first, it lets the growth happen where the kernel did it.
    let out = replay_lines(
        &[
            "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
            "1 mmap(0x7f0000011000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000011000\n",
            THREAD,
            "2 munmap(0x7f0000011000, 4096 <unfinished ...>\n",
            "1 mremap(0x7f0000010000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f0000010000\n",
            "2 <... munmap resumed>) = 0\n",
            "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        ],
        &[],
    );
    let s = out.replay.summary();
    assert_eq!((s.diverged, s.reordered), (0, 1), "{:?}", s.divergences);
    let maps = &out.replay.snapshot(1).unwrap().maps;
    assert_eq!(maps, "7f0000010000-7f0000012000 rw-p 00000000 00:00 0 \n");
}

#[test]
fn a_dump_is_placed_where_linux_read_it_among_the_calls_in_flight() {
    // Thread 2's munmap overlaps the dump; thread 2's mmap starts after the end marker
    // started, so it can never be in the dump.
    let lines = [
        "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
        THREAD,
        "2 munmap(0x7f0000010000, 4096 <unfinished ...>\n",
        "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        "2 <... munmap resumed>) = 0\n",
        "1 munmap(0x2000, 0) = -1 EINVAL (Invalid argument)\n",
        "2 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000030000\n",
    ];
    let mapped = "7f0000010000-7f0000011000 rw-p 00000000 00:00 0 \n";
    // Without Linux's maps the dump is right after the start marker.
    let out = replay_lines(&lines, &[]);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, mapped);
    // Linux read it after the munmap: so does the replay.
    let later = "7f0000030000-7f0000031000 r--p 00000000 00:00 0 \n".to_string();
    let out = replay_lines(&lines, &[(1, later.clone())]);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, "");
    let c = compare_pid(&out, 1, &later).unwrap().result.unwrap();
    assert_eq!((c.matched, c.pages), (1, 1));
    // Linux read it before: the first point agrees.
    let out = replay_lines(&lines, &[(1, mapped.to_string())]);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, mapped);
    assert_eq!(out.replay.summary().diverged, 0);
}

#[test]
fn a_private_dev_zero_mapping_shows_the_device_in_maps() {
    // Linux 6.18 keeps the file of a private /dev/zero mapping (devtmpfs 00:06, inode 4 on
    // the reference host) with the mapping's offset; a shared one is "/dev/zero (deleted)".
    let out = replay_lines(
        &[
            "1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE, 3</dev/zero>, 0x2000) = 0x7f0000010000\n",
            "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3</dev/zero>, 0) = 0x7f0000020000\n",
            "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        ],
        &[],
    );
    assert_eq!(out.replay.summary().diverged, 0);
    let maps = &out.replay.snapshot(1).unwrap().maps;
    let lines: Vec<&str> = maps.lines().collect();
    assert_eq!(lines.len(), 2, "{maps}");
    assert!(
        lines[0].starts_with("7f0000010000-7f0000012000 rw-p 00002000 00:06 4 ")
            && lines[0].ends_with(" /dev/zero"),
        "{maps}"
    );
    assert!(
        lines[1].starts_with("7f0000020000-7f0000021000 rw-s 00000000 00:01 ")
            && lines[1].ends_with(" /dev/zero (deleted)"),
        "{maps}"
    );
}

#[test]
fn a_dump_is_read_line_by_line_while_the_other_threads_go_on() {
    // Threads 2 then 3 unmap A and B while thread 1's maps are read. No single moment has
    // A mapped and B unmapped, but Linux reads the file VMA by VMA in address order: A
    // before thread 2's munmap, then B's place after thread 3's.
    let a = "7f0000010000-7f0000011000 rw-p 00000000 00:00 0 \n";
    let lines = [
        "1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
        "1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000020000\n",
        THREAD,
        "1 clone(child_stack=0x7f0000400000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, parent_tid=[3], tls=0x7f0000500000) = 3\n",
        "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        "2 munmap(0x7f0000010000, 4096) = 0\n",
        "3 munmap(0x7f0000020000, 4096) = 0\n",
        "1 munmap(0x2000, 0) = -1 EINVAL (Invalid argument)\n",
    ];
    let out = replay_lines(&lines, &[(1, a.to_string())]);
    assert_eq!(out.replay.summary().diverged, 0);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, a);
    // Only B: the moment between the two munmaps.
    let b = "7f0000020000-7f0000021000 r--p 00000000 00:00 0 \n";
    let out = replay_lines(&lines, &[(1, b.to_string())]);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, b);
    // Without Linux's maps: right after the start marker, both.
    let out = replay_lines(&lines, &[]);
    assert_eq!(out.replay.snapshot(1).unwrap().maps, format!("{a}{b}"));
}

#[test]
fn a_failure_that_a_call_in_flight_explains_pulls_it_first() {
    // The mprotect failed over the hole thread 2's munmap made, and the second
    // MAP_FIXED_NOREPLACE found thread 2's mapping: both calls of thread 2 had taken effect.
    // Run in result order, both would succeed instead, and their effects could not be undone.
    let out = replay_lines(
        &[
            "1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000010000\n",
            THREAD,
            "2 munmap(0x7f0000011000, 4096 <unfinished ...>\n",
            "1 mprotect(0x7f0000010000, 8192, PROT_READ) = -1 ENOMEM (Cannot allocate memory)\n",
            "2 <... munmap resumed>) = 0\n",
            "2 mmap(0x7f0000030000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0 <unfinished ...>\n",
            "1 mmap(0x7f0000030000, 4096, PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0) = -1 EEXIST (File exists)\n",
            "2 <... mmap resumed>) = 0x7f0000030000\n",
            "1 munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n",
        ],
        &[],
    );
    let s = out.replay.summary();
    assert_eq!((s.diverged, s.reordered), (0, 2), "{:?}", s.divergences);
    // mprotect changed the part before the hole, as Linux's does.
    assert_eq!(
        out.replay.snapshot(1).unwrap().maps,
        "7f0000010000-7f0000011000 r--p 00000000 00:00 0 \n\
         7f0000030000-7f0000031000 r--p 00000000 00:00 0 \n"
    );
}
