//! The results: the JSON document (`--json`) and the terminal table.
//!
//! JSON schema (one object):
//!
//! ```text
//! { "machine": { "cpu_model": str, "cores": int, "kernel": str, "arch": str },
//!   "commit": str | null,            // the commit softmm was built from (build.rs)
//!   "reps": int, "quick": bool,
//!   "results": [ { "workload": str,
//!                  "case": str?,             // translate: "hit" | "walk";
//!                                            // fault-churn: "quiet" | "busy" | "churn";
//!                                            // vma-lookup: "random" | "hot";
//!                                            // shootdown: "targeted/N" | "full/N",
//!                                            // N readers besides the unmapping thread
//!                  "op": str?,               // the timed operation, where the name
//!                                            // does not say it (the host's stand-ins)
//!                  "variant": "host" | softmm variant ("PerVma", "Global"),
//!                  "threads": int,
//!                  "vmas": int?,             // many-VMA workloads: VMAs mapped
//!                  "ops": int,               // timed operations in all (exit-many-vmas:
//!                                            // VMAs torn down; zap: pages)
//!                  "ns_per_op": float,       // mean per thread, median run
//!                  "p50_ns": float, "p99_ns": float, // per-batch means, nearest rank
//!                  "ops_per_s": float,       // all threads, median run
//!                  "ops_per_s_on_cpu": float?, // the same less CPU waits (preemption)
//!                  "preemptions": float?,    // involuntary context switches of the
//!                                            // timed threads per run, median run
//!                  "ratio_to_quiet": float?, // fault-churn: ops_per_s / the quiet row's
//!                  "ratio_to_quiet_on_cpu": float?, // the same of ops_per_s_on_cpu
//!                  "churn_ops_per_s": float?,// fault-churn busy, churn: thread 2's rounds/s
//!                  "rcu_callbacks": int?,    // exit-many-vmas, softmm: queued per drop
//!                  "tree_levels": int?,      // vma-lookup, mmap-at-scale, softmm: nodes
//!                                            // a VMA lookup visits, root to leaf
//!                  "tlb_flushes": { "targeted": int, "full": int, "skipped": int }? } ],
//!                                            // shootdown, softmm: the address space's
//!                                            // TLB flushes while timed, all repetitions
//!   "skipped": [ { "workload", "case"?, "variant", "threads", "vmas"?, "reason" } ]? }
//! ```
//!
//! Skipped cells are host cells whose VMAs do not fit under `vm.max_map_count`.

use std::{fmt::Write as _, ops::Add};

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

/// TLB flushes of a softmm address space (`AddressSpace::tlb_flushes`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlbFlushes {
    /// Flushes of a range of at most 33 pages, sent to the CPUs that may hold it.
    pub targeted: u64,
    /// Flushes that dropped every translation (asked for, or a longer range).
    pub full: u64,
    /// Flushes that found no CPU that might hold a translation of their range.
    pub skipped: u64,
}

impl TlbFlushes {
    /// From `AddressSpace::tlb_flushes`'s `(targeted, full, skipped)`.
    pub fn from_counts((targeted, full, skipped): (u64, u64, u64)) -> Self {
        Self {
            targeted,
            full,
            skipped,
        }
    }

    /// The flushes made since `before` was read (counters only grow).
    pub fn since(self, before: Self) -> Self {
        Self {
            targeted: self.targeted.saturating_sub(before.targeted),
            full: self.full.saturating_sub(before.full),
            skipped: self.skipped.saturating_sub(before.skipped),
        }
    }
}

impl Add for TlbFlushes {
    type Output = Self;

    fn add(self, o: Self) -> Self {
        Self {
            targeted: self.targeted + o.targeted,
            full: self.full + o.full,
            skipped: self.skipped + o.skipped,
        }
    }
}

