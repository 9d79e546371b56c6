//! The address space and its system calls.
//!
//! [`AddressSpace`] composes the VMA tree and the page table into Linux system-call
//! semantics; it is the only module that does. Each call lives in its own file and
//! follows Linux's argument checks in Linux's order, returning [`Errno`] values.
//!
//! Locking: every system call takes `mmap_lock` for write; faults take a per-VMA read
//! lock (`PerVma`) or `mmap_lock` for read (`Global`). Layout changes are built in a
//! `TreeEdit` and published at once; page-table entries of a removed range are zapped
//! into a [`Gather`], whose frames are dropped after the TLB flush point; tables go
//! through RCU. Never take `mmap_lock` inside an RCU read section that waits for a grace
//! period.

pub(crate) mod access;
mod access_ops;
mod brk;
mod cold;
mod commit;
pub(crate) mod fault;
mod fork;
mod madvise;
mod mlock;
mod mmap;
mod mprotect;
mod mremap;
mod munmap;
mod populate;
mod query;
mod rmap;
mod stack;
mod vma_lock;
mod vma_ops;

pub use access::{AccessFault, Cpu, SigInfo, Translation};
pub use fault::{Access, Fault, SegvCode, Signal};
pub use rmap::{punch_hole, truncate};
pub(crate) use vma_lock::VmaCache;

use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;

use crate::{
    addr::PageAddr,
    config::Config,
    error::Errno,
    frame::PhysMem,
    pagecache::Mapper,
    pgtable::{Gather, LayoutLock, PageTable, Pte, PteFlags},
    sync::{AtomicU64, Ordering, RwLock, percpu::PerCpuCounter, rcu},
    tlb::{FlushRange, Shootdown},
    vma::{VmFlags, VmaTree},
};

/// State protected by `mmap_lock` (besides the tree, which is RCU-readable).
#[derive(Debug)]
pub(crate) struct MmState {
    /// Start of the heap (`mm->start_brk`).
    pub(crate) start_brk: u64,
    /// Current break (`mm->brk`), not page aligned.
    pub(crate) brk: u64,
    /// Flags every new VMA gets (`mm->def_flags`: VM_LOCKED after mlockall(MCL_FUTURE)).
    pub(crate) def_flags: VmFlags,
}

/// Event counters (statistics, per-CPU so that faulting threads share no cache line).
#[derive(Debug, Default)]
pub struct MmCounters {
    /// Page faults handled.
    pub faults: PerCpuCounter,
    /// Copy-on-write copies made.
    pub cow_copies: PerCpuCounter,
    /// Faults handled under a per-VMA read lock (`PerVma` fast path).
    pub vma_lock_faults: PerCpuCounter,
    /// Faults that fell back to `mmap_lock` (`PerVma`: the VMA was write-locked,
    /// detached, or the fault needed an anon identity).
    pub vma_lock_fallbacks: PerCpuCounter,
}

