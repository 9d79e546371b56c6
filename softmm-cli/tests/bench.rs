//! `softmm bench`: the JSON and plots of a quick run, and the refusal of unknown
//! workloads. No assertion depends on timing.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

fn softmm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_softmm"))
        .args(args)
        .output()
        .expect("runs softmm")
}

fn tmp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_quick_run_writes_json_rows_and_a_plot() {
    let json = tmp("bench-quick.json");
    let plots = tmp("bench-quick-plots");
    let out = softmm(&[
        "bench",
        "--quick",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--plot",
        plots.to_str().expect("utf-8 path"),
        "mmap-munmap",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("mmap-munmap") && stdout.contains("x host"),
        "{stdout}"
    );

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
        .expect("valid JSON");
    for key in ["cpu_model", "cores", "kernel"] {
        assert!(!v["machine"][key].is_null(), "machine.{key} missing: {v}");
    }
    assert!(v.get("commit").is_some(), "commit missing");
    let rows = v["results"].as_array().expect("results array");
    for row in rows {
        for key in [
            "workload",
            "variant",
            "threads",
            "ops",
            "ns_per_op",
            "p50_ns",
            "p99_ns",
            "ops_per_s",
        ] {
            assert!(!row[key].is_null(), "{key} missing in {row}");
        }
        assert_eq!(row["workload"], "mmap-munmap");
        assert!(row["ops"].as_u64().expect("ops is a count") > 0, "{row}");
    }
    for threads in [1, 2] {
        for variant in ["host", "Global"] {
            let n = rows
                .iter()
                .filter(|r| r["variant"] == variant && r["threads"] == threads)
                .count();
            assert_eq!(n, 1, "one {variant} row at {threads} threads");
        }
    }

    let svg = std::fs::read_to_string(plots.join("mmap-munmap.svg")).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("Global") && svg.contains("host"));
}

#[test]
fn an_unknown_workload_exits_2_and_names_it() {
    let out = softmm(&["bench", "--quick", "mmap-munmap", "fault2m"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown workload `fault2m`"), "{err}");
    assert!(
        err.contains("fault4k") && err.contains("translate"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
