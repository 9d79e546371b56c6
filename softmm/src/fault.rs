//! The page-fault handler.
//!
//! Called after a walk found no usable entry, with `mmap_lock` held for read, or (the
//! `PerVma` fast path, [`AddressSpace::fault_under_vma_lock`]) with only the VMA's read
//! lock: either way the VMA cannot be changed or removed under the handler (writers
//! write-lock a VMA before they replace it or touch its pages). Decisions made from entries read without
//! the PTL are re-validated under it: the handler locks the leaf, compares it with what
//! the decision was based on, and when it changed it returns `Ok` so the access retries
//! (Linux returns 0 and the CPU re-executes the instruction).
//!
//! * read on none, private anon → the shared zero frame, read-only, special;
//! * write on none, private anon → a fresh zeroed frame, writable, anon-exclusive;
//! * none, shared anon → the shmem object's frame (allocated on first use);
//! * write on a read-only private entry → copy-on-write: reuse the frame when this
//!   mapping is its only user (anon-exclusive), else copy it (a zero frame is never
//!   reused: it is replaced by a zeroed one);
//! * write on a read-only shared entry → make it writable;
//! * access the VMA does not allow → SIGSEGV/ACCERR; no VMA → SIGSEGV/MAPERR;
//! * no frame left → [`Fault::Oom`] (Linux `VM_FAULT_OOM`).

use std::cell::Cell;

use crate::{
    frame::flags,
    mm::{AddressSpace, VmaCache},
    pgtable::{Pte, bits},
    vma::{ANON_FORKED, Backing, Vma, flags::*},
};

/// Kind of access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Load.
    Read,
    /// Store.
    Write,
    /// Instruction fetch.
    Exec,
}

/// The signal an unresolvable fault delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGSEGV.
    Segv,
    /// SIGBUS.
    Bus,
}

/// `si_code` of a SIGSEGV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegvCode {
    /// No mapping at the address (`SEGV_MAPERR`).
    MapErr,
    /// The mapping forbids the access (`SEGV_ACCERR`).
    AccErr,
}

/// Why an access could not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Segmentation fault at `addr`.
    #[error("SIGSEGV at {addr:#x} ({code:?})")]
    Segv {
        /// Faulting address.
        addr: u64,
        /// MAPERR or ACCERR.
        code: SegvCode,
    },
    /// Bus error at `addr` (beyond the end of a file, in a later issue).
    #[error("SIGBUS at {addr:#x}")]
    Bus {
        /// Faulting address.
        addr: u64,
    },
    /// Out of physical frames while handling a fault at `addr` (SIGBUS-like).
    #[error("out of memory at {addr:#x}")]
    Oom {
        /// Faulting address.
        addr: u64,
    },
}

impl Fault {
    /// The signal this fault delivers (out-of-memory is reported as SIGBUS).
    pub fn signal(self) -> Signal {
        match self {
            Fault::Segv { .. } => Signal::Segv,
            Fault::Bus { .. } | Fault::Oom { .. } => Signal::Bus,
        }
    }
}

/// Whether `vma` allows `access` (x86: a writable or executable page is readable).
pub(crate) fn vma_allows(vma: &Vma, access: Access) -> bool {
    match access {
        Access::Read => vma.flags & (VM_READ | VM_WRITE | VM_EXEC) != 0,
        Access::Write => vma.flags & VM_WRITE != 0,
        Access::Exec => vma.flags & VM_EXEC != 0,
    }
}

/// Whether a present entry lets `access` through without a fault.
pub(crate) fn pte_allows(pte: Pte, access: Access) -> bool {
    pte.present()
        && match access {
            Access::Read => true,
            Access::Write => pte.has(bits::W),
            Access::Exec => !pte.has(bits::NX),
        }
}

/// Leaf flags for a page of `vma`: user, present, NX unless executable.
pub(crate) fn base_flags(vma: &Vma) -> u64 {
    let mut f = bits::P | bits::U | bits::A;
    if vma.flags & VM_EXEC == 0 {
        f |= bits::NX;
    }
    if vma.flags & VM_ACCESS_FLAGS == 0 {
        f = (f & !bits::P) | bits::PROTNONE;
    }
    f
}

/// What keeps a faulting VMA stable.
#[derive(Clone, Copy, Debug)]
enum LockedBy<'a> {
    /// `mmap_lock`, either side.
    MmapLock,
    /// The VMA's read lock only: a step that needs `mmap_lock` and cannot get it
    /// without waiting sets the flag and returns, undone, for the `mmap_lock` path.
    VmaLock(&'a Cell<bool>),
}