/// One address space (`mm_struct`): VMAs over a page table, with the system calls as
/// methods taking and returning Linux's plain integers.
///
/// ```
/// use softmm::{AddressSpace, Config, Errno, abi::*};
///
/// let mm = AddressSpace::new(Config::default())?;
/// let a = mm.mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
/// // Protecting the middle page splits the VMA in three, as /proc/PID/maps shows.
/// mm.mprotect(a + 4096, 4096, PROT_READ)?;
/// assert_eq!(mm.maps_text().lines().count(), 3);
/// assert_eq!(mm.mprotect(a + 1, 4096, PROT_READ), Err(Errno::EINVAL));
/// # Ok::<(), Errno>(())
/// ```
#[derive(Debug)]
pub struct AddressSpace {
    pub(crate) pm: Arc<PhysMem>,
    pub(crate) config: Config,
    // Cache lines: `lock`, `mm_lock_seq` and `tree` (its root pointer) are written by
    // every mmap/munmap/mprotect; a fault under a VMA lock reads `mm_lock_seq` and the
    // tree root and, on every access, the read-mostly fields (`pm`, `config`, `pt`).
    // Each written field has a line of its own (as Linux aligns `mmap_lock` and
    // `mm_lock_seq` in `mm_struct`), so that a writer elsewhere in the address space
    // does not evict the read-mostly ones from a faulting CPU's cache (`softmm bench
    // fault-churn`).
    /// `mmap_lock`. Writers take it with [`AddressSpace::write_lock`], which also runs
    /// the per-VMA lock epoch.
    pub(crate) lock: CachePadded<RwLock<MmState>>,
    /// `mm_lock_seq`: odd while `mmap_lock` is held for write (see `vma::lock`).
    pub(crate) mm_lock_seq: CachePadded<AtomicU64>,
    pub(crate) tree: CachePadded<VmaTree>,
    pub(crate) pt: PageTable,
    next_anon: AtomicU64,
    /// The accounted pages of `tree` last added to the machine's committed total
    /// (`commit.rs`).
    acct_seen: AtomicU64,
    /// This address space, for the reverse maps of the objects it maps.
    me: Weak<AddressSpace>,
    /// The CPUs that may hold translations of this address space (TLB shootdown).
    pub(crate) shootdown: Shootdown,
    /// Event counters.
    pub counters: MmCounters,
}

impl AddressSpace {
    /// A new, empty address space with its own physical memory of
    /// `config.phys_mem_bytes`.
    /// Fails with `EINVAL` when `config` does not [validate](Config::validate), `ENOMEM`
    /// when the host refuses the memory.
    pub fn new(config: Config) -> Result<Arc<Self>, Errno> {
        config.validate()?;
        let pm = PhysMem::new(config.phys_mem_bytes).ok_or(Errno::ENOMEM)?;
        Self::with_phys(&pm, config)
    }

