//! Workloads among many VMAs: `vma-lookup`, `mmap-at-scale` ([`Kind::Scaled`]) and
//! `exit-many-vmas` ([`Kind::Teardown`]).
//!
//! * **Making N VMAs** ([`fill_vmas`]): reserve N pages `PROT_NONE`, then make every
//!   second page `PROT_READ` (N/2 `mprotect` calls, each splitting one VMA in three).
//!   Neighbouring pages differ in protection, so nothing merges: exactly N VMAs, with
//!   no gap between them. softmm and the host make them the same way (the host's
//!   `exit-many-vmas` child repeats it in raw syscalls, `exit.rs`). A reservation whose
//!   length is a multiple of 2 MiB would be placed 2 MiB-aligned (THP alignment of
//!   anonymous mappings), leaving a gap above it: for such N one page more is reserved
//!   and its lowest page unmapped again ([`reserve_pages`]), so that the VMAs always end
//!   where a reservation of any other length would.
//! * **Scaled cells** keep their VMAs for the whole workload: the first (warm-up) run of
//!   a cell fills, later runs only time. The thread handle that made them stays with the
//!   cell ([`Filled`]) and runs on the calling thread.
//! * **Where `mmap-at-scale`'s mapping lands:** top-down placement takes the highest
//!   free gap below `mmap_base`; the filled VMAs were mapped first and leave no gap, so
//!   the new page goes just below all of them. A gap-augmented tree finds that gap in
//!   O(log n), a walk over the VMAs in O(n): this is what the workload shows.
//! * **Budget:** a run stops early once it has timed 8 batches and spent
//!   [`Workload::budget`], so an operation that costs milliseconds at 1M VMAs does not
//!   stretch the bench to hours; `ops` in the row says how many were timed.

use std::time::Duration;

use super::{
    machine::{Machine, OpError, Teardown, Thread},
    stats::Recorder,
    workload::{PAGE, Workload, xorshift},
};

/// Random lookup addresses kept per cell (the lookups cycle through them).
const LOOKUP_ADDRS: u64 = 1 << 16;
/// `vma-lookup/hot`: the lookups cycle through the first this many of them (a working
/// set whose tree paths stay in cache).
const HOT_ADDRS: u64 = 64;
/// Batches a budgeted run times at least.
const MIN_BATCHES: u64 = 8;

/// The span of a PMD entry: lengths that are multiples of it get THP alignment.
const HUGE: u64 = 2 << 20;

/// Pages to reserve for `vmas` VMAs, of which the lowest `.1` are unmapped again (see
/// the module doc).
pub(crate) fn reserve_pages(vmas: u64) -> (u64, u64) {
    let extra = u64::from((vmas * PAGE).is_multiple_of(HUGE));
    (vmas + extra, extra)
}

/// Map `vmas` VMAs (see the module doc); returns the first address of the range.
pub(crate) fn fill_vmas<T: Thread>(t: &mut T, vmas: u64) -> Result<u64, OpError> {
    let (pages, skip) = reserve_pages(vmas);
    let r = t.reserve(pages * PAGE)?;
    if skip > 0 {
        t.unmap(r, skip * PAGE)?;
    }
    let base = r + skip * PAGE;
    for i in (1..vmas).step_by(2) {
        t.protect(base + i * PAGE, PAGE, false)?;
    }
    Ok(base)
}

/// A cell's thread handle and the VMAs it mapped.
#[derive(Debug)]
pub(crate) struct Filled<T> {
    t: T,
    /// Random page addresses inside the filled range.
    addrs: Vec<u64>,
}

impl<T: Thread> Filled<T> {
    fn new(mut t: T, vmas: u64) -> Result<Self, OpError> {
        let base = fill_vmas(&mut t, vmas)?;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let addrs = (0..LOOKUP_ADDRS)
            .map(|_| base + xorshift(&mut x) % vmas * PAGE)
            .collect();
        Ok(Self { t, addrs })
    }

    /// Nodes a VMA lookup visits in this cell's address space (softmm).
    pub(crate) fn tree_levels(&self) -> Option<u32> {
        self.t.tree_levels()
    }

    /// Timed operation number `i` of `w`.
    #[inline]
    fn op(&mut self, w: Workload, i: u64) -> Result<(), OpError> {
        match w {
            Workload::MmapAtScale => {
                let a = self.t.map(PAGE)?;
                self.t.unmap(a, PAGE)
            }
            Workload::VmaLookupHot => {
                let a = self.addrs[(i % HOT_ADDRS) as usize];
                self.t.lookup(a)
            }
            _ => {
                let a = self.addrs[(i % LOOKUP_ADDRS) as usize];
                self.t.lookup(a)
            }
        }
    }
}

/// One run of a [`Kind::Scaled`](super::workload::Kind::Scaled) workload on `m` with
/// `vmas` VMAs, filling them on the cell's first run.
pub(crate) fn run<M: Machine>(
    m: &M,
    filled: &mut Option<Filled<M::Thread>>,
    w: Workload,
    vmas: u64,
    quick: bool,
) -> Result<Recorder, OpError> {
    let f = match filled {
        Some(f) => f,
        None => filled.insert(Filled::new(m.thread(), vmas)?),
    };
    let (ops, b) = (w.ops(quick), w.batch());
    let budget = w.budget(quick).unwrap_or(Duration::MAX);
    let mut rec = Recorder::with_capacity((ops / b) as usize);
    rec.watch_preemptions(|rec| {
        let mut i = 0;
        while i < ops && (i < MIN_BATCHES * b || rec.busy < budget) {
            rec.batch(b, || (i..i + b).try_for_each(|k| f.op(w, k)))?;
            i += b;
        }
        Ok::<_, OpError>(())
    })?;
    Ok(rec)
}

/// One run of `exit-many-vmas`: one teardown of `vmas` VMAs as one sample, its time per
/// VMA; the recorder counts the VMAs as operations.
pub(crate) fn teardown<M: Machine>(m: &M, vmas: u64) -> Result<(Recorder, Teardown), OpError> {
    let td = m.teardown(vmas)?;
    let mut rec = Recorder::with_capacity(1);
    rec.samples.push(td.time.as_nanos() as f64 / vmas as f64);
    rec.ops = vmas;
    rec.busy = td.time;
    Ok((rec, td))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_get_thp_alignment() {
        for vmas in [100, 512, 1_000, 64_000, 1 << 20, 1_000_000] {
            let (pages, skip) = reserve_pages(vmas);
            assert_eq!(pages - skip, vmas);
            assert!(!(pages * PAGE).is_multiple_of(HUGE), "{vmas}");
        }
    }
}
