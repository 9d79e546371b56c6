//! madvise (`do_madvise`, `madvise_walk_vmas`).
//!
//! Checks in Linux's order: advice valid, address aligned, length rounding, wrap. The
//! advice is applied to every mapped part of the range; holes make the call return
//! `ENOMEM` after the mapped parts were processed. Flag advice splits and merges VMAs
//! like mprotect; DONTNEED/FREE/REMOVE/POPULATE act on pages and never change VMAs.

use std::sync::Arc;

use super::{
    AddressSpace,
    cold::{Evict, evict_clean},
};
use crate::{
    abi::*,
    addr::{PageAddr, page_up},
    error::Errno,
    error::SysResult,
    frame::PageFlags,
    mm::fault::Access,
    pgtable::{Gather, LayoutLock, LayoutWrite, PteFlags},
    vma::{TreeEdit, Vma, flags::*},
};

fn valid(advice: u64) -> bool {
    matches!(
        advice,
        MADV_NORMAL
            | MADV_RANDOM
            | MADV_SEQUENTIAL
            | MADV_WILLNEED
            | MADV_DONTNEED
            | MADV_FREE
            | MADV_REMOVE
            | MADV_DONTFORK
            | MADV_DOFORK
            | MADV_MERGEABLE
            | MADV_UNMERGEABLE
            | MADV_HUGEPAGE
            | MADV_NOHUGEPAGE
            | MADV_DONTDUMP
            | MADV_DODUMP
            | MADV_WIPEONFORK
            | MADV_KEEPONFORK
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_DONTNEED_LOCKED
            | MADV_COLLAPSE
            | MADV_GUARD_INSTALL
            | MADV_GUARD_REMOVE
    )
}

/// New flags for flag-changing advice, `None` when the advice does not change flags.
fn advice_flags(v: &Vma, advice: u64) -> Option<SysResult<VmFlags>> {
    let f = v.flags;
    Some(Ok(match advice {
        MADV_NORMAL => f & !(VM_RAND_READ | VM_SEQ_READ),
        MADV_RANDOM => (f & !VM_SEQ_READ) | VM_RAND_READ,
        MADV_SEQUENTIAL => (f & !VM_RAND_READ) | VM_SEQ_READ,
        MADV_DONTFORK => f | VM_DONTCOPY,
        MADV_DOFORK => {
            if f.intersects(VM_IO) {
                return Some(Err(Errno::EINVAL));
            }
            f & !VM_DONTCOPY
        }
        MADV_WIPEONFORK => {
            if !v.is_anon() || v.is_shared() {
                return Some(Err(Errno::EINVAL));
            }
            f | VM_WIPEONFORK
        }
        // Droppable memory must stay wiped on fork and out of core dumps.
        MADV_KEEPONFORK => {
            if f.intersects(VM_DROPPABLE) {
                return Some(Err(Errno::EINVAL));
            }
            f & !VM_WIPEONFORK
        }
        MADV_DONTDUMP => f | VM_DONTDUMP,
        MADV_DODUMP => {
            if f.intersects(VM_SPECIAL | VM_DROPPABLE) {
                return Some(Err(Errno::EINVAL));
            }
            f & !VM_DONTDUMP
        }
        MADV_HUGEPAGE => (f & !VM_NOHUGEPAGE) | VM_HUGEPAGE,
        MADV_NOHUGEPAGE => (f & !VM_HUGEPAGE) | VM_NOHUGEPAGE,
        MADV_MERGEABLE => {
            if f.intersects(VM_SHARED | VM_MAYSHARE | VM_SPECIAL | VM_HUGETLB) {
                f
            } else {
                f | VM_MERGEABLE
            }
        }
        MADV_UNMERGEABLE => f & !VM_MERGEABLE,
        _ => return None,
    }))
}

/// A hole to punch: object, first page, end page.
type Punch = (Arc<crate::pagecache::PageCache>, u64, u64);

/// Work on objects that waits until `mmap_lock` is dropped and the gather finished.
#[derive(Default)]
struct AfterUnlock {
    /// MADV_REMOVE's holes.
    punches: Vec<Punch>,
    /// MADV_PAGEOUT's unmapped page-cache pages.
    evict: Vec<Evict>,
}

