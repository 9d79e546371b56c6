//! Set up the address spaces and windows, run the threads, then account for frames.
//!
//! All spaces share one `PhysMem`, so threads of different spaces contend on the frame
//! allocator too. The runner reserves every thread's window (one PROT_NONE mmap each,
//! placed by softmm's top-down search, so neighbouring windows touch and their VMAs may
//! merge) before any thread starts: a later reservation could land in a hole another
//! thread punched. The first thread of each space also owns that space's heap (brk).
//!
//! Frame accounting runs twice, each time after RCU barriers so deferred table frees
//! have run (a worker's pending callbacks reach the global queue when it exits):
//! * quiescent, all threads joined: frames in use == 1 (zero frame) + frames the oracles
//!   say are held + page-table pages (linked tables + one root per space);
//! * after dropping every address space: frames in use == 1.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    thread,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use softmm::{AddressSpace, Config, PhysMem, abi::*, rcu};

use crate::bench::TlbFlushes;

use super::{
    file::FILE_MAX_PAGES,
    ops::{Kind, MAX_PAGES},
    oracle::{Breakage, PAGE},
    report::{Frames, Summary},
    worker::{self, Shared, Spec},
};

/// Pages of the heap region the heap's owner uses.
pub const HEAP_PAGES: usize = 64;

/// How long a run lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// This many operations per thread.
    Ops(u64),
    /// This many seconds.
    Seconds(f64),
}

/// A stress run's parameters.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Worker threads.
    pub threads: usize,
    /// Address spaces (threads spread round robin).
    pub spaces: usize,
    /// When to stop.
    pub limit: Limit,
    /// Seed of all per-thread RNGs.
    pub seed: u64,
    /// Configuration of every space.
    pub config: Config,
    /// Pages in each thread's window.
    pub window_pages: usize,
    /// The `--inject-bug` hook (thread 0 only).
    pub inject_bug: bool,
    /// A deliberate oracle bug.
    pub breakage: Option<Breakage>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Print every operation and its result on stderr.
    pub trace: bool,
    /// Also draw MADV_REMOVE (see `Op::draw`).
    pub madv_remove: bool,
    /// Options, besides `--seed`, `--threads` and `--ops`, that reproduce this run.
    pub repro: Vec<String>,
}

/// Frames a run can need at most: per thread its window, the objects its window pages
/// keep alive (at most one per page, each at most `MAX_PAGES` long), a heap, its file,
/// and while a child of a fork lives, a second copy of its private pages; plus page
/// tables and slack for frees still waiting for RCU.
pub fn max_frames(threads: usize, spaces: usize, window_pages: usize) -> u64 {
    let private = window_pages + HEAP_PAGES;
    let per_thread = window_pages * (1 + MAX_PAGES) + HEAP_PAGES + FILE_MAX_PAGES + private + 64;
    (threads * per_thread + spaces * 64 + 4096) as u64
}