impl AddressSpace {
    /// Handle a fault at `addr` for `access`. The caller holds `mmap_lock` (either
    /// side) and retries its walk after `Ok`.
    pub(crate) fn handle_fault(&self, addr: u64, access: Access) -> Result<(), Fault> {
        self.counters.faults.add(1);
        let g = crate::sync::rcu::read_lock();
        let Some(vma) = self.tree.find(addr, &g).cloned() else {
            return Err(Fault::Segv {
                addr,
                code: SegvCode::MapErr,
            });
        };
        drop(g);
        self.fault_vma(&vma, addr, access, LockedBy::MmapLock)
    }

    /// The `PerVma` fast path: handle the fault under the VMA's read lock, without
    /// `mmap_lock`. `None` when the caller must fall back to `mmap_lock` read: no VMA
    /// contains `addr` (maybe a stack to expand), the VMA is write-locked or was
    /// replaced, or the fault needs an anon identity while a writer holds `mmap_lock`
    /// (`fault_anon` chooses it under a trylock of `mmap_lock`, where and only where
    /// the fault needs it: not for a fault that ends in SIGSEGV, as Linux checks the
    /// access before `vmf_anon_prepare`).
    pub(crate) fn fault_under_vma_lock(
        &self,
        addr: u64,
        access: Access,
        cache: &VmaCache,
    ) -> Option<Result<(), Fault>> {
        let fallback = || {
            self.counters.vma_lock_fallbacks.add(1);
            None
        };
        let Ok(Some(vma)) = self.lock_vma_under_rcu(addr, cache) else {
            return fallback();
        };
        let needs_mmap_lock = Cell::new(false);
        let r = self.fault_vma(&vma, addr, access, LockedBy::VmaLock(&needs_mmap_lock));
        if needs_mmap_lock.get() {
            drop(vma);
            return fallback();
        }
        self.counters.faults.add(1);
        self.counters.vma_lock_faults.add(1);
        Some(r)
    }

    /// Handle a fault at `addr` in `vma`, which `held` keeps stable.
    fn fault_vma(
        &self,
        vma: &Vma,
        addr: u64,
        access: Access,
        held: LockedBy<'_>,
    ) -> Result<(), Fault> {
        if !vma_allows(vma, access) {
            return Err(Fault::Segv {
                addr,
                code: SegvCode::AccErr,
            });
        }
        let page = addr & !0xfff;
        match &vma.backing {
            Backing::File(f) if vma.flags & VM_MAYSHARE != 0 => {
                self.fault_shared(vma, &f.object, page, access)
            }
            Backing::Anon | Backing::AnonFile(_) | Backing::File(_) => {
                self.fault_anon(vma, page, access, held)
            }
        }
    }

