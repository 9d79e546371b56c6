//! Faults on none entries of private VMAs (`do_anonymous_page`), and installing a new
//! private frame where the snapshot still stands (`finish_fault` of the private paths).
//!
//! Rules: a new frame is allocated and filled before the PTL is taken; under the PTL the
//! entry must still equal the snapshot, else the new frame is dropped and the access
//! retries. A frame being replaced loses this mapping (its mapcount and the count the
//! entry owned) only after the new entry is visible and every CPU's TLB has dropped the
//! old translation.

use super::{FaultCtx, FaultResult, Handled, base_flags};
use crate::{
    frame::{FrameRef, PageFlags},
    pgtable::{Pte, PteFlags},
    tlb::FlushRange,
};

/// Page flags of a frame that becomes this mapping's private page.
pub(super) const NEW_PRIVATE: PageFlags = PageFlags::ANON
    .union(PageFlags::ANON_EXCLUSIVE)
    .union(PageFlags::REFERENCED);

impl FaultCtx<'_> {
    /// None entry of a private anonymous VMA: a read maps the shared zero frame
    /// read-only; a write (or a write to the zero frame) maps a fresh zeroed frame.
    pub(super) fn do_anonymous(&self) -> FaultResult {
        if !self.write() {
            let l = self.walk.pte_lock(self.page, true);
            let l = l.map_err(|_| self.oom())?.ok_or(self.oom())?;
            if !l.get().is_none() {
                return Ok(Handled::Retry);
            }
            let zero = self.mm.pm.zero_pfn();
            l.set(Pte::leaf(zero, base_flags(self.vma) | PteFlags::SPECIAL));
            return Ok(Handled::Done);
        }
        let frame = self.mm.pm.alloc_zeroed(NEW_PRIVATE).ok_or(self.oom())?;
        self.install_private(frame)
    }

    /// Leaf flags of a private page this write fault maps writable.
    /// (A forced write to a mapping without write permission maps it dirty but still
    /// read-only: the copy is private, the permission the user's.)
    pub(super) fn private_write_flags(&self) -> PteFlags {
        let w = if self.vma.flags.intersects(crate::vma::flags::VM_WRITE) {
            PteFlags::W
        } else {
            debug_assert!(self.force, "a write fault needs VM_WRITE unless forced");
            PteFlags::empty()
        };
        base_flags(self.vma) | w | PteFlags::D
    }

    /// Map `frame` writable at the page if the entry still equals the snapshot; the frame
    /// it replaces (not the zero frame) loses this mapping.
    pub(super) fn install_private(&self, frame: FrameRef<'_>) -> FaultResult {
        let l = self.walk.pte_lock(self.page, true);
        let l = l.map_err(|_| self.oom())?.ok_or(self.oom())?;
        // Re-validate under the PTL: another fault may have installed a frame since the
        // snapshot (the MUTANT skips this and overwrites the winner's entry).
        if l.get() != self.orig && !cfg!(mutant = "fault_skip_pte_recheck") {
            return Ok(Handled::Retry);
        }
        let pm = &*self.mm.pm;
        pm.meta(frame.pfn()).inc_mapcount();
        l.set(Pte::leaf(frame.into_raw(), self.private_write_flags()));
        drop(l);
        let old = self.orig;
        if !old.is_none() {
            // Copy-on-write (or a write to the zero page): every CPU drops the old
            // translation before this one stores through the new (`ptep_clear_flush`),
            // and before the old frame can be freed.
            let page = (self.page, self.page.next_page());
            self.mm.shootdown.flush(FlushRange::Pages(page.0, page.1));
        }
        if !old.is_none() && !old.has(PteFlags::SPECIAL) {
            self.mm.counters.cow_copies.add(1);
            pm.meta(old.pfn()).dec_mapcount();
            // SAFETY: (1) the entry we replaced owned one count of the old frame; no CPU
            // keeps a translation of it past its access (accesses hold their own count).
            unsafe { pm.put(old.pfn()) };
        }
        Ok(Handled::Done)
    }
}
