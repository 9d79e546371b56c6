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
