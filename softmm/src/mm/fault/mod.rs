//! The page-fault handler, split as Linux's `mm/memory.c` is.
//!
//! Called after a walk found no usable entry, with `mmap_lock` held for read, or (the
//! `PerVma` fast path, [`AddressSpace::fault_under_vma_lock`]) with only the VMA's read
//! lock: either way the VMA cannot be changed or removed under the handler (writers
//! write-lock a VMA before they replace it or touch its pages). A [`FaultCtx`] (Linux's
//! `struct vm_fault`) carries the VMA, the page, the access and the entry the decision is
//! based on; each handler returns a [`Handled`] outcome or the [`Fault`] to deliver.
//! Decisions made from entries read without the PTL are re-validated under it: the
//! handler locks the leaf, compares it with the snapshot, and when it changed returns
//! [`Handled::Retry`] so the access walks again (Linux returns 0 and the CPU re-executes
//! the instruction).
//!
//! Handlers (`handle_pte_fault` dispatches):
//! * `do_anonymous` (anon.rs): none entry of a private anonymous VMA;
//! * `do_read_fault`, `do_cow_fault` (file.rs): none entry of a private file VMA, read
//!   (map the page-cache page) or write (map a private copy);
//! * `do_shared_fault` (file.rs): a shared VMA (shmem, memfd, file);
//! * `do_wp_page` → `wp_reuse` / `wp_copy` (wp.rs): write to a read-only private entry.
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

mod anon;
mod around;
mod file;
mod wp;

use crate::addr::PageAddr;
use crate::{
    mm::{AddressSpace, VmaCache},
    pgtable::{LayoutLock, Locked, Pte, PteFlags, Walk},
    vma::{ANON_FORKED, Vma, flags::*},
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
    /// Bus error at `addr` (beyond the end of a file or shared object).
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
    /// A guest atomic operation on an address not aligned to its size (SIGBUS,
    /// `BUS_ADRALN`).
    #[error("SIGBUS at {addr:#x} (unaligned atomic)")]
    Unaligned {
        /// Faulting address.
        addr: u64,
    },
}

impl Fault {
    /// The signal this fault delivers (out-of-memory is reported as SIGBUS).
    pub fn signal(self) -> Signal {
        match self {
            Fault::Segv { .. } => Signal::Segv,
            Fault::Bus { .. } | Fault::Oom { .. } | Fault::Unaligned { .. } => Signal::Bus,
        }
    }
}

/// Whether `vma` allows `access` (x86: a writable or executable page is readable).
pub(crate) fn vma_allows(vma: &Vma, access: Access) -> bool {
    match access {
        Access::Read => vma.flags.intersects(VM_READ | VM_WRITE | VM_EXEC),
        Access::Write => vma.flags.intersects(VM_WRITE),
        Access::Exec => vma.flags.intersects(VM_EXEC),
    }
}

/// A private mapping that may be written (`is_cow_mapping`): where a forced write may
/// make a private copy.
pub(crate) fn is_cow_mapping(vma: &Vma) -> bool {
    vma.flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE
}

/// Whether a present entry lets `access` through without a fault.
pub(crate) fn pte_allows(pte: Pte, access: Access) -> bool {
    pte.present()
        && match access {
            Access::Read => true,
            Access::Write => pte.has(PteFlags::W),
            Access::Exec => !pte.has(PteFlags::NX),
        }
}

/// Leaf flags for a page of `vma`: user, present, NX unless executable.
pub(crate) fn base_flags(vma: &Vma) -> PteFlags {
    let mut f = PteFlags::P | PteFlags::U | PteFlags::A;
    if !vma.flags.intersects(VM_EXEC) {
        f |= PteFlags::NX;
    }
    if !vma.flags.intersects(VM_ACCESS_FLAGS) {
        f = (f & !PteFlags::P) | PteFlags::PROTNONE;
    }
    f
}

/// What keeps a faulting VMA stable while its fault is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LockedBy {
    /// `mmap_lock`, either side.
    MmapLock,
    /// The VMA's read lock only (`PerVma`): a step that needs `mmap_lock` must not wait
    /// for it (a writer may be waiting for this VMA's readers).
    VmaLock,
}