    /// A new, empty address space over shared physical memory.
    /// Fails with `EINVAL` when `config` does not [validate](Config::validate).
    pub fn with_phys(pm: &Arc<PhysMem>, config: Config) -> Result<Arc<Self>, Errno> {
        config.validate()?;
        let pt = PageTable::new(pm).map_err(|_| Errno::ENOMEM)?;
        let brk = config.brk_start;
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            pm: Arc::clone(pm),
            mm_lock_seq: CachePadded::new(AtomicU64::new(0)),
            lock: CachePadded::new(RwLock::new(MmState {
                start_brk: brk,
                brk,
                def_flags: VmFlags::empty(),
            })),
            tree: CachePadded::new(VmaTree::new()),
            pt,
            config,
            next_anon: AtomicU64::new(1),
            acct_seen: AtomicU64::new(0),
            shootdown: Shootdown::new(),
            counters: MmCounters::default(),
        }))
    }

    /// The physical memory this address space maps.
    pub fn phys(&self) -> &Arc<PhysMem> {
        &self.pm
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A CPU context for a thread of this address space.
    pub fn cpu(self: &Arc<Self>) -> Cpu {
        Cpu::new(Arc::clone(self))
    }

    /// TLB flushes so far: `(targeted, full, skipped)`; skipped ones found no CPU of
    /// this address space to flush.
    pub fn tlb_flushes(&self) -> (u64, u64, u64) {
        let s = &self.shootdown;
        // Relaxed: statistics.
        let [t, f, k] = [&s.targeted, &s.full, &s.skipped].map(|c| c.load(Ordering::Relaxed));
        (t, f, k)
    }

    /// Flush the TLBs over what `gather` changed, then free what it collected (the
    /// mmu_gather order: clear entries, flush, free). The MUTANT frees first: a CPU
    /// may then still use a translation to a frame that was freed.
    pub(crate) fn tlb_finish(&self, gather: Gather) {
        let range = gather.flush_range().map(|(s, e)| FlushRange::Pages(s, e));
        // CPUs walk page tables inside their access windows with no RCU read section:
        // unlinked tables wait for every window open now, not only for those of CPUs
        // holding a translation of the range.
        let walkers = gather.has_tables();
        if cfg!(mutant = "tlb_free_before_flush") {
            gather.finish();
            self.shootdown.shoot(range, walkers);
            return;
        }
        self.shootdown.shoot(range, walkers);
        gather.finish();
    }

    /// Number of VMAs (`map_count`).
    pub fn map_count(&self) -> usize {
        self.tree.len(&rcu::read_lock())
    }

    /// Linked page-table pages below the root.
    pub fn nr_page_tables(&self) -> u64 {
        self.pt.nr_tables()
    }

    /// A weak reference to this address space as an object's reverse map holds it.
    pub(crate) fn mapper(&self) -> Weak<dyn Mapper> {
        self.me.clone()
    }

    pub(crate) fn new_anon_id(&self) -> u64 {
        // Relaxed: a unique-id counter.
        self.next_anon.fetch_add(1, Ordering::Relaxed)
    }

    /// Clear the leaves of `[start, end)` into `gather`, dropping mapcounts now and
    /// references after the flush; guard markers go too (munmap). Caller holds
    /// `mmap_lock` for write.
    pub(crate) fn zap_range(
        &self,
        layout: &impl LayoutLock,
        (start, end): (PageAddr, PageAddr),
        gather: &mut Gather,
    ) {
        self.zap_pages(layout, start, end, false, gather);
    }

    /// Clear the leaves that hold frames, keeping guard markers when `keep_guards`
    /// (MADV_DONTNEED, MADV_REMOVE, guard install).
    pub(crate) fn zap_pages(
        &self,
        layout: &impl LayoutLock,
        start: PageAddr,
        end: PageAddr,
        keep_guards: bool,
        gather: &mut Gather,
    ) {
        let keep = |pte: Pte| keep_guards && pte.is_guard();
        self.zap_pages_except(layout, (start, end), keep, gather);
    }

    /// Clear the leaves of `[start, end)` except those `keep` accepts; frames lose this
    /// mapping now and their references after the flush that `gather` will cover.
    pub(crate) fn zap_pages_except(
        &self,
        layout: &impl LayoutLock,
        (start, end): (PageAddr, PageAddr),
        keep: impl Fn(Pte) -> bool,
        gather: &mut Gather,
    ) {
        gather.cover(start, end);
        self.pt
            .locked(layout)
            .zap_except(start, end, keep, |_, pte| {
                if pte.has(PteFlags::SPECIAL) || !pte.has_frame() {
                    return;
                }
                self.unmap_frame(pte, gather);
            });
    }

    /// A frame's entry was cleared: drop its mapcount now and its reference after the
    /// flush; a page-cache page inherits the entry's dirty bit (`zap_pte_range`).
    pub(crate) fn unmap_frame(&self, pte: Pte, gather: &mut Gather) {
        let m = self.pm.meta(pte.pfn());
        if pte.has(PteFlags::D) && !m.has(crate::frame::PageFlags::ANON) {
            m.set_flags(crate::frame::PageFlags::DIRTY);
        }
        m.dec_mapcount();
        gather.add_page(pte.pfn());
    }
}

impl Drop for AddressSpace {
    /// `exit_mmap`: zap everything, free every table through one RCU batch, and free all
    /// VMAs with the tree's last snapshot (one deferred drop).
    fn drop(&mut self) {
        let mut gather = Gather::new(&self.pm);
        // Nobody else holds this address space: the lock is uncontended, and it is the
        // proof the walks ask for.
        let layout = self.write_lock();
        let top = PageAddr::down(crate::addr::TASK_SIZE);
        self.zap_range(&layout, (PageAddr::ZERO, top), &mut gather);
        let all = (PageAddr::ZERO, PageAddr::down(1 << 48));
        self.pt
            .locked(&layout)
            .free_tables(&layout, all, all, &mut gather);
        drop(layout);
        self.tlb_finish(gather);
        // Return this address space's charge (`vm_unacct_memory` of `exit_mmap`).
        self.sync_committed();
        // Relaxed: the last owner reads its own value.
        self.pm.uncommit(self.acct_seen.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests;
