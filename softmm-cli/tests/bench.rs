//! `softmm bench`: the JSON and plots of a quick run, the rows of the fault-path and VMA-tree workloads
//! (fault-churn, vma-lookup, mmap-at-scale, exit-many-vmas), of the TLB workloads
//! (shootdown, zap), and the refusal of unknown workloads. No assertion depends on
//! timing.

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
    // Every 2-thread row says how it scales over its 1-thread row.
    let two: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("mmap-munmap    "))
        .collect();
    assert!(
        two.iter()
            .filter(|l| l.split_whitespace().nth(1) == Some("2"))
            .all(|l| l.contains("ops/s of 1 thread")),
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

/// Rows of `workload` in a report.
fn rows_of<'a>(v: &'a Value, workload: &str) -> Vec<&'a Value> {
    v["results"]
        .as_array()
        .expect("results array")
        .iter()
        .filter(|r| r["workload"] == workload)
        .collect()
}

/// The `vmas` of the rows (and skipped cells) of `workload` in `variant`, sorted.
fn vma_counts(v: &Value, workload: &str, variant: &str) -> Vec<u64> {
    let skipped = v["skipped"].as_array().cloned().unwrap_or_default();
    let mut n: Vec<u64> = rows_of(v, workload)
        .into_iter()
        .chain(skipped.iter().filter(|k| k["workload"] == workload))
        .filter(|r| r["variant"] == variant)
        .map(|r| r["vmas"].as_u64().expect("vmas is a count"))
        .collect();
    n.sort_unstable();
    n
}

