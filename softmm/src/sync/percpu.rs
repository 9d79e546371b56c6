//! Per-CPU data in user space.
//!
//! * [`home`] is the CPU the calling thread runs on (`sched_getcpu`: an rseq read in
//!   glibc 2.35+, the vDSO otherwise), as the kernel indexes per-CPU data by
//!   `smp_processor_id()`. Model-checking and Miri builds (and a failing `sched_getcpu`)
//!   number threads round robin on first use instead. Either way two threads can share a
//!   slot (preemption, migration, more threads than slots): per-CPU data here must stay
//!   correct under sharing, it is only slower. Why the CPU and not a per-thread number:
//!   threads come and go (a bench spawns new ones every run), and a new thread's number
//!   points it at a shard nobody freed frames to, so it steals from the same shard as
//!   its neighbour and they contend on one stack head; a CPU's frames are freed to and
//!   reused from that CPU's shard, warm in its cache.
//! * [`PerCpuCounter`] is a statistic that every thread bumps without sharing a cache
//!   line with the others (`percpu_counter`): `add` touches the home slot only, `sum`
//!   reads them all. A fault counter shared by all faulting threads was one cache line
//!   written by every fault of every thread, which is what kept two threads faulting in
//!   disjoint VMAs from scaling (`softmm bench fault4k` at 2 threads).

use crossbeam_utils::CachePadded;

use super::{AtomicU64, Ordering};

/// Slots of a [`PerCpuCounter`]: enough for the CPUs of the machines we run on; one
/// in model-checking builds (the checkers explore every atomic).
const SLOTS: usize = if cfg!(any(loom, shuttle)) { 1 } else { 32 };

std::thread_local! {
    static HOME: usize = {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Relaxed: a ticket, ordered with nothing else.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
}

/// The calling CPU's slot among `n` (see the module rules).
#[inline]
pub(crate) fn home(n: usize) -> usize {
    #[cfg(not(any(loom, shuttle, miri)))]
    {
        // SAFETY: `sched_getcpu` takes no argument and writes no memory of ours.
        let cpu = unsafe { libc::sched_getcpu() };
        if let Ok(c) = usize::try_from(cpu) {
            return c % n;
        }
    }
    // 0 while the thread's locals are being destroyed.
    HOME.try_with(|h| *h % n).unwrap_or(0)
}

/// A counter summed over per-CPU slots (statistics only: Relaxed everywhere).
#[derive(Debug)]
pub struct PerCpuCounter {
    slots: Box<[CachePadded<AtomicU64>]>,
}

impl Default for PerCpuCounter {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl PerCpuCounter {
    /// Add `n` in the calling CPU's slot.
    #[inline]
    pub fn add(&self, n: u64) {
        // Relaxed: a statistic, ordered with nothing.
        self.slots[home(self.slots.len())].fetch_add(n, Ordering::Relaxed);
    }

    /// The total: exact once the adding threads are quiet (joined), approximate while
    /// they run.
    pub fn sum(&self) -> u64 {
        // Relaxed: a statistic (callers that need the exact total join the adders first).
        self.slots.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn sums_over_threads() {
        let c = PerCpuCounter::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..1000).for_each(|_| c.add(1)));
            }
        });
        c.add(5);
        assert_eq!(c.sum(), 8005);
    }
}
