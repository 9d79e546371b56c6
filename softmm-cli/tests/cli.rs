//! The `softmm` binary: exit statuses and where messages go.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// Writes `text` to a script file of this test run.
fn script(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("writes the script");
    path
}

fn softmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softmm"))
        .args(args)
        .output()
        .expect("runs softmm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_malformed_script_runs_nothing_and_exits_2() {
    let path = script(
        "cli-malformed.sm",
        "munmap(0x1000, 4096) = 0\nmunmap(0x1000, 4096) = -1 EFOO\n",
    );
    let p = path.to_str().expect("utf-8 path");
    let out = softmm(&["run", p]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), format!("{p}:2:27: unknown errno EFOO\n"));
}

#[test]
fn a_missing_script_exits_2() {
    let out = softmm(&["run", "/nonexistent/x.sm"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "softmm: /nonexistent/x.sm: No such file or directory\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(softmm(&["run"]).status.code(), Some(2));
    assert_eq!(softmm(&["walk", "x.sm"]).status.code(), Some(2));
}

#[test]
fn failed_lines_exit_1() {
    let path = script(
        "cli-nopid.sm",
        "7 munmap(0x1000, 0) = -1 EINVAL\nmunmap(0x1000, 0) = -1 EINVAL\n",
    );
    let p = path.to_str().expect("utf-8 path");
    let out = softmm(&["run", p]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "[pid 7] munmap(...) = -1 ESRCH (No such process)\n\
         FAIL line 1: no process with pid 7\n\
         munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\n\
         2 calls, 2 expectations, 1 failed\n"
    );
    let quiet = softmm(&["run", "-q", p]);
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(
        text(&quiet.stdout),
        "[pid 7] munmap(...) = -1 ESRCH (No such process)\n\
         FAIL line 1: no process with pid 7\n\
         2 calls, 2 expectations, 1 failed\n"
    );
}

#[test]
fn a_passing_script_exits_0() {
    let path = script(
        "cli-pass.sm",
        "munmap(0x1000, 0) = -1 EINVAL (Invalid argument)\nmunmap(0x1001, 4096) = -1\n",
    );
    let out = softmm(&["run", "--quiet", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "2 calls, 2 expectations, 0 failed\n");
}

fn trace_path(name: &str) -> String {
    format!("{}/../traces/{name}/trace", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn replay_prints_maps_next_to_linux_and_the_match_count() {
    let t = trace_path("ls");
    let out = softmm(&["replay", &t, "--maps", "3351", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.starts_with("== softmm /proc/3351/maps (trace line 47)\n"),
        "{o}"
    );
    assert!(o.contains("\n== Linux "), "{o}");
    assert!(
        o.contains("calls: 47 — matched 45, diverged 0, outside view 2, ignored 0\n"),
        "{o}"
    );
    assert!(
        o.contains("maps.3351: 1853/1853 pages match Linux (100.0%); 39/39 VMAs identical\n"),
        "{o}"
    );
}

#[test]
fn replay_json_and_check_exit_status() {
    let out = softmm(&["replay", &trace_path("fork"), "--json", "--compare"]);
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["diverged"], 0);
    assert_eq!(j["processes"], 3);
    assert_eq!(j["maps"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        j["maps"][0]["result"]["matched"],
        j["maps"][0]["result"]["pages"]
    );
    // A trace whose results softmm cannot reproduce fails --check.
    let bad = script(
        "bad.trace",
        "7 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
         7 munmap(0x7f0000000000, 4096) = -1 EINVAL (Invalid argument)\n",
    );
    let out = softmm(&["replay", bad.to_str().expect("utf-8"), "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("diverged: line 2 (pid 7): expected -1 EINVAL, got 0x0\n"));
}

#[test]
fn replay_malformed_lines_are_skipped_or_fatal_with_strict() {
    let bad = script(
        "malformed.trace",
        "7 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
         7 mprotect(0x7f0000000000, 4096\n",
    );
    let p = bad.to_str().expect("utf-8");
    let out = softmm(&["replay", p]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains(":line 2: "),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("(1 malformed)"));
    let out = softmm(&["replay", p, "--strict"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(":line 2: "));
    let out = softmm(&["replay", "/nonexistent/trace"]);
    assert_eq!(out.status.code(), Some(2));
}
