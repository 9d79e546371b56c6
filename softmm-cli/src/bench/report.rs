//! The results: the JSON document (`--json`) and the terminal table.
//!
//! JSON schema (one object):
//!
//! ```text
//! { "machine": { "cpu_model": str, "cores": int, "kernel": str, "arch": str },
//!   "commit": str | null,            // `git rev-parse HEAD` where available
//!   "reps": int, "quick": bool,
//!   "results": [ { "workload": str, "case": str?,   // case: translate's "hit" | "walk"
//!                  "variant": "host" | softmm variant ("Global", ...),
//!                  "threads": int, "ops": int,       // ops: timed operations in all
//!                  "ns_per_op": float,               // mean per thread, median run
//!                  "p50_ns": float, "p99_ns": float, // per-batch means, nearest rank
//!                  "ops_per_s": float } ] }          // all threads, median run
//! ```

use std::{fmt::Write as _, process::Command};

use serde::{Deserialize, Serialize};

use super::{HOST, run::Options};

/// Where the numbers were measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// The running kernel's release.
    pub kernel: String,
    /// The target architecture.
    pub arch: String,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// One cell's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultRow {
    /// Workload name.
    pub workload: String,
    /// Case of a workload with several rows (`translate`: `hit`, `walk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// `host` or the softmm `Config` variant.
    pub variant: String,
    /// Threads, each on its own regions.
    pub threads: usize,
    /// Operations timed, all threads and repetitions.
    pub ops: u64,
    /// Mean nanoseconds per operation, per thread (median over repetitions).
    pub ns_per_op: f64,
    /// Median of the per-batch means.
    pub p50_ns: f64,
    /// 99th percentile of the per-batch means.
    pub p99_ns: f64,
    /// Operations per second, all threads together (median over repetitions).
    pub ops_per_s: f64,
}

impl ResultRow {
    /// `workload` or `workload/case`.
    pub fn label(&self) -> String {
        match &self.case {
            Some(c) => format!("{}/{c}", self.workload),
            None => self.workload.clone(),
        }
    }
}

/// A whole bench run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The commit of the working tree, if known.
    pub commit: Option<String>,
    /// Timed repetitions per cell.
    pub reps: u32,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// One row per cell.
    pub results: Vec<ResultRow>,
}

impl Report {
    pub(crate) fn new(opts: &Options, results: Vec<ResultRow>) -> Self {
        Self {
            machine: Machine::detect(),
            commit: git_commit(),
            reps: opts.reps,
            quick: opts.quick,
            results,
        }
    }

    /// The host row matching `row` (same workload, case and threads).
    pub fn host_of(&self, row: &ResultRow) -> Option<&ResultRow> {
        self.results.iter().find(|h| {
            h.variant == HOST
                && h.workload == row.workload
                && h.case == row.case
                && h.threads == row.threads
        })
    }

    /// The terminal table: one line per cell, softmm rows with their ratio to the host.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:>3}  {:<8} {:>10} {:>10} {:>10} {:>12} {:>8}",
            "workload", "thr", "variant", "ns/op", "p50 ns", "p99 ns", "ops/s", "x host"
        );
        for r in &self.results {
            let ratio = match self.host_of(r) {
                Some(h) if r.variant != HOST && h.ns_per_op > 0.0 => {
                    format!("{:.2}", r.ns_per_op / h.ns_per_op)
                }
                _ => "-".to_string(),
            };
            let _ = writeln!(
                s,
                "{:<22} {:>3}  {:<8} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {:>8}",
                r.label(),
                r.threads,
                r.variant,
                r.ns_per_op,
                r.p50_ns,
                r.p99_ns,
                r.ops_per_s,
                ratio
            );
        }
        let _ = writeln!(
            s,
            "{} on {} cores, kernel {}; x host = ns/op of the variant / ns/op of the host kernel",
            self.machine.cpu_model, self.machine.cores, self.machine.kernel
        );
        s
    }
}

/// `git rev-parse HEAD` of the current directory, if git and a repository are there.
fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}