/// How a fault handler left things, when it delivers no signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Handled {
    /// The entry now allows the access.
    Done,
    /// The entry changed under the handler (another fault or a zap won): walk again.
    Retry,
    /// Under the VMA lock alone, a step needed `mmap_lock` and a writer held it: nothing
    /// was changed; handle the fault again under `mmap_lock`.
    NeedMmapLock,
}

/// A handler's result: an outcome, or the fault to deliver.
type FaultResult = Result<Handled, Fault>;

/// One fault being handled (Linux `struct vm_fault`).
#[derive(Debug)]
struct FaultCtx<'a> {
    mm: &'a AddressSpace,
    vma: &'a Vma,
    /// Walks the page table with the layout kept by `held`.
    walk: Walk<'a, Locked>,
    /// The faulting address rounded down to its page.
    page: PageAddr,
    access: Access,
    held: LockedBy,
    /// A forced write (`FOLL_FORCE`, a debugger's poke): a private mapping without
    /// write permission gets its private copy, mapped without write permission.
    force: bool,
    /// The entry as read (without the PTL) before the handler decided; re-validated under
    /// the PTL before any change.
    orig: Pte,
}

impl FaultCtx<'_> {
    fn write(&self) -> bool {
        self.access == Access::Write
    }

    fn oom(&self) -> Fault {
        Fault::Oom {
            addr: self.page.get(),
        }
    }

    fn map_err(&self) -> Fault {
        Fault::Segv {
            addr: self.page.get(),
            code: SegvCode::MapErr,
        }
    }

    /// Dispatch on the entry and the access (`handle_pte_fault`).
    fn handle_pte_fault(&mut self) -> FaultResult {
        if self.vma.flags.intersects(VM_MAYSHARE) && self.vma.backing.object().is_some() {
            return self.do_shared_fault();
        }
        // Snapshot without the PTL; each handler re-validates it under the PTL.
        self.orig = {
            let l = self.walk.pte_lock(self.page, true);
            l.map_err(|_| self.oom())?.ok_or(self.oom())?.get()
        };
        if self.orig.is_guard() {
            return Err(self.map_err());
        }
        let none = self.orig.is_none();
        if !self.write() {
            if !none {
                return Ok(Handled::Retry); // spurious: someone mapped it meanwhile
            }
            return match self.vma.backing.object() {
                Some(_) => self.do_read_fault(),
                None => self.do_anonymous(),
            };
        }
        if self.orig.present() && self.orig.has(PteFlags::W) {
            return Ok(Handled::Retry);
        }
        // A write to none or to a read-only entry: the VMA needs its anon identity.
        if self.anon_prepare() == Handled::NeedMmapLock {
            return Ok(Handled::NeedMmapLock);
        }
        if !none && !self.orig.has(PteFlags::SPECIAL) {
            return self.do_wp_page();
        }
        match self.vma.backing.object() {
            Some(_) => self.do_cow_fault(),
            None => self.do_anonymous(),
        }
    }

    /// Give the VMA its anon identity before its first private page (`vmf_anon_prepare`),
    /// maybe a neighbour's, which only `mmap_lock` keeps in place. Under the VMA lock
    /// alone it takes `mmap_lock` read with a trylock: that never waits, so it cannot
    /// wait for a writer that waits for this VMA's readers. When a writer holds it, the
    /// fault goes to the `mmap_lock` path.
    fn anon_prepare(&self) -> Handled {
        if self.vma.anon().is_some() {
            return Handled::Done;
        }
        let _layout = match self.held {
            LockedBy::MmapLock => None,
            LockedBy::VmaLock => match self.mm.lock.try_read() {
                Some(g) => Some(g),
                None => return Handled::NeedMmapLock,
            },
        };
        let mm = self.mm;
        self.vma.anon_prepare(|| {
            mm.reusable_anon(self.vma)
                .unwrap_or_else(|| mm.new_anon_id())
        });
        Handled::Done
    }
}

impl AddressSpace {
    /// Handle a forced write fault at `addr` (`FOLL_FORCE`): as a write fault, but a
    /// private mapping without write permission (PROT_READ, even PROT_NONE) gets its
    /// private copy, mapped without write permission; anything else that forbids
    /// writes is `SEGV_ACCERR`. The caller holds `mmap_lock` (`layout`).
    pub(crate) fn handle_forced_write(
        &self,
        layout: &impl LayoutLock,
        addr: u64,
    ) -> Result<(), Fault> {
        self.fault_locked(layout, addr, Access::Write, true)
    }

