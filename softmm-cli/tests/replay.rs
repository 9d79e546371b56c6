//! Every trace under `traces/` replayed: every call's result as in the trace, and for every
//! `maps.PID` Linux wrote, softmm's maps of that process at its dump marker equal to Linux's
//! page by page (permissions, path, file offset) and VMA by VMA, over all the memory the
//! traced calls created.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use softmm::Config;
use softmm_cli::replay::run::{compare_pid, maps_files, replay_text};

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
    assert!(all.len() >= 8, "expected the shipped traces, found {all:?}");
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut maps_checked = 0;
    for t in &all {
        let text = std::fs::read_to_string(t).unwrap();
        let out = replay_text(&text, Config::default(), true, &ProgressBar::hidden())
            .unwrap_or_else(|e| panic!("{}:{e}", t.display()));
        let s = out.replay.summary();
        report.push(format!(
            "{}: {} calls, {} matched, {} outside view, {} diverged",
            t.display(),
            s.calls,
            s.matched,
            s.outside_view,
            s.diverged
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
