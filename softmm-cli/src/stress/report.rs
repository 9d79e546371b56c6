//! The end-of-run summary: as JSON (`--json`) and as text.
//!
//! A run passes when no thread found a mismatch and both frame checks balance
//! (`leaks` is the sum of both differences, in frames). A failing run carries the
//! command that reproduces it: the same seed and options, with `--ops` set to run up
//! to the failing operation (the failing thread's own sequence is the same
//! whatever the other threads do; their interleaving is not).

use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use serde::Serialize;

use crate::bench::TlbFlushes;

use super::{
    ops::Kind,
    runner::{Limit, Settings},
    worker::{Mismatch, Report},
};

/// Frame accounting.
#[derive(Clone, Debug, Serialize)]
pub struct Frames {
    /// Frames in use with all threads joined.
    pub in_use: u64,
    /// What the oracles say it must be: the sum of the fields below.
    pub expected: u64,
    /// The zero frame.
    pub zero: u64,
    /// Private pages holding a frame.
    pub private: u64,
    /// Pages cached by live objects (shared anonymous memory, the threads' memfds).
    pub shared: u64,
    /// Linked page-table pages below the roots.
    pub page_tables: u64,
    /// One root table per address space.
    pub roots: u64,
    /// Frames in use after every address space was dropped (must be 1).
    pub after_teardown: u64,
}

/// The result of a stress run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// No mismatch and no leak.
    pub ok: bool,
    /// The run's seed.
    pub seed: u64,
    /// The seed as a decimal string: JSON readers that hold numbers as doubles lose the
    /// low bits of a seed above 2^53.
    pub seed_text: String,
    /// Worker threads.
    pub threads: usize,
    /// Address spaces.
    pub spaces: usize,
    /// `--ops`, when the run was bounded by operations.
    pub ops_per_thread: Option<u64>,
    /// `--seconds`, when the run was bounded by time.
    pub seconds: Option<f64>,
    /// Wall time of the threads.
    pub elapsed_s: f64,
    /// Operations done, all kinds (verify reads included).
    pub ops_total: u64,
    /// Operations done per kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Accesses that ended in the SIGSEGV or SIGBUS the oracle expected.
    pub signals: u64,
    /// Page faults handled (`mm.counters.faults`, all spaces).
    pub faults: u64,
    /// Copy-on-write copies.
    pub cow_copies: u64,
    /// Faults handled under a per-VMA read lock (`PerVma`).
    pub vma_lock_faults: u64,
    /// Faults that fell back to `mmap_lock` (`PerVma`).
    pub vma_lock_fallbacks: u64,
    /// TLB flushes of the run's address spaces (`AddressSpace::tlb_flushes`, summed;
    /// not those of fork children).
    pub tlb_flushes: TlbFlushes,
    /// Threads that found a mismatch (each stops at its first).
    pub mismatches: u64,
    /// Those mismatches.
    pub mismatch_details: Vec<Mismatch>,
    /// Frame accounting.
    pub frames: Frames,
    /// Frames unaccounted for: |in_use - expected| + |after_teardown - 1|.
    pub leaks: u64,
    /// Per-thread digests of the operation sequence and results.
    pub digests: Vec<String>,
    /// The command that reproduces a failing run.
    pub reproduce: Option<String>,
}

