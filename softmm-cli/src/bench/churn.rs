//! `fault-churn`: does changing the VMA tree slow down faults elsewhere in the same
//! address space?
//!
//! Two threads share one address space (softmm) or the process (host):
//! * thread 0 runs `fault4k`'s loop (map a fresh region untimed, then first-write each
//!   4 KiB page of it, each write timed; unmap untimed): the only timed thread;
//! * thread 1 reserves 4 MiB `PROT_NONE` of its own (untimed) and, in the `churn` case,
//!   loops over `mmap(MAP_FIXED)` of 16 KiB at the 2 MiB boundary inside it, `mprotect`
//!   to `PROT_READ`, `munmap` (a hole, filled again by the next `mmap`) until thread 0's
//!   timed loop ends; in the `quiet` case it idles at the barrier; in the `busy` case
//!   (the control) it allocates, writes and frees small heap blocks of its own, as busy
//!   as a churner but sharing nothing with thread 0, so `busy`'s `ratio_to_quiet` is
//!   what a busy neighbour costs on this machine (shared caches, memory bandwidth, a
//!   hypervisor that runs both vCPUs on one core's two hyperthreads), whatever the
//!   memory manager does.
//!
//! The reservation keeps the churned VMAs away from the faulting one: a non-fixed 16
//! KiB mapping could land next to it and merge with it, and the faults would then meet
//! the churn on their own VMA. The churned pages also lie in a 2 MiB range of their own,
//! so the two threads share no leaf page table and no page-table lock: the workload
//! measures the VMA tree, `mmap_lock` and RCU, not a PTL two neighbouring regions happen
//! to share. Each `churn` row's `ratio_to_quiet` is its fault throughput over the
//! `quiet` row's of the same variant (both run interleaved); `churn_ops_per_s` says how
//! hard thread 1 churned. The `churn` case needs two CPUs where `quiet` needs one: on a
//! machine with two CPUs and other work, `ratio_to_quiet` also measures how often the
//! scheduler takes a CPU away, which `preemptions` and `ratio_to_quiet_on_cpu` show.

use std::{
    sync::{
        Barrier,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use super::{
    machine::{Machine, OpError, Thread},
    stats::Recorder,
    workload::{Neighbour, Workload},
};

const KIB: u64 = 1024;
/// A leaf page table's span.
const TABLE_SPAN: u64 = 2048 * KIB;
/// Thread 1's reservation: two leaf-table spans, so that the one starting at the
/// 2 MiB boundary inside it lies wholly inside it.
const RESERVE: u64 = 2 * TABLE_SPAN;
/// What thread 1 maps, protects and unmaps.
const CHURN: u64 = 16 * KIB;

/// What one run of `fault-churn` measured.
#[derive(Debug)]
pub(crate) struct ChurnRun {
    /// Thread 0's fault timings.
    pub faults: Recorder,
    /// Thread 1's rate of mmap+mprotect+munmap rounds per second (0 when idle).
    pub churn_rate: f64,
}

/// One run on `m`, thread 1 doing what `neighbour` says.
pub(crate) fn run<M: Machine>(
    m: &M,
    w: Workload,
    neighbour: Neighbour,
    quick: bool,
) -> Result<ChurnRun, OpError> {
    let barrier = Barrier::new(2);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (barrier, stop) = (&barrier, &stop);
        let churner = s.spawn(move || churn_thread(m, neighbour, barrier, stop));
        let faults = fault_thread(m, w, quick, barrier, stop);
        let churned = churner
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Ok(ChurnRun {
            faults: faults?,
            churn_rate: churned?,
        })
    })
}

/// Thread 0: `fault4k`'s setup, timed loop and teardown; sets `stop` after the loop.
/// Both barriers are reached on every path, so an error cannot strand thread 1.
fn fault_thread<M: Machine>(
    m: &M,
    w: Workload,
    quick: bool,
    barrier: &Barrier,
    stop: &AtomicBool,
) -> Result<Recorder, OpError> {
    let mut t = m.thread();
    let setup = w.setup(&mut t, 0, quick);
    barrier.wait();
    let ops = w.ops(quick);
    let mut rec = Recorder::with_capacity(ops as usize);
    let timed = rec.watch_preemptions(|rec| {
        let r = setup.as_ref().map_err(Clone::clone)?;
        (0..ops).try_for_each(|i| rec.batch(1, || w.op(&mut t, r, i)))
    });
    // Relaxed is enough: the flag only ends thread 1's loop; the barrier orders the rest.
    stop.store(true, Ordering::Relaxed);
    barrier.wait();
    let down = setup.and_then(|r| w.teardown(&mut t, r));
    timed.and(down).map(|()| rec)
}

/// Thread 1: reserve, then churn (or idle, or keep busy) until `stop`; its rounds per
/// second.
fn churn_thread<M: Machine>(
    m: &M,
    neighbour: Neighbour,
    barrier: &Barrier,
    stop: &AtomicBool,
) -> Result<f64, OpError> {
    let mut t = m.thread();
    let base = t.reserve(RESERVE);
    barrier.wait();
    let churned = match &base {
        // The 2 MiB-aligned address in the middle: `[at, at + 2 MiB)` is inside
        // `[b, b + 4 MiB)` (b is page-aligned, so `at > b` and `at + 2 MiB <= b + 4 MiB`).
        Ok(b) if neighbour == Neighbour::Churn => {
            churn(&mut t, (b + TABLE_SPAN) & !(TABLE_SPAN - 1), stop)
        }
        Ok(_) if neighbour == Neighbour::Busy => Ok(busy(stop)),
        Ok(_) => Ok(0.0),
        Err(e) => Err(e.clone()),
    };
    barrier.wait();
    let down = base.and_then(|b| t.unmap(b, RESERVE));
    churned.and_then(|r| down.map(|()| r))
}

fn churn<T: Thread>(t: &mut T, at: u64, stop: &AtomicBool) -> Result<f64, OpError> {
    let t0 = Instant::now();
    let mut rounds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        t.map_fixed(at, CHURN)?;
        t.protect(at, CHURN, false)?;
        t.unmap(at, CHURN)?;
        rounds += 1;
    }
    Ok(rounds as f64 / t0.elapsed().as_secs_f64())
}

/// The control: heap work of thread 1's own, about what a churn round does to memory
/// (6 blocks of 256 bytes allocated, written, read and freed: the VMAs and tree nodes a
/// round makes and frees), with nothing shared with thread 0.
fn busy(stop: &AtomicBool) -> f64 {
    let t0 = Instant::now();
    let mut rounds = 0u64;
    let mut sum = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let blocks: Vec<Box<[u64; 32]>> = (0..6)
            .map(|i| std::hint::black_box(Box::new([rounds ^ i; 32])))
            .collect();
        sum = blocks.iter().fold(sum, |s, b| s.wrapping_add(b[31]));
        drop(std::hint::black_box(blocks));
        rounds += 1;
    }
    std::hint::black_box(sum);
    rounds as f64 / t0.elapsed().as_secs_f64()
}
