//! fork: duplicating an address space (`dup_mmap`, `copy_page_range`).
//!
//! Under the parent's `mmap_lock` for write, with every parent VMA write-locked (so no
//! fault runs in the parent meanwhile; the child is not reachable by anyone yet):
//!
//! * every VMA is copied except `VM_DONTCOPY` ones (MADV_DONTFORK); the copies lose
//!   `VM_LOCKED`/`VM_LOCKONFAULT` (locks are not inherited), and `mm->def_flags` keeps
//!   only `VM_NOHUGEPAGE` (mlockall(MCL_FUTURE) is not inherited either);
//! * a VMA with anonymous pages gives its copy a new anon identity marked
//!   [`ANON_FORKED`] (Linux `anon_vma_fork`: the child's chain is not singular), except
//!   with `VM_WIPEONFORK`, whose copy starts empty;
//! * page-table entries are copied only where Linux copies them (`vma_needs_copy`: the
//!   VMA has anonymous pages or guard markers); shared mappings fault again in the
//!   child. In a copy-on-write mapping (private, may write) both the parent's and the
//!   child's entries of an anonymous page lose write permission, and the page loses
//!   `ANON_EXCLUSIVE` (it is shared now); every copied frame gains one reference and
//!   one mapcount, so both stay exact. The zero page and guard markers are copied as
//!   they are.
//!
//! A lockless access of another parent thread may hold a frame it translated as
//! writable before the entry was write-protected (the stale TLB entry Linux flushes
//! at the end of `dup_mmap`). Accesses copy inside their RCU read section, so fork
//! waits one grace period after publishing: writes that raced the copy finish before
//! fork returns (as Linux's flush), none lands in a shared frame afterwards.

use std::sync::Arc;

use super::AddressSpace;
use crate::{
    addr::PageAddr,
    error::Errno,
    error::SysResult,
    frame::PageFlags,
    pgtable::{LayoutWrite, Pte, PteFlags},
    sync::{Ordering, rcu},
    tlb::FlushRange,
    vma::{ANON_FORKED, Vma, flags::*},
};

impl AddressSpace {
    /// `fork(2)` of this address space: the child's, copy-on-write.
    pub fn fork(&self) -> SysResult<Arc<AddressSpace>> {
        let state = self.write_lock();
        let child = AddressSpace::with_phys(&self.pm, self.config.clone())?;
        // The child's `mmap_lock` too, for the copy (`dup_mmap`'s nested write lock;
        // nobody else can reach the child yet, so the order cannot deadlock).
        let mut cs = child.write_lock();
        cs.start_brk = state.start_brk;
        cs.brk = state.brk;
        cs.def_flags = state.def_flags & VM_NOHUGEPAGE;
        // Relaxed: unique-id counters; the child continues the parent's sequence.
        child
            .next_anon
            .store(self.next_anon.load(Ordering::Relaxed), Ordering::Relaxed);
        let vmas: Vec<Arc<Vma>> = {
            let g = rcu::read_lock();
            self.tree.iter(&g).cloned().collect()
        };
        // Every parent VMA is write-locked: no fault may reuse or install a page while
        // the entries are being write-protected and shared.
        for v in &vmas {
            self.vma_start_write(v);
        }
        // Every accounted VMA the child gets is charged again (`dup_mmap`).
        let mut charged = 0;
        for v in vmas.iter().filter(|v| !v.flags.intersects(VM_DONTCOPY)) {
            if v.flags.intersects(VM_ACCOUNT) {
                let pages = v.len() >> crate::addr::PAGE_SHIFT;
                self.vm_enough_memory(pages, charged)?;
                charged += pages;
            }
        }
        let mut edit = child.tree.edit();
        let mut result = Ok(());
        for v in vmas.iter().filter(|v| !v.flags.intersects(VM_DONTCOPY)) {
            let copy = Vma::new(
                v.start,
                v.end,
                v.flags & !VM_LOCKED_MASK,
                v.pgoff,
                v.backing.clone(),
            );
            let wipe = v.flags.intersects(VM_WIPEONFORK);
            if v.anon().is_some() && !wipe {
                copy.set_anon(Some(child.new_anon_id() | ANON_FORKED));
            }
            if let Some(obj) = v.backing.object() {
                obj.add_mapper(child.mapper());
            }
            edit.insert(Arc::new(copy));
            let needs_copy = v.anon().is_some() || v.flags.intersects(VM_MAYBE_GUARD);
            if needs_copy && !wipe && result.is_ok() {
                result = self.copy_page_range((&state, &cs), &child, v);
            }
        }
        edit.commit();
        // Releasing the child's lock publishes its commit charge (`sync_committed`).
        drop(cs);
        drop(state);
        // The TLB flush of the write-protected entries (module docs): no CPU of the
        // parent keeps a writable translation, and no access that held one (by
        // reference, inside an RCU read section) is still writing.
        self.shootdown.flush(FlushRange::All);
        rcu::synchronize();
        result.map(|_| child)
    }

    /// Copy the entries of `v` into `child`, write-protecting anonymous pages of a
    /// copy-on-write mapping on both sides.
    fn copy_page_range(
        &self,
        (layout, child_layout): (&impl LayoutWrite, &impl LayoutWrite),
        child: &AddressSpace,
        v: &Vma,
    ) -> SysResult<()> {
        let cow = v.flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE;
        let mut copied: Vec<(PageAddr, Pte)> = Vec::new();
        self.pt.locked(layout).change(v.start, v.end, |va, pte| {
            // `change` may call again for the same entry when the MMU set A/D meanwhile:
            // the last call's entry is the one kept.
            if copied.last().is_some_and(|&(a, _)| a == va) {
                copied.pop();
            }
            let anon_page = pte.has_frame()
                && !pte.has(PteFlags::SPECIAL)
                && self.pm.meta(pte.pfn()).has(PageFlags::ANON);
            let new = if cow && anon_page {
                pte.with_flags(pte.flags() & !PteFlags::W)
            } else {
                pte
            };
            copied.push((va, new));
            new
        });
        for (va, pte) in copied {
            if pte.has_frame() && !pte.has(PteFlags::SPECIAL) {
                let m = self.pm.meta(pte.pfn());
                if m.has(PageFlags::ANON) {
                    m.clear_flags(PageFlags::ANON_EXCLUSIVE);
                }
                m.get();
                m.inc_mapcount();
            }
            let installed = match child.pt.locked(child_layout).pte_lock(va, true) {
                Ok(Some(l)) => {
                    l.set(pte);
                    true
                }
                _ => false,
            };
            if !installed {
                if pte.has_frame() && !pte.has(PteFlags::SPECIAL) {
                    self.pm.meta(pte.pfn()).dec_mapcount();
                    // SAFETY: (1) the count taken above for the child's entry, which
                    // was never installed.
                    unsafe { self.pm.put(pte.pfn()) };
                }
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }
}
