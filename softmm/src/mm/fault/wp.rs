//! Write faults on read-only private entries (`do_wp_page`): reuse the frame when this
//! mapping is its only user (`wp_reuse`), else copy it (`wp_copy`).
//!
//! Rules: the reuse decision is made under the PTL from the frame's flags and counts, and
//! tolerates a speculative extra reference (it then copies, which is always correct); a
//! page-cache page is always copied. The copy holds its own reference to the source from
//! before the PTL is dropped until the new entry is installed (Linux `folio_get` before
//! `wp_page_copy`): without it a zap could free the source and its next owner write it
//! while we copy.

use super::{FaultCtx, FaultResult, Handled, anon::NEW_PRIVATE};
use crate::{frame::PageFlags, pgtable::PteLocked};

impl FaultCtx<'_> {
    /// Write to a present (or protnone-free) read-only private entry mapping a real frame.
    pub(super) fn do_wp_page(&self) -> FaultResult {
        let l = self.walk.pte_lock(self.page, false);
        let l = l.map_err(|_| self.oom())?.ok_or(self.oom())?;
        if l.get() != self.orig {
            return Ok(Handled::Retry);
        }
        let m = self.mm.pm.meta(self.orig.pfn());
        // Reuse an anonymous frame when this mapping is its only user
        // (`wp_can_reuse_anon_folio`).
        if m.has(PageFlags::ANON)
            && (m.has(PageFlags::ANON_EXCLUSIVE) || (m.mapcount() == 1 && m.refcount() == 1))
        {
            return Ok(self.wp_reuse(&l));
        }
        self.wp_copy(l)
    }

    /// Make the entry writable in place; the frame becomes exclusively this mapping's.
    fn wp_reuse(&self, l: &PteLocked<'_>) -> Handled {
        self.mm
            .pm
            .meta(self.orig.pfn())
            .set_flags(PageFlags::ANON_EXCLUSIVE);
        l.set(
            self.orig
                .with_flags(self.orig.flags() | self.private_write_flags()),
        );
        Handled::Done
    }

    /// Copy the frame into a new private one and install it if the entry is unchanged.
    fn wp_copy(&self, l: PteLocked<'_>) -> FaultResult {
        let pm = &*self.mm.pm;
        #[cfg(not(mutant = "cow_copy_without_ref"))]
        // SAFETY: (1) we hold the PTL and the entry maps `orig.pfn()` (checked by the
        // caller under this lock), so the mapping's count keeps the frame allocated.
        let src = unsafe { pm.get(self.orig.pfn()) };
        // The MUTANT copies without a reference of its own: the value below owns no
        // count and is never dropped, so nothing keeps the source allocated once the PTL
        // is released (the bug the `cow_copy_holds_its_source` model must catch).
        #[cfg(mutant = "cow_copy_without_ref")]
        // SAFETY: none; this is the deliberately broken protocol step.
        let src = std::mem::ManuallyDrop::new(unsafe {
            crate::frame::FrameRef::from_raw(pm, self.orig.pfn())
        });
        drop(l);
        let copy = pm.alloc_copy(&src, NEW_PRIVATE).ok_or(self.oom())?;
        let r = self.install_private(copy);
        // The source reference is dropped only now, after the entry was re-checked (the
        // mutant's holds no count and is never dropped).
        #[cfg(not(mutant = "cow_copy_without_ref"))]
        drop(src);
        r
    }
}