#[test]
fn the_fault_and_tree_workloads_report_their_fields() {
    let json = tmp("bench-fault-tree.json");
    let plots = tmp("bench-fault-tree-plots");
    let out = softmm(&[
        "bench",
        "--quick",
        "--reps",
        "1",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--plot",
        plots.to_str().expect("utf-8 path"),
        "--workloads",
        "fault-churn,vma-lookup",
        "mmap-at-scale",
        "exit-many-vmas",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("msync(addr, 4096, MS_ASYNC)"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
        .expect("valid JSON");
    assert_eq!(v["quick"], true);

    // fault-churn: quiet, busy (the control) and churn rows at 2 threads per variant,
    // each with its ratio; an idle thread 2 reports no rate.
    let churn = rows_of(&v, "fault-churn");
    assert_eq!(churn.len(), 9, "{churn:?}");
    for variant in ["host", "PerVma", "Global"] {
        for case in ["quiet", "busy", "churn"] {
            let r = churn
                .iter()
                .find(|r| r["variant"] == variant && r["case"] == case)
                .unwrap_or_else(|| panic!("no {variant} {case} row"));
            assert_eq!(r["threads"], 2, "{r}");
            assert!(r["ratio_to_quiet"].as_f64().is_some(), "{r}");
            assert!(r.get("vmas").is_none(), "{r}");
            if case == "quiet" {
                assert_eq!(r["ratio_to_quiet"], 1.0, "{r}");
                assert!(r.get("churn_ops_per_s").is_none(), "{r}");
            }
        }
    }

    // Many-VMA workloads: one thread, the quick VMA counts, softmm in every cell and
    // the host where it fits (reported as skipped where it does not).
    for (workload, counts) in [
        // Two cases (random, hot) per count.
        ("vma-lookup", vec![100, 100, 1_000, 1_000, 10_000, 10_000]),
        ("mmap-at-scale", vec![100, 1_000, 10_000]),
        ("exit-many-vmas", vec![1_000, 10_000]),
    ] {
        for variant in ["host", "PerVma", "Global"] {
            assert_eq!(
                vma_counts(&v, workload, variant),
                counts,
                "{workload} {variant}"
            );
        }
        for r in rows_of(&v, workload) {
            assert_eq!(r["threads"], 1, "{r}");
            if workload == "vma-lookup" {
                assert!(r["case"] == "random" || r["case"] == "hot", "{r}");
            }
            assert!(r["ops"].as_u64().expect("ops") > 0, "{r}");
            assert!(r["op"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        }
        assert!(
            plots.join(format!("{workload}.svg")).exists(),
            "{workload} plot"
        );
    }
    assert!(plots.join("fault-churn.svg").exists());

    // vma-lookup: softmm says how many tree levels a lookup visits, more for more VMAs.
    let mut levels: Vec<(u64, u64)> = rows_of(&v, "vma-lookup")
        .into_iter()
        .filter(|r| r["variant"] != "host")
        .map(|r| {
            let l = r["tree_levels"].as_u64();
            (r["vmas"].as_u64().expect("vmas"), l.expect("tree_levels"))
        })
        .collect();
    levels.sort_unstable();
    assert!(levels.len() >= 2 && levels[0].1 >= 1, "{levels:?}");
    assert!(levels.windows(2).all(|w| w[0].1 <= w[1].1), "{levels:?}");
    assert!(levels[0].1 < levels[levels.len() - 1].1, "{levels:?}");

    // exit-many-vmas: every VMA torn down counts as an operation; softmm counts the
    // RCU callbacks of the drop.
    for r in rows_of(&v, "exit-many-vmas") {
        let vmas = r["vmas"].as_u64().expect("vmas");
        assert_eq!(r["ops"].as_u64(), Some(vmas), "one repetition: {r}");
        if r["variant"] != "host" {
            assert!(r["rcu_callbacks"].as_u64().is_some(), "{r}");
        }
    }
}

#[test]
fn the_tlb_workloads_report_their_cases_and_flushes() {
    let json = tmp("bench-tlb.json");
    let plots = tmp("bench-tlb-plots");
    let out = softmm(&[
        "bench",
        "--quick",
        "--reps",
        "1",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--plot",
        plots.to_str().expect("utf-8 path"),
        "shootdown",
        "zap",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("shootdown/targeted/4"), "{stdout}");
    assert!(stdout.contains("TLB flushes: "), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
        .expect("valid JSON");

    // shootdown: per kind and reader count, one row per variant; threads = 1 + readers.
    let rows = rows_of(&v, "shootdown");
    assert_eq!(rows.len(), 2 * 4 * 3, "{rows:?}");
    for kind in ["targeted", "full"] {
        for readers in [0, 1, 2, 4] {
            let case = format!("{kind}/{readers}");
            for variant in ["host", "PerVma", "Global"] {
                let r = rows
                    .iter()
                    .find(|r| r["variant"] == variant && r["case"] == case.as_str())
                    .unwrap_or_else(|| panic!("no {variant} {case} row"));
                assert_eq!(r["threads"], readers + 1, "{r}");
                let ops = r["ops"].as_u64().expect("ops");
                assert!(ops > 0, "{r}");
                assert!(
                    r["op"].as_str().is_some_and(|s| s.contains("munmap")),
                    "{r}"
                );
                // softmm: one flush per munmap, of the kind the case names (never
                // skipped: the unmapping CPU itself wrote the page).
                let f = &r["tlb_flushes"];
                if variant == "host" {
                    assert!(f.is_null(), "{r}");
                    continue;
                }
                let (targeted, full) = (f["targeted"].as_u64(), f["full"].as_u64());
                let want = if kind == "full" { (0, ops) } else { (ops, 0) };
                assert_eq!((targeted, full), (Some(want.0), Some(want.1)), "{r}");
                assert_eq!(f["skipped"], 0, "{r}");
            }
        }
    }

    // zap: per thread count, one row per variant, counting pages (512 per madvise).
    let zap = rows_of(&v, "zap");
    assert_eq!(zap.len(), 2 * 3, "{zap:?}");
    for r in zap {
        assert!(r.get("case").is_none(), "{r}");
        let ops = r["ops"].as_u64().expect("ops");
        assert!(ops > 0 && ops % 512 == 0, "{r}");
        assert!(
            r["op"]
                .as_str()
                .is_some_and(|s| s.contains("MADV_DONTNEED")),
            "{r}"
        );
    }
    for name in ["shootdown", "zap"] {
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).expect("plot");
        assert!(svg.contains("Global"), "{name}");
    }
    let shootdown = std::fs::read_to_string(plots.join("shootdown.svg")).expect("plot");
    assert!(shootdown.contains("4 readers") && shootdown.contains("host full"));
}
