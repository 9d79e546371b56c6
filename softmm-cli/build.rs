//! Records the commit softmm is built from as `SOFTMM_COMMIT`, for the `commit` field of
//! `softmm bench --json` (the repository of the build, not of the directory the benchmark
//! runs in). Nothing is set when the source is not a git checkout or git is missing.

use std::{path::Path, process::Command};

/// `git ARGS` in this crate's directory, trimmed, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=SOFTMM_COMMIT={commit}");
    // Build again when HEAD moves: HEAD itself (a branch switch), the branch's ref (a
    // commit) and packed-refs (a ref that git packed).
    let (Some(git_dir), Some(common)) = (
        git(&["rev-parse", "--absolute-git-dir"]),
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return;
    };
    println!("cargo:rerun-if-changed={git_dir}/HEAD");
    println!("cargo:rerun-if-changed={common}/packed-refs");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let reference = Path::new(&common).join(branch);
        println!("cargo:rerun-if-changed={}", reference.display());
    }
}
