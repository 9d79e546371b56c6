//! `mmap_lock` write epochs and per-VMA locks at the address-space level.
//!
//! * [`AddressSpace::write_lock`] takes `mmap_lock` for write and opens a write epoch
//!   (`mm_lock_seq` odd); dropping the guard closes it (even again, Release) before the
//!   lock is released, which releases every VMA write lock of the epoch at once.
//! * [`AddressSpace::vma_start_write`]: a writer write-locks every VMA it replaces,
//!   detaches or whose pages it must keep faults away from (fork), before it touches
//!   them; it waits for the VMA's readers to finish.
//! * [`AddressSpace::lock_vma_under_rcu`]: a fault looks the VMA up under RCU and
//!   read-locks it without `mmap_lock`; on failure the caller falls back to
//!   `mmap_lock` read. Never wait for `mmap_lock` while holding a VMA read lock (a writer
//!   holding it may be waiting for that VMA's readers); a trylock is allowed, as Linux's
//!   `vmf_anon_prepare` does (it never waits).
//! * [`VmaCache`]: a CPU's last faulted VMA, tried before the tree (Linux's former
//!   per-thread `vmacache`, made safe by the VMA lock). A cached VMA is only a
//!   candidate: it is read-locked like one the tree returned, which fails once it is
//!   detached (it left the tree) or while its writer holds it; an attached VMA is in the
//!   tree with its range (VMAs are immutable), so a locked cached VMA that contains the
//!   address is the one a lookup would return. The cache holds a `Weak`: it never keeps a
//!   VMA's contents (its file) alive after the tree dropped it. Why: the tree's root and
//!   nodes are rewritten by every mmap/munmap/mprotect, so a lookup from a CPU that
//!   faults while another CPU changes the layout elsewhere misses in cache on each of
//!   them (`softmm bench fault-churn`); the cached VMA's lines are written only by its own
//!   faults and writers.

use std::{
    cell::Cell,
    ops::{Deref, DerefMut},
    sync::{Arc, Weak},
};

use super::{AddressSpace, MmState};
use crate::{
    pgtable::{LayoutLock, LayoutWrite},
    sync::{Ordering, RwLockReadGuard, RwLockWriteGuard, rcu},
    vma::{Vma, lock::ReadFail},
};

/// `mmap_lock` held for write, in an open write epoch.
pub(crate) struct MmWriteGuard<'a> {
    mm: &'a AddressSpace,
    guard: Option<RwLockWriteGuard<'a, MmState>>,
}

impl Deref for MmWriteGuard<'_> {
    type Target = MmState;
    fn deref(&self) -> &MmState {
        self.guard.as_deref().expect("held until drop")
    }
}

impl DerefMut for MmWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut MmState {
        self.guard.as_deref_mut().expect("held until drop")
    }
}

impl Drop for MmWriteGuard<'_> {
    fn drop(&mut self) {
        // The layout changes of this epoch reach the machine's committed total.
        self.mm.sync_committed();
        if !cfg!(mutant = "vma_lock_no_epoch_end") {
            // Release: pairs with the readers' Acquire load of the sequence: a reader
            // that sees the epoch over sees everything done in it.
            self.mm.mm_lock_seq.fetch_add(1, Ordering::Release);
        }
        drop(self.guard.take());
    }
}

/// A VMA read-locked by a fault (released on drop).
pub(crate) struct VmaReadGuard {
    vma: Arc<Vma>,
}

impl Deref for VmaReadGuard {
    type Target = Arc<Vma>;
    fn deref(&self) -> &Arc<Vma> {
        &self.vma
    }
}

impl Drop for VmaReadGuard {
    fn drop(&mut self) {
        self.vma.lock.end_read();
    }
}

/// Lookups that found a VMA detached under them before giving up (a livelock guard).
const DETACHED_RETRIES: usize = 8;

/// A CPU's last faulted VMA (see the module rules). One per [`crate::Cpu`], which is one
/// thread's context, so a `Cell` (no atomics: the fault path's point is to touch no line
/// that another CPU writes).
#[derive(Default)]
pub(crate) struct VmaCache(Cell<Option<Weak<Vma>>>);

