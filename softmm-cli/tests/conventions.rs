//! The commands' conventions on bad input and on their outputs: `replay` of files that
//! are not traces, unknown pids, non-UTF-8 lines and endless input; `bench --json -` and
//! the build's commit; `stress` refusing what its oracle does not model and writing its
//! seed as a string; one exit status for I/O errors.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

fn softmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softmm"))
        .args(args)
        .output()
        .expect("runs softmm")
}

/// Writes `bytes` to a file of this test run; returns its path as a string.
fn file(name: &str, bytes: &[u8]) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).expect("writes the file");
    path.to_str().expect("utf-8 path").to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn trace(name: &str) -> String {
    format!("{}/../traces/{name}/trace", env!("CARGO_MANIFEST_DIR"))
}

const TWO_CALLS: &[u8] = b"1234  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n\
1234  munmap(0x7f0\xff0000000, 4096) = 0\n\
1234  munmap(0x7f0000000000, 4096) = 0\n";

mod replay {
    use super::*;

    #[test]
    fn a_file_that_is_no_trace_fails_even_without_check() {
        let prose = file("prose.txt", b"# A text\n\nmmap is a system call.\n");
        for extra in [None, Some("--check")] {
            let mut args = vec!["replay", prose.as_str()];
            args.extend(extra);
            let out = softmm(&args);
            assert_eq!(out.status.code(), Some(2), "{extra:?}");
            let err = text(&out.stderr);
            assert!(
                err.ends_with(&format!(
                    "softmm: {prose}: not an strace log: none of its 3 lines is a \
                     memory-management call (nothing was replayed)\n"
                )),
                "{err}"
            );
            assert_eq!(text(&out.stdout), "");
        }
    }

    #[test]
    fn an_unknown_pid_is_an_error_on_stderr() {
        let t = trace("python");
        for flag in ["--maps", "--smaps"] {
            let out = softmm(&["replay", &t, flag, "99999"]);
            assert_eq!(out.status.code(), Some(2), "{flag}");
            assert_eq!(text(&out.stdout), "");
            assert_eq!(
                text(&out.stderr),
                format!("softmm: {t}: no process 99999 in this trace\n")
            );
        }
    }

    #[test]
    fn a_non_utf8_line_is_skipped_with_its_column() {
        let t = file("non-utf8.trace", TWO_CALLS);
        let out = softmm(&["replay", &t, "--check"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!("softmm: {t}:line 2: invalid UTF-8 at column 19 (skipped)\n")
        );
        let o = text(&out.stdout);
        assert!(o.contains("3 lines, 2 records (1 malformed)"), "{o}");
        assert!(o.contains("matched 2, diverged 0"), "{o}");
    }

    #[test]
    fn a_non_utf8_line_fails_a_strict_replay_at_line_and_column() {
        let t = file("non-utf8-strict.trace", TWO_CALLS);
        let out = softmm(&["replay", &t, "--strict"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!("softmm: {t}:2:19: invalid UTF-8\n")
        );
    }

    #[test]
    fn dev_zero_is_refused_at_its_first_line() {
        let out = softmm(&["replay", "/dev/zero"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "softmm: /dev/zero:1: line longer than 1048576 bytes\n"
        );
    }

    #[test]
    fn the_maps_comparison_names_the_vmas_left_out() {
        let out = softmm(&["replay", &trace("ls"), "--maps", "3351"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let o = text(&out.stdout);
        assert!(
            o.contains(
                "39/39 VMAs identical\n  left out: 16 of Linux's 55 VMAs, outside the \
                 replay's view: [stack], [vdso], [vsyscall], [vvar], [vvar_vclock], \
                 anonymous, ld-linux-x86-64.so.2 ×5, ls ×5\n"
            ),
            "{o}"
        );
        let out = softmm(&["replay", &trace("ls"), "--compare", "--json"]);
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(j["maps"][0]["result"]["linux_vmas"], 55);
        assert_eq!(j["maps"][0]["result"]["left_out"]["[stack]"], 1);
        assert_eq!(j["maps"][0]["result"]["left_out"]["ls"], 5);
    }

    #[test]
    fn a_bad_config_names_the_file() {
        let c = file("replay-config.toml", b"mmap_base = 4097\n");
        let out = softmm(&["replay", &trace("ls"), "--config", &c]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "softmm: {c}: mmap_base 0x1001: must be page-aligned and at most \
                 0x7ffffffff000\n"
            )
        );
    }
}

mod stress {
    use super::*;

    #[track_caller]
    fn refused(name: &str, config: &str, message: &str) {
        let c = file(name, config.as_bytes());
        let out = softmm(&["stress", "--ops", "10", "--config", &c]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        assert_eq!(text(&out.stderr), format!("softmm stress: {message}\n"));
    }

    #[test]
    fn a_reachable_max_map_count_is_refused() {
        refused(
            "stress-mmc.toml",
            "max_map_count = 64\n",
            "max_map_count 64: the stress oracle does not model the map count limit; \
             this run may make 736 VMAs, so it must be at least that",
        );
    }

    #[test]
    fn a_changed_layout_is_refused() {
        refused(
            "stress-base.toml",
            "mmap_base = 0x7f0000000000\n",
            "mmap_base 0x7f0000000000: the stress oracle models only the default layout \
             (mmap_base 0x7ffff7fff000); leave it unset",
        );
        refused(
            "stress-brk.json",
            r#"{"brk_start": 1073741824}"#,
            "brk_start 0x40000000: the stress oracle models only the default layout \
             (brk_start 0x555555559000); leave it unset",
        );
    }

    #[test]
    fn the_json_seed_is_also_a_string() {
        let out = softmm(&[
            "stress",
            "--ops",
            "20",
            "--json",
            "--seed",
            "0xfffffffffffffff1",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(j["seed_text"], "18446744073709551601");
    }
}

mod bench {
    use super::*;

    #[test]
    fn json_dash_is_stdout_with_the_build_commit() {
        let out = softmm(&[
            "bench",
            "--quick",
            "--reps",
            "1",
            "--variants",
            "PerVma",
            "--json",
            "-",
            "mmap-munmap",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON");
        assert_eq!(j["commit"].as_str(), option_env!("SOFTMM_COMMIT"));
        assert!(!std::path::Path::new("-").exists());
    }

    #[test]
    fn an_unwritable_output_is_exit_2() {
        let out = softmm(&[
            "bench",
            "--quick",
            "--reps",
            "1",
            "--variants",
            "PerVma",
            "--json",
            "/nonexistent/out.json",
            "mmap-munmap",
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "softmm bench: /nonexistent/out.json: No such file or directory\n"
        );
    }
}

mod help {
    use super::*;

    #[test]
    fn run_help_points_at_the_spec_in_the_repository() {
        let out = softmm(&["run", "--help"]);
        let o = text(&out.stdout);
        assert!(o.contains("The script format is docs/scripts.md"), "{o}");
        let spec = format!("{}/../docs/scripts.md", env!("CARGO_MANIFEST_DIR"));
        let spec = std::fs::read_to_string(spec).expect("the spec is in the repository");
        assert!(spec.contains("## Limits"));
    }

    #[test]
    fn every_command_states_the_exit_status_of_io_errors() {
        for cmd in ["run", "replay", "bench", "stress"] {
            let o = text(&softmm(&[cmd, "--help"]).stdout);
            assert!(o.contains("Exit status: 0"), "{cmd}: {o}");
            assert!(o.contains("I/O error"), "{cmd}: {o}");
        }
    }
}
