//! `softmm stress`: a clean run is clean, and the checker catches what it must catch.
//!
//! Every run here is bounded by `--ops` (never by time) and takes well under a second.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::Value;

fn stress(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softmm"))
        .arg("stress")
        .args(args)
        .output()
        .expect("runs softmm")
}

/// Runs with `args` (split at spaces) and `--json`; returns the exit status and the
/// summary.
#[track_caller]
fn stress_json(args: &str) -> (Option<i32>, Value) {
    stress_json_with(args.split_whitespace().collect())
}

#[track_caller]
fn stress_json_with(mut all: Vec<&str>) -> (Option<i32>, Value) {
    all.push("--json");
    let out = stress(&all);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), summary)
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("writes the file");
    path
}

#[test]
fn a_short_run_has_no_mismatch_and_no_leak() {
    let (code, s) = stress_json("--ops 2000 --threads 2 --seed 1");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert_eq!(s["leaks"], 0, "{s:#}");
    assert_eq!(s["ok"], true);
    assert_eq!(code, Some(0));
    assert_eq!(s["frames"]["after_teardown"], 1);
    assert_eq!(s["frames"]["in_use"], s["frames"]["expected"]);
    assert!(s["ops_total"].as_u64().expect("a number") >= 4000);
    assert!(s["faults"].as_u64().expect("a number") > 0);
    assert!(s["ops"]["mremap"].as_u64().expect("a number") > 0);
    assert!(s["ops"]["brk"].as_u64().expect("a number") > 0);
    // Every munmap or DONTNEED of a mapped page flushes: some flush was counted.
    let flushes: Vec<u64> = ["targeted", "full", "skipped"]
        .iter()
        .map(|k| s["tlb_flushes"][k].as_u64().expect("a count"))
        .collect();
    assert!(flushes.iter().sum::<u64>() > 0, "{s:#}");
}