impl Summary {
    /// Assemble the summary.
    pub fn new(
        s: &Settings,
        elapsed_s: f64,
        counts: &[u64; Kind::ALL.len()],
        reports: &[Report],
        faults: &softmm::mm::MmCounters,
        tlb_flushes: TlbFlushes,
        frames: Frames,
    ) -> Self {
        let mismatch_details: Vec<Mismatch> =
            reports.iter().filter_map(|r| r.mismatch.clone()).collect();
        let leaks = frames.in_use.abs_diff(frames.expected) + frames.after_teardown.abs_diff(1);
        let ok = mismatch_details.is_empty() && leaks == 0;
        let ops = match mismatch_details.iter().map(|m| m.repro_ops).min() {
            Some(n) => n,
            None => reports.iter().map(|r| r.ops).max().unwrap_or(0),
        };
        let reproduce = (!ok).then(|| {
            let mut cmd = format!(
                "softmm stress --seed {:#x} --threads {} --ops {ops}",
                s.seed, s.threads
            );
            for a in &s.repro {
                cmd.push(' ');
                cmd.push_str(a);
            }
            cmd
        });
        Self {
            ok,
            seed: s.seed,
            seed_text: s.seed.to_string(),
            threads: s.threads,
            spaces: s.spaces,
            ops_per_thread: match s.limit {
                Limit::Ops(n) => Some(n),
                Limit::Seconds(_) => None,
            },
            seconds: match s.limit {
                Limit::Seconds(x) => Some(x),
                Limit::Ops(_) => None,
            },
            elapsed_s,
            ops_total: counts.iter().sum(),
            ops: Kind::ALL
                .iter()
                .map(|k| (k.name(), counts[k.index()]))
                .collect(),
            signals: reports.iter().map(|r| r.signals).sum(),
            faults: faults.faults.sum(),
            cow_copies: faults.cow_copies.sum(),
            vma_lock_faults: faults.vma_lock_faults.sum(),
            vma_lock_fallbacks: faults.vma_lock_fallbacks.sum(),
            tlb_flushes,
            mismatches: mismatch_details.len() as u64,
            mismatch_details,
            frames,
            leaks,
            digests: reports
                .iter()
                .map(|r| format!("{:016x}", r.digest))
                .collect(),
            reproduce,
        }
    }

    /// The human-readable summary.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let limit = match (self.ops_per_thread, self.seconds) {
            (Some(n), _) => format!("{n} ops per thread"),
            (_, Some(s)) => format!("{s} s"),
            _ => String::new(),
        };
        writeln!(
            out,
            "softmm stress: {} threads over {} address space{}, {limit}, seed {:#x}",
            self.threads,
            self.spaces,
            if self.spaces == 1 { "" } else { "s" },
            self.seed
        )?;
        writeln!(
            out,
            "ops: {} in {:.1} s ({:.0} ops/s)",
            self.ops_total,
            self.elapsed_s,
            self.ops_total as f64 / self.elapsed_s.max(1e-9)
        )?;
        for (name, n) in &self.ops {
            writeln!(out, "  {name:<24} {n:>12}")?;
        }
        writeln!(
            out,
            "faults: {} ({} copy-on-write; {} under a VMA lock, {} fell back to mmap_lock), expected signals: {}",
            self.faults,
            self.cow_copies,
            self.vma_lock_faults,
            self.vma_lock_fallbacks,
            self.signals
        )?;
        let t = &self.tlb_flushes;
        writeln!(
            out,
            "TLB flushes: {} targeted, {} full, {} skipped (no CPU held the range)",
            t.targeted, t.full, t.skipped
        )?;
        writeln!(out, "mismatches: {}", self.mismatches)?;
        for m in &self.mismatch_details {
            writeln!(
                out,
                "  thread {} op #{} (window {}): {}\n    {}",
                m.thread, m.op_index, m.window, m.op, m.what
            )?;
        }
        let f = &self.frames;
        writeln!(
            out,
            "frames in use: {} (expected {} = {} zero + {} private + {} shared + {} page tables + {} roots)",
            f.in_use, f.expected, f.zero, f.private, f.shared, f.page_tables, f.roots
        )?;
        writeln!(
            out,
            "frames after teardown: {} (expected 1)",
            f.after_teardown
        )?;
        writeln!(out, "leaks: {}", self.leaks)?;
        if let Some(cmd) = &self.reproduce {
            writeln!(out, "FAILED; reproduce with: {cmd}")?;
        } else {
            writeln!(out, "OK")?;
        }
        Ok(())
    }
}