impl AddressSpace {
    /// `madvise(2)`.
    pub fn madvise(&self, start: u64, len: u64, advice: u64) -> SysResult<u64> {
        if !valid(advice) {
            return Err(Errno::EINVAL);
        }
        let start = PageAddr::new(start).ok_or(Errno::EINVAL)?;
        let plen = page_up(len).unwrap_or(0);
        if len != 0 && plen == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.checked_add(plen).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(0);
        }
        if matches!(advice, MADV_POPULATE_READ | MADV_POPULATE_WRITE) {
            let layout = self.lock.read();
            return self
                .madvise_populate(&layout, start, end, advice)
                .map(|_| 0);
        }
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let mut edit = self.tree.edit();
        let mut after = AfterUnlock::default();
        let r = self.madvise_walk(
            &state,
            &mut edit,
            start,
            end,
            advice,
            &mut gather,
            &mut after,
        );
        edit.commit();
        drop(state);
        self.tlb_finish(gather);
        // MADV_REMOVE punches holes with `mmap_lock` dropped (as Linux around
        // `vfs_fallocate`): the punch unmaps the pages from every address space.
        for (obj, first, last) in after.punches {
            super::punch_hole(&obj, first, last);
        }
        // MADV_PAGEOUT's unmapped pages leave the cache once their mappings' references
        // are gone (the gather dropped them).
        evict_clean(after.evict);
        r.map(|_| 0)
    }

    /// Visit the mapped parts of `[start, end)`. `Ok(Err(ENOMEM))`-like: returns
    /// `Err(ENOMEM)` only after processing everything when a hole was met.
    #[expect(
        clippy::too_many_arguments,
        reason = "the call's arguments, the lock, the edit and the gather"
    )]
    fn madvise_walk(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        start: PageAddr,
        end: PageAddr,
        advice: u64,
        gather: &mut Gather,
        after: &mut AfterUnlock,
    ) -> SysResult<()> {
        // Each step looks the VMA up afresh: flag advice may have merged it.
        let mut unmapped = false;
        let mut at = start;
        while at < end {
            let v = match edit.find(at.get()) {
                Some(v) => v,
                None => match edit.next(at.get()) {
                    Some(n) if n.start < end => {
                        unmapped = true;
                        at = n.start;
                        n
                    }
                    _ => return Err(Errno::ENOMEM),
                },
            };
            let hi = end.min(v.end);
            self.madvise_vma(layout, edit, &v, at, hi, advice, gather, after)?;
            at = hi;
        }
        if unmapped { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the range, the advice, and the deferred work"
    )]
    fn madvise_vma(
        &self,
        layout: &impl LayoutWrite,
        edit: &mut TreeEdit<'_>,
        v: &Arc<Vma>,
        lo: PageAddr,
        hi: PageAddr,
        advice: u64,
        gather: &mut Gather,
        after: &mut AfterUnlock,
    ) -> SysResult<()> {
        if let Some(nf) = advice_flags(v, advice) {
            self.modify_flags(edit, v, lo, hi, nf?)?;
            return Ok(());
        }
        match advice {
            MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
                let forbidden = if advice == MADV_DONTNEED {
                    VM_LOCKED | VM_PFNMAP
                } else {
                    VM_PFNMAP
                };
                if v.flags.intersects(forbidden) {
                    return Err(Errno::EINVAL);
                }
                self.zap_pages(layout, lo, hi, true, gather);
            }
            MADV_FREE => {
                if !v.is_anon() || v.flags.intersects(VM_LOCKED | VM_PFNMAP) {
                    return Err(Errno::EINVAL);
                }
                self.lazyfree(layout, lo, hi);
                // Clean entries: a CPU must not keep writing through a dirty one.
                gather.cover(lo, hi);
            }
            MADV_REMOVE => {
                if v.flags.intersects(VM_LOCKED) {
                    return Err(Errno::EINVAL);
                }
                let Some(obj) = v.backing.object() else {
                    return Err(Errno::EINVAL);
                };
                if !v.flags.intersects(VM_SHARED) || !v.flags.intersects(VM_MAYWRITE) {
                    return Err(Errno::EACCES);
                }
                // The hole is punched in the object after `mmap_lock` is dropped: every
                // mapping of those pages goes, in every address space.
                after
                    .punches
                    .push((Arc::clone(obj), v.pgoff_at(lo), v.pgoff_at(hi)));
            }
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
                // Checked and done after the walk (needs no layout change).
            }
            MADV_COLLAPSE => return Err(Errno::EINVAL),
            // `can_madv_lru_vma`: no LRU advice on locked or PFN-mapped memory.
            MADV_COLD | MADV_PAGEOUT if v.flags.intersects(VM_LOCKED | VM_PFNMAP | VM_HUGETLB) => {
                return Err(Errno::EINVAL);
            }
            MADV_COLD | MADV_PAGEOUT => {
                let pageout = advice == MADV_PAGEOUT;
                self.cold_or_pageout(layout, v, lo, hi, pageout, gather, &mut after.evict);
            }
            MADV_GUARD_INSTALL | MADV_GUARD_REMOVE => {
                let disallowed = VM_SPECIAL
                    | VM_HUGETLB
                    | if advice == MADV_GUARD_INSTALL {
                        VM_LOCKED
                    } else {
                        VmFlags::empty()
                    };
                if v.flags.intersects(disallowed) {
                    return Err(Errno::EINVAL);
                }
                if advice == MADV_GUARD_INSTALL {
                    // The whole VMA is marked (no split), and private memory gets its
                    // anon identity, as a page would (`anon_vma_prepare`).
                    let v = if !v.flags.intersects(VM_MAYBE_GUARD) {
                        let marked = Arc::new(v.derive(v.start, v.end, v.flags | VM_MAYBE_GUARD));
                        self.vma_start_write(v);
                        edit.remove(v);
                        edit.insert(Arc::clone(&marked));
                        marked
                    } else {
                        Arc::clone(v)
                    };
                    if v.is_anon() {
                        // As a first write fault would: share a compatible neighbour's
                        // identity (looked up in this edit), else a new one.
                        let (prev, next) = (edit.ending_at(v.start), edit.starting_at(v.end));
                        v.anon_prepare(|| {
                            crate::mm::fault::reusable_anon_near(
                                &v,
                                prev.as_deref(),
                                next.as_deref(),
                            )
                            .unwrap_or_else(|| self.new_anon_id())
                        });
                    }
                    self.guard_install(layout, lo, hi, gather)?;
                } else {
                    self.pt
                        .locked(layout)
                        .zap_except(lo, hi, |pte| !pte.is_guard(), |_, _| {});
                }
            }
            // WILLNEED: a hint with no visible effect on in-memory objects.
            _ => {}
        }
        Ok(())
    }

    /// MADV_GUARD_INSTALL: zap the range (contents are lost) and put a guard marker in
    /// every entry; any access then faults with SIGSEGV.
    fn guard_install(
        &self,
        layout: &impl LayoutWrite,
        lo: PageAddr,
        hi: PageAddr,
        gather: &mut Gather,
    ) -> SysResult<()> {
        self.zap_pages(layout, lo, hi, true, gather);
        let walk = self.pt.locked(layout);
        let mut a = lo;
        while a < hi {
            let l = walk
                .pte_lock(a, true)
                .map_err(|_| Errno::ENOMEM)?
                .ok_or(Errno::ENOMEM)?;
            if l.get().is_none() {
                l.set(crate::pgtable::Pte::GUARD_MARKER);
            }
            a = a.next_page();
        }
        Ok(())
    }

    /// MADV_FREE: exclusive anonymous pages become clean and lazily freeable; they keep
    /// their contents until memory pressure (none is simulated) or a write re-dirties.
    fn lazyfree(&self, layout: &impl LayoutWrite, lo: PageAddr, hi: PageAddr) {
        self.pt.locked(layout).change(lo, hi, |_, pte| {
            if pte.has(PteFlags::SPECIAL) || !pte.has_frame() {
                return pte;
            }
            let m = self.pm.meta(pte.pfn());
            if m.mapcount() != 1 {
                return pte;
            }
            m.set_flags(PageFlags::LAZYFREE);
            pte.with_flags(pte.flags() & !(PteFlags::D | PteFlags::A))
        });
    }

    /// MADV_POPULATE_READ/WRITE: fault every page in, failing like GUP does.
    fn madvise_populate(
        &self,
        layout: &impl LayoutLock,
        start: PageAddr,
        end: PageAddr,
        advice: u64,
    ) -> SysResult<()> {
        let write = advice == MADV_POPULATE_WRITE;
        let access = if write { Access::Write } else { Access::Read };
        let mut a = start;
        while a < end {
            let g = crate::sync::rcu::read_lock();
            let Some(v) = self.tree.find(a.get(), &g).cloned() else {
                return Err(Errno::ENOMEM);
            };
            drop(g);
            if v.flags.intersects(VM_IO | VM_PFNMAP) {
                return Err(Errno::EINVAL);
            }
            let ok = if write {
                v.flags.intersects(VM_WRITE)
            } else {
                v.flags.intersects(VM_READ)
            };
            if !ok {
                return Err(Errno::EINVAL);
            }
            while a < end.min(v.end) {
                self.fault_in(layout, a.get(), access)
                    .map_err(|f| match f {
                        crate::mm::fault::Fault::Oom { .. } => Errno::ENOMEM,
                        _ => Errno::EFAULT,
                    })?;
                a = a.next_page();
            }
        }
        Ok(())
    }
}
