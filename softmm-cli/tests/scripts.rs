//! Every script of the repository (`examples/*.sm`, `tests/scripts/*.sm`) run in-process
//! against a fresh softmm machine: all expectations must hold.
//!
//! The expectations of these scripts are Linux's (each was checked with
//! `shared/tools/linux-run`), so a failure here is softmm departing from Linux, or a runner
//! bug. Scripts that need what the library cannot do yet are listed in [`SKIP`] with the
//! reason.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
};

use softmm::Config;
use softmm_cli::script::{SoftmmBackend, parse_script, run_script};

/// Why the scripts of processes and files are skipped.
const PROCS_FILES: &str = "needs processes/files (issue 6)";

/// Scripts not run yet, by file name, and why.
const SKIP: &[(&str, &str)] = &[
    ("11-fork-cow.sm", PROCS_FILES),
    ("12-memfd-shared.sm", PROCS_FILES),
    ("14-sigbus-beyond-eof.sm", PROCS_FILES),
    ("080-fork-cow-both-ways.sm", PROCS_FILES),
    ("081-fork-cow-smaps.sm", PROCS_FILES),
    ("082-fork-munmap-mprotect.sm", PROCS_FILES),
    ("083-fork-grandchild.sm", PROCS_FILES),
    ("084-fork-untouched-zero-pages.sm", PROCS_FILES),
    ("085-fork-protnone-readonly.sm", PROCS_FILES),
    ("086-fork-dontfork.sm", PROCS_FILES),
    ("087-fork-wipeonfork.sm", PROCS_FILES),
    ("088-fork-child-no-merge.sm", PROCS_FILES),
    ("089-fork-shared-anon.sm", PROCS_FILES),
    ("090-fork-memfd.sm", PROCS_FILES),
    ("091-fork-mlock.sm", PROCS_FILES),
    ("092-fork-brk.sm", PROCS_FILES),
    ("093-fork-exit-group.sm", PROCS_FILES),
    ("094-file-sigbus-private.sm", PROCS_FILES),
    ("095-file-eacces.sm", PROCS_FILES),
    ("096-file-mmap-errors.sm", PROCS_FILES),
    ("097-file-offset-pwrite.sm", PROCS_FILES),
    ("098-file-private-cow.sm", PROCS_FILES),
    ("099-file-vma-merge.sm", PROCS_FILES),
    ("100-file-mprotect-munmap-offsets.sm", PROCS_FILES),
    ("101-file-mremap.sm", PROCS_FILES),
    ("102-memfd-maps-rss-mincore.sm", PROCS_FILES),
    ("103-file-smaps.sm", PROCS_FILES),
    ("104-fork-file-mappings.sm", PROCS_FILES),
];

/// The `*.sm` files of a directory, sorted; none when it does not exist.
fn scripts_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sm"))
        .collect();
    files.sort();
    files
}

/// Runs one script; `Err` holds the report of what failed.
fn run_one(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let script = parse_script(&text).map_err(|e| format!("{}:{e}", path.display()))?;
    let mut backend =
        SoftmmBackend::new(Config::default()).map_err(|e| format!("no machine: {e:?}"))?;
    let mut out = Vec::new();
    let summary =
        run_script(&script, &mut backend, false, &mut out).map_err(|e| format!("output: {e}"))?;
    if summary.failed == 0 {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out).into_owned())
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[test]
fn every_script_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = scripts_in(&root.join("../examples"));
    assert!(!files.is_empty(), "no scripts under examples/");
    files.extend(scripts_in(&root.join("../tests/scripts")));
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((_, why)) = SKIP.iter().find(|(skip, _)| *skip == name) {
            eprintln!("skipped {}: {why}", path.display());
            continue;
        }
        ran += 1;
        // A panic in the library fails this script, not the whole list.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_one(path)));
        let report = match result {
            Ok(Ok(())) => continue,
            Ok(Err(report)) => report,
            Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
        };
        failures.push(format!("=== {}\n{report}", path.display()));
    }
    eprintln!("{ran} scripts run, {} failed", failures.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