impl VmaCache {
    /// Read-lock the cached VMA if it still holds `addr`; `None` on a miss.
    fn lock(&self, addr: u64, mm_seq: &crate::sync::AtomicU64) -> Option<VmaReadGuard> {
        let weak = self.0.take()?;
        let vma = weak.upgrade();
        self.0.set(Some(weak));
        let vma = vma.filter(|v| v.contains(addr))?;
        vma.lock.try_read(mm_seq).ok()?;
        Some(VmaReadGuard { vma })
    }

    /// Remember `vma` as the last one faulted in.
    fn remember(&self, vma: &Arc<Vma>) {
        self.0.set(Some(Arc::downgrade(vma)));
    }
}

impl std::fmt::Debug for VmaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VmaCache")
    }
}

impl Clone for VmaCache {
    /// A new CPU context starts with an empty cache.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl AddressSpace {
    /// Take `mmap_lock` for write and open a write epoch.
    pub(crate) fn write_lock(&self) -> MmWriteGuard<'_> {
        let guard = self.lock.write();
        // Relaxed: under the write lock; readers learn the odd value through the Release
        // of `VmaLock::start_write` that follows (they compare after an Acquire on the
        // VMA's reference count), and only VMAs locked that way must look locked.
        self.mm_lock_seq.fetch_add(1, Ordering::Relaxed);
        MmWriteGuard {
            mm: self,
            guard: Some(guard),
        }
    }

    /// Write-lock `vma` in the current epoch (caller holds [`Self::write_lock`]).
    pub(crate) fn vma_start_write(&self, vma: &Vma) {
        // Relaxed: we are the writer of this epoch; the value is ours.
        vma.lock
            .start_write(self.mm_lock_seq.load(Ordering::Relaxed));
    }

    /// Read-lock the VMA containing `addr` without `mmap_lock` (`lock_vma_under_rcu`),
    /// trying `cache` first and remembering what the tree gave in it: `Ok(None)` when no
    /// VMA contains `addr`, `Err(())` when the caller must fall back.
    pub(crate) fn lock_vma_under_rcu(
        &self,
        addr: u64,
        cache: &VmaCache,
    ) -> Result<Option<VmaReadGuard>, ()> {
        if let Some(guard) = cache.lock(addr, &self.mm_lock_seq) {
            return Ok(Some(guard));
        }
        let found = self.lock_vma_in_tree(addr);
        if let Ok(Some(guard)) = &found {
            cache.remember(guard);
        }
        found
    }

    /// [`Self::lock_vma_under_rcu`] through the tree.
    fn lock_vma_in_tree(&self, addr: u64) -> Result<Option<VmaReadGuard>, ()> {
        for _ in 0..DETACHED_RETRIES {
            let g = rcu::read_lock();
            let Some(v) = self.tree.find(addr, &g) else {
                return Ok(None);
            };
            match v.lock.try_read(&self.mm_lock_seq) {
                Ok(()) => {
                    let guard = VmaReadGuard { vma: Arc::clone(v) };
                    drop(g);
                    // VMAs are immutable, so the one found still contains `addr`; the
                    // check stays as the protocol's (and costs nothing).
                    if !guard.contains(addr) {
                        return Err(());
                    }
                    return Ok(Some(guard));
                }
                // Replaced under us: look again.
                Err(ReadFail::Detached) => continue,
                Err(ReadFail::Locked) => return Err(()),
            }
        }
        Err(())
    }
}

// SAFETY: `mmap_lock` held for write: tables are unlinked only by the holder (munmap,
// mremap, exit run under it), and no other thread walks with the layout held, because
// every such walk holds `mmap_lock` or a VMA read lock, and the writer write-locks every
// VMA whose tables it unlinks, which waits for those VMAs' readers.
unsafe impl LayoutLock for MmWriteGuard<'_> {}
// SAFETY: as above: the write side excludes every other layout holder.
unsafe impl LayoutWrite for MmWriteGuard<'_> {}
// SAFETY: `mmap_lock` held for read: tables are unlinked only under the write side.
unsafe impl LayoutLock for RwLockReadGuard<'_, MmState> {}
// SAFETY: a VMA read lock: the tables covering the VMA are unlinked only under
// `mmap_lock` write after the VMA was write-locked, which waits for this reader; a walk
// under it stays inside the VMA (the fault path walks only the faulting page).
unsafe impl LayoutLock for VmaReadGuard {}