/// The seed of thread `index` (splitmix64 of the run's seed and the index).
pub fn thread_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Run the stress test; `Err` when the machine cannot be set up.
pub fn run(s: &Settings) -> Result<Summary, String> {
    let pm = PhysMem::new(s.config.phys_mem_bytes)
        .ok_or("cannot reserve the physical memory (phys_mem_bytes)")?;
    let mut spaces = Vec::new();
    for _ in 0..s.spaces {
        let mm = AddressSpace::with_phys(&pm, s.config.clone())
            .map_err(|e| format!("cannot create an address space: {e}"))?;
        spaces.push(mm);
    }
    let mut specs = Vec::new();
    for index in 0..s.threads {
        let mm = Arc::clone(&spaces[index % s.spaces]);
        let bytes = s.window_pages as u64 * PAGE;
        let base = mm
            .mmap(0, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            .map_err(|e| format!("cannot reserve the window of thread {index}: {e}"))?;
        let heap = (index < s.spaces).then(|| (mm.heap().0, HEAP_PAGES));
        specs.push(Spec {
            index,
            mm,
            window: (base, s.window_pages),
            heap,
            seed: thread_seed(s.seed, index),
            ops: match s.limit {
                Limit::Ops(n) => Some(n),
                Limit::Seconds(_) => None,
            },
            inject_bug: s.inject_bug && index == 0,
            breakage: s.breakage,
            trace: s.trace,
            madv_remove: s.madv_remove,
        });
    }
    let shared = Shared::default();
    let start = Instant::now();
    let mut reports = run_threads(s, specs, &shared);
    let elapsed = start.elapsed().as_secs_f64();
    reports.sort_by_key(|r| r.index);

    let private: u64 = reports.iter().map(|r| r.resident.0).sum();
    let shmem: u64 = reports.iter().map(|r| r.resident.1).sum();
    let page_tables: u64 = spaces.iter().map(|mm| mm.nr_page_tables()).sum();
    let expected = 1 + private + shmem + page_tables + s.spaces as u64;
    let in_use = settle(&pm, expected);
    // Sum of every space's counters.
    let faults = softmm::mm::MmCounters::default();
    for mm in &spaces {
        let c = &mm.counters;
        faults.faults.add(c.faults.sum());
        faults.cow_copies.add(c.cow_copies.sum());
        faults.vma_lock_faults.add(c.vma_lock_faults.sum());
        faults.vma_lock_fallbacks.add(c.vma_lock_fallbacks.sum());
    }
    let tlb_flushes = spaces
        .iter()
        .map(|mm| TlbFlushes::from_counts(mm.tlb_flushes()))
        .fold(TlbFlushes::default(), |a, b| a + b);
    drop(spaces);
    let after_teardown = settle(&pm, 1);

    let mut counts = [0u64; Kind::ALL.len()];
    for r in &reports {
        for (c, n) in counts.iter_mut().zip(r.counts) {
            *c += n;
        }
    }
    Ok(Summary::new(
        s,
        elapsed,
        &counts,
        &reports,
        &faults,
        tlb_flushes,
        Frames {
            in_use,
            expected,
            zero: 1,
            private,
            shared: shmem,
            page_tables,
            roots: s.spaces as u64,
            after_teardown,
        },
    ))
}

/// Frames in use once RCU callbacks have run: two barriers, then a few more while the
/// count differs from `want` (a late callback is not a leak).
fn settle(pm: &PhysMem, want: u64) -> u64 {
    rcu::barrier();
    rcu::barrier();
    let mut got = pm.frames_in_use();
    for _ in 0..16 {
        if got == want {
            break;
        }
        thread::sleep(Duration::from_millis(2));
        rcu::barrier();
        got = pm.frames_in_use();
    }
    got
}

fn run_threads(s: &Settings, specs: Vec<Spec>, shared: &Shared) -> Vec<worker::Report> {
    let bar = progress_bar(s);
    let start = Instant::now();
    thread::scope(|scope| {
        let handles: Vec<_> = specs
            .into_iter()
            .map(|spec| {
                thread::Builder::new()
                    .name(format!("stress-{}", spec.index))
                    .spawn_scoped(scope, move || worker::run(spec, shared))
                    .expect("spawns a stress thread")
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            let ops = shared.ops_done.load(Relaxed);
            let bad = shared.mismatches.load(Relaxed);
            let secs = start.elapsed().as_secs_f64();
            match s.limit {
                Limit::Ops(_) => bar.set_position(ops),
                Limit::Seconds(limit) => {
                    bar.set_position(secs as u64);
                    if secs >= limit {
                        shared.stop.store(true, Relaxed);
                    }
                }
            }
            bar.set_message(format!(
                "{ops} ops, {:.0} ops/s, {bad} mismatches",
                ops as f64 / secs.max(1e-3)
            ));
            thread::sleep(Duration::from_millis(20));
        }
        bar.finish_and_clear();
        handles
            .into_iter()
            .enumerate()
            .map(|(index, h)| h.join().unwrap_or_else(|p| worker::panicked(index, &p)))
            .collect()
    })
}

fn progress_bar(s: &Settings) -> ProgressBar {
    if !s.progress {
        return ProgressBar::hidden();
    }
    let (len, unit) = match s.limit {
        Limit::Ops(n) => (n * s.threads as u64, "ops"),
        Limit::Seconds(secs) => (secs.ceil() as u64, "s"),
    };
    let bar = ProgressBar::new(len);
    let template = format!("{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