    /// Handle a fault at `addr` for `access`. The caller holds `mmap_lock` (either
    /// side: `layout`) and retries its walk after `Ok`.
    pub(crate) fn handle_fault(
        &self,
        layout: &impl LayoutLock,
        addr: u64,
        access: Access,
    ) -> Result<(), Fault> {
        self.fault_locked(layout, addr, access, false)
    }

    fn fault_locked(
        &self,
        layout: &impl LayoutLock,
        addr: u64,
        access: Access,
        force: bool,
    ) -> Result<(), Fault> {
        self.counters.faults.add(1);
        let g = crate::sync::rcu::read_lock();
        let Some(vma) = self.tree.find(addr, &g).cloned() else {
            return Err(Fault::Segv {
                addr,
                code: SegvCode::MapErr,
            });
        };
        drop(g);
        let walk = self.pt.locked(layout);
        match self.fault_vma(&vma, walk, addr, access, LockedBy::MmapLock, force)? {
            Handled::Done | Handled::Retry => Ok(()),
            Handled::NeedMmapLock => unreachable!("the handler runs under mmap_lock"),
        }
    }

    /// The `PerVma` fast path: handle the fault under the VMA's read lock, without
    /// `mmap_lock`. `None` when the caller must fall back to `mmap_lock` read: no VMA
    /// contains `addr` (maybe a stack to expand), the VMA is write-locked or was
    /// replaced, or the fault needs an anon identity while a writer holds `mmap_lock`
    /// (chosen under a trylock of `mmap_lock`, where and only where the fault needs it:
    /// not for a fault that ends in SIGSEGV, as Linux checks the access before
    /// `vmf_anon_prepare`).
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
        let walk = self.pt.locked(&vma);
        let r = match self.fault_vma(&vma, walk, addr, access, LockedBy::VmaLock, false) {
            Ok(Handled::NeedMmapLock) => {
                drop(vma);
                return fallback();
            }
            Ok(Handled::Done | Handled::Retry) => Ok(()),
            Err(f) => Err(f),
        };
        self.counters.faults.add(1);
        self.counters.vma_lock_faults.add(1);
        Some(r)
    }

    /// Handle a fault at `addr` in `vma`, which `held` keeps stable.
    fn fault_vma(
        &self,
        vma: &Vma,
        walk: Walk<'_, Locked>,
        addr: u64,
        access: Access,
        held: LockedBy,
        force: bool,
    ) -> FaultResult {
        let forced = force && access == Access::Write && is_cow_mapping(vma);
        if !vma_allows(vma, access) && !forced {
            return Err(Fault::Segv {
                addr,
                code: SegvCode::AccErr,
            });
        }
        FaultCtx {
            mm: self,
            vma,
            walk,
            page: PageAddr::down(addr),
            access,
            held,
            force: forced,
            orig: Pte::NONE,
        }
        .handle_pte_fault()
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

    /// The anon identity of an adjacent VMA this one could share it with
    /// (`find_mergeable_anon_vma`: next first, then prev; adjacent, same backing, flags
    /// equal but for access PteFlags, continuous page offsets), so that the two can merge
    /// again later.
    fn reusable_anon(&self, vma: &Vma) -> Option<u64> {
        let g = crate::sync::rcu::read_lock();
        let next = self
            .tree
            .find(vma.end.get(), &g)
            .filter(|n| n.start == vma.end);
        let prev = vma
            .start
            .get()
            .checked_sub(1)
            .and_then(|a| self.tree.find(a, &g));
        reusable_anon_near(vma, prev.map(|p| &**p), next.map(|n| &**n))
    }
}

/// The anon identity `vma` may share with its neighbours `prev` (ending at its start) or
/// `next` (starting at its end): next first, then prev; adjacent, same backing, flags
/// equal but for access PteFlags, continuous page offsets (`find_mergeable_anon_vma`).
pub(crate) fn reusable_anon_near(vma: &Vma, prev: Option<&Vma>, next: Option<&Vma>) -> Option<u64> {
    let compatible = |a: &Vma, b: &Vma| {
        a.end == b.start
            && a.backing.same(&b.backing)
            && ((a.flags ^ b.flags) - (VM_ACCESS_FLAGS | VM_STICKY)).is_empty()
            && b.pgoff == a.pgoff + a.start.pages_to(a.end)
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