/// One cell's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultRow {
    /// Workload name.
    pub workload: String,
    /// Case of a workload with several rows (`translate`: `hit`, `walk`;
    /// `fault-churn`: `quiet`, `churn`; `shootdown`: `targeted/N`, `full/N` with N
    /// readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The timed operation, where the workload's name does not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// `host` or the softmm `Config` variant.
    pub variant: String,
    /// Threads, each on its own regions.
    pub threads: usize,
    /// VMAs mapped before timing (many-VMA workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmas: Option<u64>,
    /// Operations timed, all threads and repetitions (`zap`: pages).
    pub ops: u64,
    /// Mean nanoseconds per operation, per thread (median over repetitions).
    pub ns_per_op: f64,
    /// Median of the per-batch means.
    pub p50_ns: f64,
    /// 99th percentile of the per-batch means.
    pub p99_ns: f64,
    /// Operations per second, all threads together (median over repetitions).
    pub ops_per_s: f64,
    /// As `ops_per_s`, with each thread's time runnable but waiting for a CPU taken out
    /// (preempted, or woken from a lock and not yet running; see `stats`), where the
    /// kernel reports it; not for `exit-many-vmas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_s_on_cpu: Option<f64>,
    /// Involuntary context switches of the timed threads during their timed phases,
    /// per run (median over repetitions): another process took a CPU (not counted for
    /// `exit-many-vmas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// `fault-churn`: throughput over that of the `quiet` row of the same variant: the
    /// median over repetitions of this run's ops/s over the quiet run's of the same
    /// repetition (the two ran minutes apart at most, so a machine whose speed drifts
    /// between repetitions moves both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_quiet: Option<f64>,
    /// `fault-churn`: the same ratio on CPU time (preemption taken out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_quiet_on_cpu: Option<f64>,
    /// `fault-churn`, `busy` and `churn` rows: thread 2's mmap+mprotect+munmap rounds per second
    /// (median over repetitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_ops_per_s: Option<f64>,
    /// `exit-many-vmas`, softmm: RCU callbacks one teardown queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcu_callbacks: Option<u64>,
    /// `vma-lookup`, `mmap-at-scale`, softmm: nodes a VMA lookup visits, root to leaf
    /// (the logarithm the cost grows with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_levels: Option<u32>,
    /// `shootdown`, softmm: the address space's TLB flushes during the timed phases of
    /// all repetitions (one per munmap, unless no CPU held the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlb_flushes: Option<TlbFlushes>,
    /// Aggregate ops/s of each repetition, in order (what `ratio_to_quiet` pairs up;
    /// not in the JSON).
    #[serde(skip)]
    pub run_rates: Vec<f64>,
    /// The same on CPU time.
    #[serde(skip)]
    pub run_rates_on_cpu: Vec<f64>,
}

/// A cell that was not run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    /// Workload name.
    pub workload: String,
    /// Case, as in [`ResultRow::case`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// `host` (today only host cells are skipped).
    pub variant: String,
    /// Threads.
    pub threads: usize,
    /// VMAs the cell would have mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmas: Option<u64>,
    /// Why it was not run.
    pub reason: String,
}

/// `1k`, `64k`, `1M`: a VMA count, short.
pub fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
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
    /// The commit softmm was built from (recorded by `build.rs`), if known.
    pub commit: Option<String>,
    /// Timed repetitions per cell.
    pub reps: u32,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// One row per cell.
    pub results: Vec<ResultRow>,
    /// Cells not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl Report {
    pub(crate) fn new(opts: &Options, results: Vec<ResultRow>, skipped: Vec<Skipped>) -> Self {
        Self {
            machine: Machine::detect(),
            commit: option_env!("SOFTMM_COMMIT").map(str::to_string),
            reps: opts.reps,
            quick: opts.quick,
            results,
            skipped,
        }
    }

    /// The host row matching `row` (same workload, case, threads and VMAs).
    pub fn host_of(&self, row: &ResultRow) -> Option<&ResultRow> {
        self.results.iter().find(|h| {
            h.variant == HOST
                && h.workload == row.workload
                && h.case == row.case
                && h.threads == row.threads
                && h.vmas == row.vmas
        })
    }

    /// The 1-thread row of `row`'s workload, case, variant and VMAs.
    fn one_thread_of(&self, row: &ResultRow) -> Option<&ResultRow> {
        self.results.iter().find(|o| {
            o.threads == 1
                && o.variant == row.variant
                && o.workload == row.workload
                && o.case == row.case
                && o.vmas == row.vmas
        })
    }

    /// The table's last column: scaling over 1 thread, churn figures, RCU callbacks.
    fn note(&self, r: &ResultRow) -> String {
        let mut n = Vec::new();
        if let Some(q) = r.ratio_to_quiet {
            n.push(format!("{q:.2} of quiet"));
        }
        if let Some(q) = r.ratio_to_quiet_on_cpu {
            n.push(format!("{q:.2} on CPU"));
        }
        if let Some(c) = r.churn_ops_per_s {
            n.push(format!("thread 2: {c:.0} rounds/s"));
        }
        if let Some(p) = r.preemptions.filter(|&p| p > 0.0) {
            n.push(format!("preempted {p:.0}x/run"));
        }
        if let Some(c) = r.rcu_callbacks {
            n.push(format!("{c} RCU callbacks"));
        }
        if let Some(l) = r.tree_levels {
            n.push(format!("{l} tree levels"));
        }
        if let Some(f) = r.tlb_flushes {
            n.push(format!(
                "TLB flushes: {} targeted, {} full, {} skipped",
                f.targeted, f.full, f.skipped
            ));
        }
        if let Some(one) = self
            .one_thread_of(r)
            .filter(|o| r.threads > 1 && o.ops_per_s > 0.0)
        {
            n.push(format!(
                "x{:.2} ops/s of 1 thread",
                r.ops_per_s / one.ops_per_s
            ));
        }
        n.join(", ")
    }

    /// The terminal table: one line per cell, softmm rows with their ratio to the host,
    /// the skipped cells after their workload's rows, then what the operations are where
    /// the names do not say it.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:>3} {:>5}  {:<8} {:>10} {:>10} {:>10} {:>12} {:>7}  notes",
            "workload", "thr", "vmas", "variant", "ns/op", "p50 ns", "p99 ns", "ops/s", "x host"
        );
        for (i, r) in self.results.iter().enumerate() {
            let ratio = match self.host_of(r) {
                Some(h) if r.variant != HOST && h.ns_per_op > 0.0 => {
                    format!("{:.2}", r.ns_per_op / h.ns_per_op)
                }
                _ => "-".to_string(),
            };
            let _ = writeln!(
                s,
                "{:<22} {:>3} {:>5}  {:<8} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {:>7}  {}",
                r.label(),
                r.threads,
                vmas(r.vmas),
                r.variant,
                r.ns_per_op,
                r.p50_ns,
                r.p99_ns,
                r.ops_per_s,
                ratio,
                self.note(r)
            );
            if self
                .results
                .get(i + 1)
                .is_none_or(|n| n.workload != r.workload)
            {
                self.skipped_lines(&mut s, &r.workload);
            }
        }
        let _ = writeln!(
            s,
            "{} on {} cores, kernel {}; x host = ns/op of the variant / ns/op of the host kernel",
            self.machine.cpu_model, self.machine.cores, self.machine.kernel
        );
        self.op_lines(&mut s);
        s
    }

    /// The skipped cells of `workload`, as table lines.
    fn skipped_lines(&self, s: &mut String, workload: &str) {
        for k in self.skipped.iter().filter(|k| k.workload == workload) {
            let label = match &k.case {
                Some(c) => format!("{}/{c}", k.workload),
                None => k.workload.clone(),
            };
            let _ = writeln!(
                s,
                "{label:<22} {:>3} {:>5}  {:<8} not run: {}",
                k.threads,
                vmas(k.vmas),
                k.variant,
                k.reason
            );
        }
    }

    /// What the timed operations are, once per workload, case and side.
    fn op_lines(&self, s: &mut String) {
        let mut seen: Vec<(String, &str, &str)> = Vec::new();
        for r in &self.results {
            let Some(op) = &r.op else { continue };
            let side = if r.variant == HOST { HOST } else { "softmm" };
            // `shootdown`'s cases differ in the reader count only: one line per kind.
            let label = match r.case.as_deref().and_then(|c| c.split_once('/')) {
                Some((kind, _)) => format!("{}/{kind}", r.workload),
                None => r.label(),
            };
            if !seen.iter().any(|k| k.0 == label && k.1 == side) {
                seen.push((label, side, op));
            }
        }
        for (label, side, op) in seen {
            let _ = writeln!(s, "  {label}, {side}: {op}");
        }
    }
}