    /// Give every private writable VMA in `[start, end)` the anon identity its first
    /// write fault would (`anon_vma_prepare`), without touching a page. A trace replay
    /// uses it because traces record no memory writes, while the identities decide which
    /// VMAs merge later; real programs write nearly all the private memory they map
    /// writable.
    pub fn assume_written(&self, start: u64, end: u64) {
        let _guard = self.lock.read();
        let needs = |v: &Vma| {
            v.flags & (VM_WRITE | VM_SHARED | VM_MAYSHARE) == VM_WRITE && v.anon().is_none()
        };
        let vmas = {
            let g = crate::sync::rcu::read_lock();
            // Usually one VMA covers the range and needs nothing: one lookup.
            if let Some(v) = self.tree.find(start, &g)
                && v.end >= end
                && !needs(v)
            {
                return;
            }
            self.tree
                .intersecting(start, end, &g)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        for v in vmas.iter().filter(|v| needs(v)) {
            v.anon_prepare(|| self.reusable_anon(v).unwrap_or_else(|| self.new_anon_id()));
        }
    }

    fn fault_anon(
        &self,
        vma: &Vma,
        page: u64,
        access: Access,
        held: LockedBy<'_>,
    ) -> Result<(), Fault> {
        let oom = Fault::Oom { addr: page };
        let write = access == Access::Write;
        // Snapshot without the PTL; re-validated under it below.
        let orig = {
            let l = self.pt.pte_lock(page, true).map_err(|_| oom)?.ok_or(oom)?;
            l.get()
        };
        if orig.is_guard() {
            return Err(Fault::Segv {
                addr: page,
                code: SegvCode::MapErr,
            });
        }
        if orig.is_none() && !write {
            if let Some(obj) = vma.backing.object() {
                // `do_read_fault`: map the page-cache page read-only.
                let pfn = self.cache_page(obj, vma, page)?;
                return self.install_cache_page(page, pfn, base_flags(vma), flags::REFERENCED);
            }
            let l = self.pt.pte_lock(page, true).map_err(|_| oom)?.ok_or(oom)?;
            if l.get().is_none() {
                l.set(Pte::leaf(
                    self.pm.zero_pfn(),
                    base_flags(vma) | bits::SPECIAL,
                ));
            }
            return Ok(());
        }
        if !orig.is_none() && !write {
            return Ok(()); // spurious: someone mapped it meanwhile
        }
        if orig.present() && orig.has(bits::W) {
            return Ok(());
        }
        // Write to none or to a read-only entry: the VMA needs its anon identity
        // (`vmf_anon_prepare`), maybe a neighbour's, which only `mmap_lock` keeps in
        // place. Under the VMA lock alone take `mmap_lock` read with a trylock: it never
        // waits, so it cannot wait for a writer that waits for this VMA's readers. When
        // a writer holds it, leave the fault to the `mmap_lock` path.
        if vma.anon().is_none() {
            let _layout = match held {
                LockedBy::MmapLock => None,
                LockedBy::VmaLock(needs_mmap_lock) => {
                    let Some(g) = self.lock.try_read() else {
                        needs_mmap_lock.set(true);
                        return Ok(());
                    };
                    Some(g)
                }
            };
            vma.anon_prepare(|| {
                self.reusable_anon(vma)
                    .unwrap_or_else(|| self.new_anon_id())
            });
        }
        let flags_w = base_flags(vma) | bits::W | bits::D;
        if !orig.is_none() && !orig.has(bits::SPECIAL) {
            let m = self.pm.meta(orig.pfn());
            let l = self.pt.pte_lock(page, false).map_err(|_| oom)?.ok_or(oom)?;
            if l.get() != orig {
                return Ok(());
            }
            // Reuse an anonymous frame when this mapping is its only user
            // (`wp_can_reuse_anon_folio`); a page-cache page is always copied.
            if m.has(flags::ANON)
                && (m.has(flags::ANON_EXCLUSIVE) || (m.mapcount() == 1 && m.refcount() == 1))
            {
                m.set_flags(flags::ANON_EXCLUSIVE);
                l.set(orig.with_flags(orig.flags() | flags_w));
                return Ok(());
            }
            // Copy from a frame we hold a reference to until the PTE is re-checked
            // (Linux: `folio_get` before `wp_page_copy`, `folio_put` after). Without
            // it, once the PTL is dropped a zap may unmap and free the frame and its
            // next owner write it while we copy; and an entry equal to `orig` could be
            // a new mapping of the same frame.
            // The MUTANT copies without the reference.
            let hold = !cfg!(mutant = "cow_copy_without_ref");
            if hold {
                m.get();
            }
            drop(l);
            let copied = self
                .pm
                .alloc_copy(
                    orig.pfn(),
                    flags::ANON | flags::ANON_EXCLUSIVE | flags::REFERENCED,
                )
                .ok_or(oom)
                .and_then(|new| self.replace_cow(page, orig, new, flags_w));
            if hold {
                self.pm.put(orig.pfn());
            }
            return copied;
        }
        let new = if let Some(obj) = vma.backing.object() {
            // `do_cow_fault`: a private copy of the page-cache page.
            let src = self.cache_page(obj, vma, page)?;
            let copy = self
                .pm
                .alloc_copy(src, flags::ANON | flags::ANON_EXCLUSIVE | flags::REFERENCED);
            self.pm.put(src);
            copy.ok_or(oom)?
        } else {
            self.pm
                .alloc_zeroed(flags::ANON | flags::ANON_EXCLUSIVE | flags::REFERENCED)
                .ok_or(oom)?
        };
        self.replace_cow(page, orig, new, flags_w)
    }

    /// The page-cache page behind `page` of a file VMA, with a new reference: SIGBUS
    /// beyond the end of the object.
    fn cache_page(
        &self,
        obj: &crate::pagecache::PageCache,
        vma: &Vma,
        page: u64,
    ) -> Result<crate::frame::Pfn, Fault> {
        obj.get_or_alloc(vma.pgoff_at(page)).map_err(|beyond| {
            if beyond {
                Fault::Bus { addr: page }
            } else {
                Fault::Oom { addr: page }
            }
        })
    }

    /// The anon identity of an adjacent VMA this one could share it with
    /// (`find_mergeable_anon_vma`: next first, then prev; adjacent, same backing, flags
    /// equal but for access bits, continuous page offsets), so that the two can merge
    /// again later.
    fn reusable_anon(&self, vma: &Vma) -> Option<u64> {
        let g = crate::sync::rcu::read_lock();
        let next = self.tree.find(vma.end, &g).filter(|n| n.start == vma.end);
        let prev = vma.start.checked_sub(1).and_then(|a| self.tree.find(a, &g));
        reusable_anon_near(vma, prev.map(|p| &**p), next.map(|n| &**n))
    }

    /// Install `new` at `page` if the entry still equals `orig`; the old frame (if any
    /// and not special) loses this mapping.
    fn replace_cow(
        &self,
        page: u64,
        orig: Pte,
        new: crate::frame::Pfn,
        flags_w: u64,
    ) -> Result<(), Fault> {
        let oom = Fault::Oom { addr: page };
        let l = self.pt.pte_lock(page, true).map_err(|_| oom)?.ok_or(oom)?;
        // Re-validate under the PTL: another fault may have installed a frame since we
        // read `orig` (the MUTANT skips this and overwrites the winner's entry).
        if l.get() != orig && !cfg!(mutant = "fault_skip_pte_recheck") {
            drop(l);
            self.pm.put(new);
            return Ok(());
        }
        self.pm.meta(new).inc_mapcount();
        l.set(Pte::leaf(new, flags_w));
        drop(l);
        if !orig.is_none() && !orig.has(bits::SPECIAL) {
            self.counters.cow_copies.add(1);
            self.pm.meta(orig.pfn()).dec_mapcount();
            // No CPU caches the old translation yet (TLB issue): drop it now.
            self.pm.put(orig.pfn());
        }
        Ok(())
    }

    fn fault_shared(
        &self,
        vma: &Vma,
        cache: &crate::pagecache::PageCache,
        page: u64,
        access: Access,
    ) -> Result<(), Fault> {
        let oom = Fault::Oom { addr: page };
        // Beyond the end of the object: SIGBUS, unless a guard marker is there (found
        // first: SIGSEGV). Re-checked under the page map lock by `cache_page`.
        if vma.pgoff_at(page) >= cache.nr_size_pages() {
            let g = crate::sync::rcu::read_lock();
            if self.pt.lookup(page, &g).is_some_and(|(e, _)| e.is_guard()) {
                return Err(Fault::Segv {
                    addr: page,
                    code: SegvCode::MapErr,
                });
            }
            return Err(Fault::Bus { addr: page });
        }
        let mut f = base_flags(vma);
        if vma.flags & VM_WRITE != 0 {
            f |= bits::W;
        }
        if access == Access::Write {
            f |= bits::D;
        }
        {
            let l = self.pt.pte_lock(page, true).map_err(|_| oom)?.ok_or(oom)?;
            let cur = l.get();
            if cur.is_guard() {
                return Err(Fault::Segv {
                    addr: page,
                    code: SegvCode::MapErr,
                });
            }
            if !cur.is_none() {
                if access == Access::Write && cur.present() && !cur.has(bits::W) {
                    l.set(cur.with_flags(cur.flags() | bits::W | bits::D));
                    self.pm.meta(cur.pfn()).set_flags(flags::DIRTY);
                }
                return Ok(());
            }
        }
        // Look the page up before taking the PTL (page-cache lock outside PTL).
        let pfn = self.cache_page(cache, vma, page)?;
        // A write fault dirties the page (`fault_dirty_shared_page`).
        let dirty = if access == Access::Write {
            flags::DIRTY
        } else {
            0
        };
        self.install_cache_page(page, pfn, f, flags::REFERENCED | dirty)
    }

    /// Map page-cache frame `pfn` (a reference the caller got) at `page` with entry
    /// flags `f`, unless someone mapped something there meanwhile (then the reference
    /// is dropped); the frame gains a mapcount and the page flags `page_flags`.
    fn install_cache_page(
        &self,
        page: u64,
        pfn: crate::frame::Pfn,
        f: u64,
        page_flags: u32,
    ) -> Result<(), Fault> {
        let oom = Fault::Oom { addr: page };
        let l = self.pt.pte_lock(page, true).map_err(|_| oom)?.ok_or(oom)?;
        if !l.get().is_none() {
            drop(l);
            self.pm.put(pfn);
            return Ok(());
        }
        self.pm.meta(pfn).inc_mapcount();
        self.pm.meta(pfn).set_flags(page_flags);
        l.set(Pte::leaf(pfn, f));
        Ok(())
    }
}

/// The anon identity `vma` may share with its neighbours `prev` (ending at its start) or
/// `next` (starting at its end): next first, then prev; adjacent, same backing, flags
/// equal but for access bits, continuous page offsets (`find_mergeable_anon_vma`).
pub(crate) fn reusable_anon_near(vma: &Vma, prev: Option<&Vma>, next: Option<&Vma>) -> Option<u64> {
    let compatible = |a: &Vma, b: &Vma| {
        a.end == b.start
            && a.backing.same(&b.backing)
            && (a.flags ^ b.flags) & !(VM_ACCESS_FLAGS | VM_STICKY) == 0
            && b.pgoff == a.pgoff + (a.len() >> 12)
    };
    // An identity inherited through fork is never shared (`list_is_singular` fails).
    let own = |id: &u64| id & ANON_FORKED == 0;
    if let Some(id) = next
        .filter(|n| compatible(vma, n))
        .and_then(|n| n.anon())
        .filter(own)
    {
        return Some(id);
    }
    prev.filter(|p| compatible(p, vma))
        .and_then(|p| p.anon())
        .filter(own)
}
