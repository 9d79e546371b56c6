//! Faults on VMAs backed by an object (shmem, memfd, file): private read faults map the
//! page-cache page read-only (`do_read_fault`), private write faults map a private copy
//! of it (`do_cow_fault`), shared faults map the page itself (`do_shared_fault`). Read
//! faults, private or shared, first map the cached pages around them (`around.rs`).
//!
//! Rules: the page-cache page is looked up (and allocated) under the page map lock before
//! the PTL is taken, never inside it; the lookup re-reads the object's size under that
//! lock, so a page is never cached past the end after a shrink; beyond the end a fault is
//! SIGBUS, unless a guard marker is there (found first: SIGSEGV).

use super::{
    Access, Fault, FaultCtx, FaultResult, Handled, SegvCode, anon::NEW_PRIVATE, base_flags,
};
use crate::{
    frame::{FrameRef, PageFlags},
    pagecache::{CacheError, PageCache},
    pgtable::{Pte, PteFlags},
};

impl FaultCtx<'_> {
    /// The object behind this (file-backed) VMA.
    fn object(&self) -> &PageCache {
        self.vma.backing.object().expect("a file-backed VMA")
    }

    /// A reference to the page-cache page behind the faulting page.
    fn cache_page(&self) -> Result<FrameRef<'_>, Fault> {
        self.object()
            .get_or_alloc(self.vma.pgoff_at(self.page))
            .map_err(|e| match e {
                CacheError::Beyond => Fault::Bus {
                    addr: self.page.get(),
                },
                CacheError::Oom => self.oom(),
            })
    }

    /// Read on a none entry of a file VMA: map the cached neighbours (fault-around),
    /// then the page-cache page, read-only in a private VMA.
    pub(super) fn do_read_fault(&self) -> FaultResult {
        if self.fault_around() {
            return Ok(Handled::Done);
        }
        let page = self.cache_page()?;
        self.install_cache_page(page, base_flags(self.vma), PageFlags::REFERENCED)
    }

    /// Write on a none entry of a private file VMA: map a private copy of the page.
    pub(super) fn do_cow_fault(&self) -> FaultResult {
        let src = self.cache_page()?;
        let copy = self.mm.pm.alloc_copy(&src, NEW_PRIVATE).ok_or(self.oom())?;
        drop(src);
        self.install_private(copy)
    }

    /// Any fault in a shared VMA: map the object's page, writable if the VMA is; a write
    /// to a read-only entry makes it writable and dirties the page.
    pub(super) fn do_shared_fault(&self) -> FaultResult {
        if self.vma.pgoff_at(self.page) >= self.object().nr_size_pages() {
            if self
                .walk
                .lookup(self.page.get())
                .is_some_and(|(e, _)| e.is_guard())
            {
                return Err(self.map_err());
            }
            return Err(Fault::Bus {
                addr: self.page.get(),
            });
        }
        if let Some(done) = self.shared_present()? {
            return Ok(done);
        }
        if self.access != Access::Write && self.fault_around() {
            return Ok(Handled::Done);
        }
        let mut entry = base_flags(self.vma);
        if self.vma.flags.intersects(crate::vma::VM_WRITE) {
            entry |= PteFlags::W;
        }
        // A write fault dirties the page (`fault_dirty_shared_page`).
        let mut page_flags = PageFlags::REFERENCED;
        if self.access == Access::Write {
            entry |= PteFlags::D;
            page_flags |= PageFlags::DIRTY;
        }
        let page = self.cache_page()?;
        self.install_cache_page(page, entry, page_flags)
    }

    /// A shared fault on an entry that is not none: a guard marker (SIGSEGV), a
    /// read-only entry written (made writable and dirty here), or one mapped meanwhile.
    /// `None` when the entry is none and the page must be mapped.
    fn shared_present(&self) -> Result<Option<Handled>, Fault> {
        let l = self.walk.pte_lock(self.page, true);
        let l = l.map_err(|_| self.oom())?.ok_or(self.oom())?;
        let cur = l.get();
        if cur.is_guard() {
            return Err(Fault::Segv {
                addr: self.page.get(),
                code: SegvCode::MapErr,
            });
        }
        if cur.is_none() {
            return Ok(None);
        }
        if self.access == Access::Write && cur.present() && !cur.has(PteFlags::W) {
            l.set(cur.with_flags(cur.flags() | PteFlags::W | PteFlags::D));
            self.mm.pm.meta(cur.pfn()).set_flags(PageFlags::DIRTY);
            return Ok(Some(Handled::Done));
        }
        Ok(Some(Handled::Retry))
    }

    /// Map page-cache `page` at the faulting page with leaf flags `entry`, unless
    /// something was mapped there meanwhile; the frame gains a mapcount and `page_flags`.
    fn install_cache_page(
        &self,
        page: FrameRef<'_>,
        entry: PteFlags,
        page_flags: PageFlags,
    ) -> FaultResult {
        let l = self.walk.pte_lock(self.page, true);
        let l = l.map_err(|_| self.oom())?.ok_or(self.oom())?;
        if !l.get().is_none() {
            return Ok(Handled::Retry);
        }
        let m = self.mm.pm.meta(page.pfn());
        m.inc_mapcount();
        m.set_flags(page_flags);
        l.set(Pte::leaf(page.into_raw(), entry));
        Ok(Handled::Done)
    }
}