#[test]
fn the_text_summary_counts_tlb_flushes() {
    let out = stress(&["--ops", "500", "--threads", "2", "--seed", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("TLB flushes: "))
        .unwrap_or_else(|| panic!("no TLB flush line: {text}"));
    for word in ["targeted", "full", "skipped"] {
        assert!(line.contains(word), "{line}");
    }
}

/// Both fault-locking variants, with forks and file mappings: no mismatch, no leak,
/// and the PerVma run takes its faults on the per-VMA fast path.
#[test]
fn every_fault_locking_variant_is_clean() {
    for (variant, fast) in [("Global", false), ("PerVma", true)] {
        let cfg = file(
            &format!("stress-{variant}.json"),
            &format!(r#"{{"fault_locking": "{variant}"}}"#),
        );
        let p = cfg.to_str().expect("utf-8 path");
        let (code, s) = stress_json_with(vec![
            "--ops",
            "2000",
            "--threads",
            "2",
            "--seed",
            "3",
            "--config",
            p,
        ]);
        assert_eq!(s["mismatches"], 0, "{variant}: {s:#}");
        assert_eq!(s["leaks"], 0, "{variant}: {s:#}");
        assert_eq!(code, Some(0), "{variant}: {s:#}");
        let under_vma_lock = s["vma_lock_faults"].as_u64().expect("a number");
        assert_eq!(under_vma_lock > 0, fast, "{variant}: {s:#}");
    }
}

#[test]
fn several_address_spaces_are_clean_too() {
    let (code, s) = stress_json("--ops 1000 --threads 3 --spaces 2 --seed 7");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert_eq!(s["leaks"], 0, "{s:#}");
    assert_eq!(s["frames"]["roots"], 2);
    assert_eq!(code, Some(0));
}

#[test]
fn an_injected_bug_is_detected() {
    let (code, s) = stress_json("--ops 500 --threads 2 --seed 1 --inject-bug");
    assert_eq!(code, Some(1));
    assert_eq!(s["ok"], false);
    assert!(s["mismatches"].as_u64().expect("a number") > 0, "{s:#}");
    let repro = s["reproduce"].as_str().expect("a reproduce command");
    assert!(
        repro.contains("--seed 0x1") && repro.contains("--inject-bug"),
        "{repro}"
    );
}

#[test]
fn a_broken_oracle_is_detected() {
    let (code, s) = stress_json("--ops 2000 --threads 2 --seed 1 --break-oracle dontneed");
    assert_eq!(code, Some(1));
    assert!(s["mismatches"].as_u64().expect("a number") > 0, "{s:#}");
}

#[test]
fn forks_and_file_mappings_are_clean() {
    let (code, s) = stress_json("--ops 3000 --threads 2 --seed 3");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert_eq!(s["leaks"], 0, "{s:#}");
    assert_eq!(code, Some(0));
    assert_eq!(s["frames"]["in_use"], s["frames"]["expected"]);
    assert_eq!(s["frames"]["after_teardown"], 1);
    for kind in ["fork", "mmap_file", "pwrite", "ftruncate", "pread"] {
        assert!(
            s["ops"][kind].as_u64().expect("a number") > 0,
            "{kind}: {s:#}"
        );
    }
    assert!(s["cow_copies"].as_u64().expect("a number") > 0, "{s:#}");
}

#[test]
fn forks_in_several_address_spaces_are_clean() {
    let (code, s) = stress_json("--ops 2000 --threads 4 --spaces 2 --seed 11");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert_eq!(s["leaks"], 0, "{s:#}");
    assert!(s["ops"]["fork"].as_u64().expect("a number") > 0, "{s:#}");
    assert_eq!(code, Some(0));
}

/// An oracle that expects a child's write to a private page to show in the parent
/// (copy-on-write broken) fails at a fork's parent-side check.
#[test]
fn a_fork_sharing_private_pages_is_detected() {
    let (code, s) = stress_json("--ops 2000 --threads 2 --seed 1 --break-oracle fork-shares");
    assert_eq!(code, Some(1));
    assert!(s["mismatches"].as_u64().expect("a number") > 0, "{s:#}");
    let m = &s["mismatch_details"][0];
    let (op, what) = (
        m["op"].as_str().unwrap_or(""),
        m["what"].as_str().unwrap_or(""),
    );
    assert!(op.starts_with("fork()"), "{s:#}");
    assert!(what.contains("the parent's read"), "{s:#}");
    let repro = s["reproduce"].as_str().expect("a reproduce command");
    assert!(repro.contains("--break-oracle fork-shares"), "{repro}");
}

#[test]
fn one_thread_with_the_same_seed_does_the_same_operations() {
    let run = |seed: &str| {
        let (code, s) = stress_json(&format!("--ops 3000 --threads 1 --seed {seed}"));
        assert_eq!(code, Some(0), "{s:#}");
        (s["digests"].clone(), s["ops"].clone())
    };
    let first = run("42");
    assert_eq!(first, run("42"));
    assert_ne!(first.0, run("43").0);
}

#[test]
fn a_config_file_is_read_as_json_or_toml() {
    let json = file("stress-config.json", r#"{"max_map_count": 60000}"#);
    let toml = file("stress-config.toml", "max_map_count = 60000\n");
    for path in [json, toml] {
        let p = path.to_str().expect("utf-8 path");
        let (code, s) = stress_json_with(vec!["--ops", "300", "--threads", "2", "--config", p]);
        assert_eq!(code, Some(0), "{s:#}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let bad_config = file("stress-bad.json", r#"{"no_such_field": 1}"#);
    let cases: [&[&str]; 5] = [
        &["--seconds", "0"],
        &["--ops", "10", "--seconds", "1"],
        &["--ops", "10", "--phys-mb", "2"],
        &["--ops", "10", "--config", "/nonexistent/config.json"],
        &[
            "--ops",
            "10",
            "--config",
            bad_config.to_str().expect("utf-8 path"),
        ],
    ];
    for args in cases {
        let out = stress(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

/// Regression (found by this stress test): MADV_REMOVE must unmap every mapping of the
/// punched page (Linux `unmap_mapping_range`), not only the calling range; another
/// mapping of the same page (made by a DONTUNMAP or grown mremap move) used to keep
/// the old frame and its bytes.
#[test]
fn madv_remove_zeroes_the_page_in_every_mapping() {
    let (code, s) = stress_json("--ops 15150 --threads 1 --seed 19 --madv-remove");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert_eq!(code, Some(0));
}

/// MADV_REMOVE under threads, two address spaces and forks: every punch the oracle sees
/// zeroes the page in every mapping, and the run passes (`--help` says so).
#[test]
fn madv_remove_passes_with_threads_spaces_and_forks() {
    let (code, s) = stress_json("--ops 3000 --threads 2 --spaces 2 --seed 5 --madv-remove");
    assert_eq!(s["mismatches"], 0, "{s:#}");
    assert!(s["ops"]["madvise_remove"].as_u64() > Some(0), "{s:#}");
    assert!(s["ops"]["fork"].as_u64() > Some(0), "{s:#}");
    assert_eq!(code, Some(0));
    let help = stress(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    let line = help
        .lines()
        .find(|l| l.contains("--madv-remove"))
        .unwrap_or_default();
    assert!(line.contains("checked in every mapping"), "{help}");
    assert!(!line.contains("fail"), "{help}");
}