/// A row's VMA count for the table, `-` where it has none.
fn vmas(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, case: Option<&str>, variant: &str, threads: usize) -> ResultRow {
        ResultRow {
            workload: workload.to_string(),
            case: case.map(str::to_string),
            op: None,
            variant: variant.to_string(),
            threads,
            vmas: None,
            ops: 10,
            ns_per_op: 100.0,
            p50_ns: 100.0,
            p99_ns: 100.0,
            ops_per_s: 1e7,
            ops_per_s_on_cpu: None,
            preemptions: None,
            ratio_to_quiet: None,
            ratio_to_quiet_on_cpu: None,
            churn_ops_per_s: None,
            rcu_callbacks: None,
            tree_levels: None,
            tlb_flushes: None,
            run_rates: Vec::new(),
            run_rates_on_cpu: Vec::new(),
        }
    }

    fn report(results: Vec<ResultRow>, skipped: Vec<Skipped>) -> Report {
        Report {
            machine: Machine {
                cpu_model: "cpu".into(),
                cores: 2,
                kernel: "k".into(),
                arch: "x86_64".into(),
            },
            commit: None,
            reps: 1,
            quick: true,
            results,
            skipped,
        }
    }

    #[test]
    fn vma_counts_are_short() {
        assert_eq!(count(1_000), "1k");
        assert_eq!(count(64_000), "64k");
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(100), "100");
        assert_eq!(count(1_500), "1500");
    }

    #[test]
    fn the_table_shows_scaling_vma_counts_and_skipped_cells() {
        let mut two = row("fault4k", None, "PerVma", 2);
        two.ops_per_s = 1.8e7;
        let mut lookup = row("vma-lookup", None, "PerVma", 1);
        lookup.vmas = Some(1_000_000);
        lookup.op = Some("AddressSpace::find_vma".into());
        let skipped = Skipped {
            workload: "vma-lookup".into(),
            case: None,
            variant: HOST.into(),
            threads: 1,
            vmas: Some(1_000_000),
            reason: "does not fit".into(),
        };
        let t = report(
            vec![row("fault4k", None, "PerVma", 1), two, lookup],
            vec![skipped],
        )
        .table();
        assert!(t.contains("x1.80 ops/s of 1 thread"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[3].starts_with("vma-lookup") && lines[3].contains("1M"),
            "{t}"
        );
        assert!(lines[4].contains("host") && lines[4].contains("not run: does not fit"));
        assert!(
            t.contains("vma-lookup, softmm: AddressSpace::find_vma"),
            "{t}"
        );
    }
}
